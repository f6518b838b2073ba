package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"golang.org/x/time/rate"

	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/transactor"
)

// TransactorOptions are `myst transactor`'s settings as an operator gives
// them (Register declares their flags).
type TransactorOptions struct {
	// Listen is the API address; TLSCert and TLSKey (PEM files, re-read
	// when they change) serve it over HTTPS; without them plain HTTP is
	// served on loopback only, unless InsecureHTTP.
	Listen          string
	TLSCert, TLSKey string
	InsecureHTTP    bool
	// Store is the SQLite file of voucher redemptions (default
	// <data-dir>/transactor/transactor.db).
	Store string
	// FeeRegister, FeeBeneficiary and FeeSettle are the least fees quoted,
	// in MYST (transactor.Fees).
	FeeRegister, FeeBeneficiary, FeeSettle string
	// MaxVouchersPerSponsor caps redemptions per sponsor (0: default).
	MaxVouchersPerSponsor int
	// SourceRate, IdentityRate and ZeroFeeRate are per second; with their
	// bursts and MaxInFlight they are transactor.Limits.
	SourceRate, IdentityRate, ZeroFeeRate    float64
	SourceBurst, IdentityBurst, ZeroFeeBurst int
	MaxInFlight                              int
}

// Register declares the options' flags on fs (--transactor.*, --tls.*).
func (o *TransactorOptions) Register(fs *pflag.FlagSet) {
	d := transactor.DefaultLimits
	fs.StringVar(&o.Listen, "transactor.listen", "127.0.0.1:4070", "API listen address")
	fs.StringVar(&o.TLSCert, "tls.cert", "", "PEM certificate chain: serve the API over HTTPS (with --tls.key)")
	fs.StringVar(&o.TLSKey, "tls.key", "", "PEM private key of --tls.cert")
	fs.BoolVar(&o.InsecureHTTP, "transactor.insecure-http", false, "allow plain HTTP on a non-loopback --transactor.listen (unencrypted; never on a real network)")
	fs.StringVar(&o.Store, "transactor.db", "", "SQLite file of voucher redemptions (default <data-dir>/transactor/transactor.db)")
	fs.StringVar(&o.FeeRegister, "transactor.fee-register", "0", "least fee (MYST) for a registration, from the identity's channel (an empty channel registers at zero fee, limited per source, owing the registration fee on chain)")
	fs.StringVar(&o.FeeBeneficiary, "transactor.fee-beneficiary", "0", "least fee (MYST) for a beneficiary change, from the identity's channel")
	fs.StringVar(&o.FeeSettle, "transactor.fee-settle", "0", "least transactor fee (MYST) a relayed provider settlement's hermes promise must carry")
	fs.IntVar(&o.MaxVouchersPerSponsor, "transactor.max-vouchers-per-sponsor", 0, "voucher redemptions one sponsor may fund (0: the default)")
	fs.Float64Var(&o.SourceRate, "transactor.source-rate", float64(d.PerSource), "requests per second one source address may make; over it: 429")
	fs.IntVar(&o.SourceBurst, "transactor.source-burst", d.SourceBurst, "requests one source address may make at once")
	fs.Float64Var(&o.IdentityRate, "transactor.identity-rate", float64(d.PerIdentity), "relayed calls per second one identity may make")
	fs.IntVar(&o.IdentityBurst, "transactor.identity-burst", d.IdentityBurst, "relayed calls one identity may make at once")
	fs.Float64Var(&o.ZeroFeeRate, "transactor.zero-fee-rate", float64(d.ZeroFeeRegistrations), "zero-fee (zero-stake) registrations per second one source address may make")
	fs.IntVar(&o.ZeroFeeBurst, "transactor.zero-fee-burst", d.ZeroFeeBurst, "zero-fee registrations one source address may make at once")
	fs.IntVar(&o.MaxInFlight, "transactor.max-in-flight", d.MaxInFlight, "relayed calls at once at most (503 beyond)")
}

// Config checks the options and returns the transactor configuration they
// describe for the chain c, whose key (keyFile, or the dev transactor key
// on a dev deployment) pays the gas and signs the quotes.
func (o TransactorOptions) Config(c *Chain, keyFile, dataDir string, log *slog.Logger) (TransactorConfig, error) {
	cfg := TransactorConfig{Chain: c.Client, Hermes: c.Hermes, Listen: o.Listen, InsecureHTTP: o.InsecureHTTP,
		MaxVouchersPerSponsor: o.MaxVouchersPerSponsor, Log: log}
	key, err := TransactorKey(keyFile, c.Client.Deployment())
	if err != nil {
		return cfg, err
	}
	if key == nil {
		return cfg, errors.New("not a dev deployment: pass --chain.transactor-key-file with the key that pays gas and signs the quotes")
	}
	cfg.Signer = identity.NewKeySigner(key)
	fees := make([]*big.Int, 3)
	for i, f := range []struct{ name, v string }{{"fee-register", o.FeeRegister}, {"fee-beneficiary", o.FeeBeneficiary}, {"fee-settle", o.FeeSettle}} {
		if fees[i], err = money.ParseMYST(f.v); err != nil {
			return cfg, fmt.Errorf("--transactor.%s: %w", f.name, err)
		}
	}
	cfg.Fees = transactor.Fees{Register: fees[0], Beneficiary: fees[1], Settle: fees[2]}
	if o.SourceRate <= 0 || o.IdentityRate <= 0 || o.ZeroFeeRate < 0 || o.SourceBurst <= 0 || o.IdentityBurst <= 0 || o.ZeroFeeBurst < 0 || o.MaxInFlight <= 0 {
		return cfg, errors.New("--transactor.*-rate, -burst and max-in-flight must be positive (zero-fee ones may be 0: no zero-fee registrations)")
	}
	cfg.Limits = transactor.Limits{
		PerSource: rate.Limit(o.SourceRate), SourceBurst: o.SourceBurst, PerIdentity: rate.Limit(o.IdentityRate), IdentityBurst: o.IdentityBurst,
		ZeroFeeRegistrations: rate.Limit(o.ZeroFeeRate), ZeroFeeBurst: o.ZeroFeeBurst, MaxKeys: transactor.DefaultLimits.MaxKeys, MaxInFlight: o.MaxInFlight,
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return cfg, errors.New("--tls.cert and --tls.key go together")
	}
	if o.TLSCert != "" {
		cf, err := hermes.LoadCertFiles(o.TLSCert, o.TLSKey, log)
		if err != nil {
			return cfg, err
		}
		cfg.TLS = cf.TLSConfig()
	}
	cfg.StorePath = o.Store
	if cfg.StorePath == "" {
		dir := filepath.Join(dataDir, "transactor")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return cfg, fmt.Errorf("node: %w", err)
		}
		cfg.StorePath = filepath.Join(dir, "transactor.db")
	}
	return cfg, nil
}

// RunTransactor runs `myst transactor`: the transactor o describes on
// chain c until ctx ends, printing where it serves to w.
func RunTransactor(ctx context.Context, w io.Writer, c *Chain, keyFile, dataDir string, o TransactorOptions, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	cfg, err := o.Config(c, keyFile, dataDir, log)
	if err != nil {
		return err
	}
	t, err := StartTransactor(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "transactor running\n  api:      %s (OpenAPI at /openapi.json)\n  account:  %s (pays the gas, takes the fees)\n  hermes:   %s\n  chain id: %s\n  store:    %s\n",
		t.URL(), cfg.Signer.Address().Hex(), cfg.Hermes.Hex(), c.Client.ChainID(), cfg.StorePath)
	<-ctx.Done()
	err = t.Close()
	log.Info("transactor stopped")
	return err
}
