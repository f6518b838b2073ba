package node

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// AccountFlags are the flags of a command acting on an identity's
// account: where the chain is, which identity, how to unlock it, and
// optionally a transactor relaying for it.
type AccountFlags struct {
	ChainFlags
	// Identity is the identity to act as (empty: the default identity).
	Identity string
	// PassphraseFile holds the identity's passphrase (else
	// $MYST_PASSPHRASE, else Local.Prompt).
	PassphraseFile string
	// TransactorURL is a transactor API relaying register and redeem.
	TransactorURL string
}

// Session is an open chain plus the identity a command acts as.
type Session struct {
	*Chain
	// ID is the identity.
	ID common.Address
}

// OpenChain connects to f's chain; withTx loads the key that pays gas.
func (l *Local) OpenChain(ctx context.Context, f ChainFlags, withTx bool) (*Chain, error) {
	cfg, err := l.ChainConfig(f)
	if err != nil {
		return nil, err
	}
	if withTx {
		cfg.Tx = TxRequired
	}
	return OpenChain(ctx, cfg)
}

// Session opens f's chain and resolves f's identity (IdentityOf).
func (l *Local) Session(ctx context.Context, f AccountFlags, withTx bool) (*Session, error) {
	c, err := l.OpenChain(ctx, f.ChainFlags, withTx)
	if err != nil {
		return nil, err
	}
	s := &Session{Chain: c}
	if s.ID, err = l.IdentityOf(ctx, f.Identity, nil); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

// Accounts acts on accounts on c (tequilapi.Accounts; without IDs it
// cannot sign).
func (l *Local) Accounts(c *Chain) *tequilapi.Accounts {
	return &tequilapi.Accounts{Chains: tequilapi.ChainSourceFunc(func(context.Context) (tequilapi.AccountChain, common.Address, error) {
		return c.Client, c.Hermes, nil
	}), Log: l.log()}
}

// AccountAPI is what the account commands do on an identity's account: a
// running daemon's Tequilapi client and a tequilapi.Accounts over this
// process's keystore and chain both implement it.
type AccountAPI interface {
	Account(ctx context.Context, id common.Address) (tequilapi.AccountDTO, error)
	Register(ctx context.Context, id common.Address, req tequilapi.RegisterRequest) (tequilapi.RegisterResponse, error)
	TopUp(ctx context.Context, id common.Address, amount string, fromTransactor bool) (tequilapi.TopupResponse, error)
	SetBeneficiary(ctx context.Context, id, beneficiary common.Address) (tequilapi.BeneficiaryResponse, error)
}

// WithAccounts runs fn through the daemon's Tequilapi when a daemon runs
// for the data dir and f names no hermes (the daemon acts with its own
// chain settings and the identity unlocked there); when it has no chain,
// or there is no daemon, fn acts on the chain directly. sign says fn
// signs as the identity; withTx that it sends transactions.
func (l *Local) WithAccounts(ctx context.Context, f AccountFlags, sign, withTx bool, fn func(AccountAPI, common.Address) error) error {
	if c, err := l.Daemon(ctx); err == nil && f.Hermes == "" {
		id, err := l.IdentityOf(ctx, f.Identity, c)
		if err == nil && sign {
			err = l.Unlocked(ctx, c, id, f.PassphraseFile)
		}
		if err == nil {
			err = fn(c, id)
		}
		if !client.IsCode(err, tequilapi.CodeChainUnavailable) {
			return err
		}
		l.log().Info("daemon cannot do it; acting on the chain directly", "reason", err)
	}
	s, err := l.Session(ctx, f, withTx)
	if err != nil {
		return err
	}
	defer s.Close()
	acc := l.Accounts(s.Chain)
	if !sign {
		return fn(acc, s.ID)
	}
	return l.WithKeystore(false, func(m *identity.Manager) error {
		acc.IDs = m
		if err := l.Unlocked(ctx, &tequilapi.Identities{IDs: m}, s.ID, f.PassphraseFile); err != nil {
			return err
		}
		return fn(acc, s.ID)
	})
}

// SettlePromise settles st on chain: through the daemon when one runs, f
// names no hermes and st is a provider promise of an identity the daemon
// holds; else directly, paying gas with f's transactor key.
func (l *Local) SettlePromise(ctx context.Context, f AccountFlags, st chain.Settlement) (tequilapi.AccountSettleResponse, error) {
	if c, err := l.Daemon(ctx); err == nil && f.Hermes == "" && st.Kind == chain.KindProvider {
		r, err := c.SettlePromise(ctx, st.Provider, st)
		if !client.IsCode(err, tequilapi.CodeChainUnavailable) && !client.IsCode(err, tequilapi.CodeNotFound) {
			return r, err
		}
		l.log().Info("daemon cannot do it; acting on the chain directly", "reason", err)
	}
	c, err := l.OpenChain(ctx, f.ChainFlags, true)
	if err != nil {
		return tequilapi.AccountSettleResponse{}, err
	}
	defer c.Close()
	return l.Accounts(c).Settle(ctx, st)
}

// ViaTransactor does what (register, redeem CODE=arg) through f's
// transactor (RelayAccount), signing as f's identity in the local
// keystore, and reports to w.
func (l *Local) ViaTransactor(ctx context.Context, w io.Writer, f AccountFlags, what, arg string) error {
	s, err := l.Session(ctx, f, false)
	if err != nil {
		return err
	}
	defer s.Close()
	return l.WithSigner(ctx, s.ID, f.PassphraseFile, func(sg identity.Signer) error {
		return RelayAccount(ctx, w, s.Chain, f.TransactorURL, sg, what, arg)
	})
}

// WritePromise signs the promise req describes as f's identity on f's
// chain (SignSettlement) and writes it as a settlement file to out (mode
// 0600); it reports to w in a.
func (l *Local) WritePromise(ctx context.Context, w io.Writer, a tequilapi.Amounts, f AccountFlags, req PromiseRequest, out string) error {
	s, err := l.Session(ctx, f, false)
	if err != nil {
		return err
	}
	defer s.Close()
	return l.WithSigner(ctx, s.ID, f.PassphraseFile, func(sg identity.Signer) error {
		st, data, err := SignSettlement(s.Client, s.Hermes, sg, req)
		if err != nil {
			return err
		}
		if err := os.WriteFile(out, data, 0o600); err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s promise for %s on channel %x signed by %s written to %s\n", st.Kind,
			a.OfWei(req.Amount), st.Promise.ChannelID, sg.Address().Hex(), out)
		return err
	})
}

// Exit requests a unilateral exit from f's identity's channel, signed
// as the identity, or with finalize pays the channel out to the
// beneficiary after the timelock (anyone may). It reports to w.
func (l *Local) Exit(ctx context.Context, w io.Writer, f AccountFlags, finalize bool) error {
	s, err := l.Session(ctx, f, true)
	if err != nil {
		return err
	}
	defer s.Close()
	ch := s.Client.ChannelAddress(s.ID, s.Hermes)
	if finalize {
		r, err := s.Client.FinalizeExit(ctx, ch)
		if err == nil {
			fmt.Fprintf(w, "exit finalized: tx %s (block %s, gas %d)\n", r.TxHash.Hex(), r.BlockNumber, r.GasUsed)
		}
		return err
	}
	return l.WithSigner(ctx, s.ID, f.PassphraseFile, func(sg identity.Signer) error {
		r, err := s.Client.RequestExit(ctx, sg, ch, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "exit requested: tx %s (block %s, gas %d)\n", r.TxHash.Hex(), r.BlockNumber, r.GasUsed)
		st, err := s.Client.ChannelState(ctx, ch)
		if err == nil {
			fmt.Fprintf(w, "finalize with 'myst account exit --finalize' from %s\n", st.ExitUnlockAt.Format("2006-01-02 15:04:05 MST"))
		}
		return err
	})
}
