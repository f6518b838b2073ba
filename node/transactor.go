package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/transactor"
)

// TransactorConfig configures an in-process transactor (the gasless relay).
type TransactorConfig struct {
	// Chain is the chain client; its transactor key pays the gas, takes
	// the fees and signs the quotes (Signer is that key).
	Chain  *chain.Client
	Signer identity.Signer
	// Hermes is the hermes whose registrations and settlements it relays.
	Hermes common.Address
	// Fees are the least fees it quotes.
	Fees transactor.Fees
	// StorePath is the SQLite file of voucher redemptions ("": vouchers off).
	StorePath string
	// MaxVouchersPerSponsor caps redemptions per sponsor (0: default).
	MaxVouchersPerSponsor int
	// Listen is the API address (default 127.0.0.1:0). Without TLS it is
	// plain HTTP, so it must be loopback unless InsecureHTTP (dev chains
	// only).
	Listen       string
	InsecureHTTP bool
	// TLS, when set, serves the API over HTTPS (on any address).
	TLS *tls.Config
	// Limits are the abuse limits (zero: transactor.DefaultLimits).
	Limits transactor.Limits
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// Transactor is a running transactor service and its HTTP API.
type Transactor struct {
	// Service is the relay (for in-process use).
	Service *transactor.Service
	store   *transactor.Store
	url     string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// StartTransactor starts the transactor service and serves its API.
func StartTransactor(ctx context.Context, cfg TransactorConfig) (_ *Transactor, err error) {
	if cfg.Chain == nil {
		return nil, errors.New("node: transactor needs a chain")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: transactor listen address %q: %w", cfg.Listen, err)
	}
	if cfg.TLS == nil && !api.Loopback(host) {
		if !cfg.InsecureHTTP {
			return nil, fmt.Errorf("node: transactor listen address %s is not loopback: serve HTTPS (--tls.cert/--tls.key) or allow plain HTTP explicitly (--transactor.insecure-http)", cfg.Listen)
		}
		if err := checkPlainListen(cfg.Chain.ChainID().Uint64(), cfg.Listen, "transactor.insecure-http"); err != nil {
			return nil, err
		}
		cfg.Log.Warn("transactor: INSECURE plain HTTP API on a non-loopback address", "listen", cfg.Listen)
	}
	t := &Transactor{}
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	if cfg.StorePath != "" {
		if t.store, err = transactor.OpenStore(cfg.StorePath); err != nil {
			return nil, err
		}
	}
	if t.Service, err = transactor.New(transactor.Config{
		Chain: cfg.Chain, Signer: cfg.Signer, Hermes: cfg.Hermes, Fees: cfg.Fees, Store: t.store,
		MaxVouchersPerSponsor: cfg.MaxVouchersPerSponsor, Limits: cfg.Limits, Log: cfg.Log,
	}); err != nil {
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: transactor listen: %w", err)
	}
	t.url = "http://" + ln.Addr().String()
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
		t.url = "https://" + ln.Addr().String()
	}
	sctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		if err := transactor.Serve(sctx, ln, t.Service.Handler()); err != nil {
			cfg.Log.Error("transactor: API stopped", "err", err)
		}
	}()
	cfg.Log.Info("transactor: serving", "url", t.url, "account", t.Service.Address().Hex())
	return t, nil
}

// URL is the API base URL.
func (t *Transactor) URL() string { return t.url }

// Close stops the API and closes the store.
func (t *Transactor) Close() error {
	if t.cancel != nil {
		t.cancel()
	}
	t.wg.Wait()
	if t.store != nil {
		return t.store.Close()
	}
	return nil
}

// EnsureRegisteredVia registers signer with hermes through the transactor
// relay unless it is registered already: the identity pays no gas; the
// quoted fee is paid from its channel when it holds it (otherwise deferred,
// onboarding: the fee is then owed on chain and paid from its first
// provider settlements). c is used for reads only.
func EnsureRegisteredVia(ctx context.Context, c *chain.Client, relay *transactor.Client, signer identity.Signer, hermesID common.Address, progress func(string)) error {
	return ensureRegistered(ctx, c, signer, hermesID, progress, func(say func(string)) (*big.Int, error) {
		q, err := relay.Quote(ctx)
		if err != nil {
			return nil, fmt.Errorf("node: transactor fee quote: %w", err)
		}
		st, err := c.ChannelState(ctx, c.ChannelAddress(signer.Address(), hermesID))
		if err != nil {
			return nil, fmt.Errorf("node: channel of %s: %w", signer.Address().Hex(), err)
		}
		fee, deferred := transactor.RegisterPlan(q, st.Balance)
		how := "from its channel"
		if deferred {
			how = "from its first settlements"
		}
		say(fmt.Sprintf("registering identity %s with hermes %s through the transactor (fee %s wei, paid %s); waiting for the chain...", signer.Address().Hex(), hermesID.Hex(), fee, how))
		res, err := relay.Register(ctx, q, signer, hermesID, fee, deferred, common.Address{})
		if err != nil {
			var ae *transactor.APIError
			if !errors.As(err, &ae) || ae.Code != transactor.CodeConflict {
				return nil, fmt.Errorf("node: register %s through the transactor: %w", signer.Address().Hex(), err)
			}
			return nil, nil
		}
		r, err := c.Backend().TransactionReceipt(ctx, res.Tx)
		if err != nil {
			return nil, fmt.Errorf("node: registration of %s mined: receipt of %s: %w", signer.Address().Hex(), res.Tx.Hex(), err)
		}
		return r.BlockNumber, nil
	})
}

// waitTx returns once b's head includes the block of mined transaction h.
func waitTx(ctx context.Context, b chain.Backend, h common.Hash) error {
	r, err := b.TransactionReceipt(ctx, h)
	if err != nil {
		return fmt.Errorf("receipt of %s: %w", h.Hex(), err)
	}
	return waitHead(ctx, b, r.BlockNumber)
}

// SetBeneficiaryVia changes signer's beneficiary through the transactor
// relay, paying the quoted fee from its channel with hermesID.
func SetBeneficiaryVia(ctx context.Context, c *chain.Client, relay *transactor.Client, signer identity.Signer, beneficiary, hermesID common.Address) (common.Hash, error) {
	n, err := c.BeneficiaryNonce(ctx, signer.Address())
	if err != nil {
		return common.Hash{}, fmt.Errorf("node: beneficiary nonce: %w", err)
	}
	q, err := relay.Quote(ctx)
	if err != nil {
		return common.Hash{}, fmt.Errorf("node: transactor fee quote: %w", err)
	}
	res, err := relay.SetBeneficiary(ctx, q, signer, beneficiary, hermesID, q.Fees.Beneficiary, n+1)
	if err != nil {
		return common.Hash{}, fmt.Errorf("node: beneficiary change through the transactor: %w", err)
	}
	return res.Tx, waitTx(ctx, c.Backend(), res.Tx)
}

// RedeemVoucher redeems a referral voucher code for signer through the
// relay: a starter top-up of its channel with hermesID and a free
// registration.
func RedeemVoucher(ctx context.Context, c *chain.Client, relay *transactor.Client, code string, signer identity.Signer, hermesID common.Address) (transactor.TxResponse, error) {
	res, err := relay.Redeem(ctx, code, signer, hermesID, common.Address{})
	if err != nil {
		return res, fmt.Errorf("node: redeem voucher: %w", err)
	}
	return res, waitTx(ctx, c.Backend(), res.Tx)
}

// Relay is the transactor client of url for c's deployment (nil, nil when
// url is empty).
func Relay(c *Chain, url string) (*transactor.Client, error) {
	if url == "" {
		return nil, nil
	}
	if err := transactorClientURL(c.Client.ChainID().Uint64(), url); err != nil {
		return nil, err
	}
	return transactor.NewClient(url, c.Client.Deployment(), nil)
}

// RelayAccount does `myst account register|beneficiary|redeem
// --transactor` for signer and prints the outcome to w: what is
// "register", "beneficiary" (arg: the address) or "redeem" (arg: the
// voucher code).
func RelayAccount(ctx context.Context, w io.Writer, c *Chain, url string, signer identity.Signer, what, arg string) error {
	out, err := relayAccount(ctx, c, url, signer, what, arg)
	fmt.Fprint(w, out)
	return err
}

func relayAccount(ctx context.Context, c *Chain, url string, signer identity.Signer, what, arg string) (string, error) {
	relay, err := Relay(c, url)
	if err != nil || relay == nil {
		return "", errors.Join(err, errors.New("node: no transactor URL"))
	}
	id := signer.Address().Hex()
	switch what {
	case "register":
		if err := EnsureRegisteredVia(ctx, c.Client, relay, signer, c.Hermes, nil); err != nil {
			return "", err
		}
		return fmt.Sprintf("registered %s through the transactor\nchannel: %s\n", id, c.Client.ChannelAddress(signer.Address(), c.Hermes).Hex()), nil
	case "beneficiary":
		ben, err := identity.ParseAddress(arg)
		if err != nil {
			return "", err
		}
		h, err := SetBeneficiaryVia(ctx, c.Client, relay, signer, ben, c.Hermes)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("beneficiary of %s is now %s: tx %s (through the transactor)\n", id, ben.Hex(), h.Hex()), nil
	case "redeem":
		res, err := RedeemVoucher(ctx, c.Client, relay, arg, signer, c.Hermes)
		if err != nil {
			return "", err
		}
		s := fmt.Sprintf("registered %s: tx %s\nchannel: %s\n", id, res.Tx.Hex(), res.Channel.Hex())
		if res.TopUpTx != nil {
			s = fmt.Sprintf("starter top-up: tx %s\n", res.TopUpTx.Hex()) + s
		}
		return s, nil
	}
	return "", fmt.Errorf("node: unknown relayed account action %q", what)
}

// SignVoucher signs a referral voucher of amount MYST valid for ttl as
// the sponsor keyFile names (the dev transactor on dev deployments), for
// the transactor at url; approve (MYST, "" for none) first sets the
// sponsor's budget (its allowance to the transactor). It returns what to
// print, ending with the code.
func SignVoucher(ctx context.Context, c *Chain, keyFile, url, amount, approve string, ttl time.Duration) (string, error) {
	amt, err := money.ParseMYST(amount)
	if err != nil {
		return "", err
	}
	key, err := TransactorKey(keyFile, c.Client.Deployment())
	if err != nil || key == nil {
		return "", errors.Join(err, errors.New("node: no sponsor key (--chain.transactor-key-file)"))
	}
	relay, err := Relay(c, url)
	if err != nil || relay == nil {
		return "", errors.Join(err, errors.New("node: no transactor URL"))
	}
	q, err := relay.Quote(ctx)
	if err != nil {
		return "", err
	}
	out := ""
	if approve != "" {
		b, err := money.ParseMYST(approve)
		if err != nil {
			return "", fmt.Errorf("--approve: %w", err)
		}
		r, err := c.Client.Approve(ctx, q.Transactor, b)
		if err != nil {
			return "", err
		}
		out = fmt.Sprintf("allowed the transactor %s MYST: tx %s\n", approve, r.TxHash.Hex())
	}
	v, err := transactor.NewVoucher(identity.NewKeySigner(key), q.ChainID, q.Transactor, amt, ttl, time.Now())
	if err != nil {
		return "", err
	}
	return out + v.Code() + "\n", nil
}
