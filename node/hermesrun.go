package node

import (
	"context"
	"fmt"
	"io"

	"github.com/openmyst/openmyst/identity"
)

// RunHermes runs a hermes payment hub (`myst hermes`) on f's chain until
// ctx ends: signing as operator (a keystore identity unlocked with
// passFile; empty on a dev deployment: the public dev hermes operator),
// configured by o (DataDir and Log default to l's). It reports to out.
func (l *Local) RunHermes(ctx context.Context, f ChainFlags, operator, passFile string, o HermesOptions, out io.Writer) error {
	cfg, err := l.ChainConfig(f)
	if err != nil {
		return err
	}
	// The hermes keeps its pending settlements in its own state file
	// (--hermes.chain-state) and resumes them itself.
	cfg.Tx, cfg.PendingDir = TxRequired, ""
	c, err := OpenChain(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if o.DataDir == "" {
		o.DataDir = l.DataDir
	}
	if o.Log == nil {
		o.Log = l.log()
	}
	run := func(signer identity.Signer) error {
		cfg, err := o.Config(c, signer)
		if err != nil {
			return err
		}
		h, err := StartHermes(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "hermes running\n  api:      %s (OpenAPI at /openapi.json, metrics at /metrics)\n  hermes:   %s (fee %d bps)\n  operator: %s\n  chain id: %s\n  store:    %s\n",
			h.URL(), cfg.Hermes.Hex(), h.FeeBps, signer.Address().Hex(), cfg.Chain.ChainID(), RedactDSN(cfg.DSN))
		<-ctx.Done()
		err = h.Close()
		o.Log.Info("hermes stopped")
		return err
	}
	if operator == "" {
		signer, err := HermesDevOperator(c)
		if err != nil {
			return err
		}
		o.Log.Warn("hermes: using the dev hermes operator key (public; dev chains only)")
		return run(signer)
	}
	addr, err := identity.ParseAddress(operator)
	if err != nil {
		return fmt.Errorf("--hermes.operator: %w", err)
	}
	return l.WithSigner(ctx, addr, passFile, run)
}
