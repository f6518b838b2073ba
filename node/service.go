package node

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// RunService runs `myst service`: when a daemon runs for the data dir,
// its provider (ServiceViaDaemon: one provider per data dir); else r's
// provider on f's chain, signing as f's identity (unlocked in the local
// keystore), until ctx ends (RunService).
func (l *Local) RunService(ctx context.Context, f AccountFlags, r ServiceRun) error {
	if r.DataDir == "" {
		r.DataDir = l.DataDir
	}
	if r.Log == nil {
		r.Log = l.log()
	}
	if c, err := l.Daemon(ctx); err == nil {
		return ServiceViaDaemon(ctx, c, r, f.Identity, f.PassphraseFile)
	}
	if err := r.Check(); err != nil {
		return err
	}
	s, err := l.Session(ctx, f, true)
	if err != nil {
		return err
	}
	defer s.Close()
	return l.WithSigner(ctx, s.ID, f.PassphraseFile, func(signer identity.Signer) error {
		r.Chain, r.Signer = s.Chain, signer
		return RunService(ctx, r)
	})
}

// SettleService settles the provider's hermes earnings on chain: POST
// /settle on a running service or daemon when one answers for the data
// dir, else from the provider database (SettleStoredVia) through
// so's transactor or paying gas with f's key, asking so's hermes. It
// reports to w in a.
func (l *Local) SettleService(ctx context.Context, w io.Writer, a tequilapi.Amounts, f AccountFlags, so ServeOptions) error {
	if c, err := l.Daemon(ctx); err == nil {
		var res tequilapi.SettleDTO
		err := c.Do(ctx, http.MethodPost, "/settle", nil, &res)
		if err == nil {
			fmt.Fprintf(w, "settled %s wei cumulative: tx %s\n", res.Amount, res.Tx)
			return nil
		}
		if !client.IsCode(err, tequilapi.CodeNotFound) {
			return err
		}
	}
	s, err := l.Session(ctx, f, true)
	if err != nil {
		return err
	}
	defer s.Close()
	tls, err := so.HermesTLS()
	if err != nil {
		return err
	}
	e, res, err := SettleStoredVia(ctx, l.ProviderDir(), s.Chain, so.HermesURL, tls, s.ID, so.TransactorURL)
	if e.Earned != nil {
		fmt.Fprintf(w, "earned %s, settled %s, unsettled %s\n", a.OfWei(e.Earned), a.OfWei(e.Settled), a.OfWei(e.Unsettled))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "settled %s cumulative: tx %s\n", a.OfWei(res.Amount), res.Tx.Hex())
	return nil
}

// Settlements lists the provider's settlement attempts: GET /settlements
// of a running service or daemon when one answers for the data dir, else
// from the provider database.
func (l *Local) Settlements(ctx context.Context) ([]tequilapi.SettlementDTO, error) {
	if c, err := l.Daemon(ctx); err == nil {
		var res tequilapi.SettlementsDTO
		if err := c.Do(ctx, http.MethodGet, "/settlements", nil, &res); err == nil || !client.IsCode(err, tequilapi.CodeNotFound) {
			return res.Settlements, err
		}
	}
	return StoredSettlements(ctx, l.ProviderDir(), tequilapi.MaxSettlementsListed)
}
