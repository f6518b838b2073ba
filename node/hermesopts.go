package node

import (
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/identity"
	"github.com/spf13/pflag"
)

// HermesOptions are a hermes's settings as an operator gives them (`myst
// hermes` binds its flags here): the fields of HermesConfig that take
// plain values, and the ones Config parses and resolves.
type HermesOptions struct {
	HermesConfig
	// DataDir holds the default SQLite store (<DataDir>/hermes/hermes.db)
	// when DSN is empty.
	DataDir string
	// ThresholdWei, MinFeeWei and MaxFeeCapWei are wei amounts as decimal
	// integers: settlement threshold (> 0), lowest consumer transactor fee
	// (>= 0), settlement fee ceiling per gas (> 0; empty: the default).
	ThresholdWei, MinFeeWei, MaxFeeCapWei string
	// Confirmations is the confirmation depth; -1: 0 on dev deployments,
	// DefaultConfirmations otherwise.
	Confirmations int
	// TLSCert and TLSKey are PEM files serving the API over HTTPS (both
	// or neither).
	TLSCert, TLSKey string
}

// Register declares the options' flags on fs (`myst hermes`):
// --hermes.db, --hermes.listen, --tls.*, the settlement, limit and
// --chain.* settings of the hermes, with their defaults.
func (o *HermesOptions) Register(fs *pflag.FlagSet) {
	fs.StringVar(&o.DSN, "hermes.db", "", "SQLite file, or postgres://... for PostgreSQL (default <data-dir>/hermes/hermes.db)")
	fs.StringVar(&o.Listen, "hermes.listen", "127.0.0.1:4060", "API listen address")
	fs.StringVar(&o.TLSCert, "tls.cert", "", "PEM certificate chain: serve the API over HTTPS (with --tls.key)")
	fs.StringVar(&o.TLSKey, "tls.key", "", "PEM private key of --tls.cert")
	fs.BoolVar(&o.InsecureHTTP, "hermes.insecure-http", false, "allow plain HTTP on a non-loopback --hermes.listen (unencrypted; never on a real network)")
	fs.StringVar(&o.ThresholdWei, "hermes.settle-threshold", "1000000000000000000", "settle a consumer's promise on chain once this much (wei) is revealed and unsettled")
	fs.DurationVar(&o.SettleInterval, "hermes.settle-interval", 30*time.Second, "how often the settlement worker runs")
	fs.StringVar(&o.MinFeeWei, "hermes.min-consumer-fee", "0", "lowest transactor fee (wei) a consumer promise must carry")
	fs.IntVar(&o.MaxUnrevealed, "hermes.max-unrevealed", 64, "promises a provider may hold without revealing R (0: no limit)")
	fs.IntVar(&o.MaxBatch, "hermes.max-batch", 512, "exchange messages per group commit at most")
	fs.DurationVar(&o.CommitDelay, "hermes.commit-delay", 0, "longest a group commit waits for accepts already on their way; 0 = default "+hermes.DefaultCommitDelay.String()+", negative = never (at most "+MaxHermesCommitDelay.String()+")")
	fs.IntVar(&o.CPUSlots, "hermes.cpu-slots", 0, "requests running their CPU-bound part (signature checks, signing) at once; 0 = default (GOMAXPROCS-1 with SQLite, GOMAXPROCS with PostgreSQL)")
	fs.DurationVar(&o.ChainPoll, "hermes.chain-poll", 2*time.Second, "how often to look for top-up events")
	fs.Float64Var(&o.Limits.SourceRate, "hermes.source-rate", hermes.DefaultSourceRate, "API requests per second one source address (IPv4, or IPv6 /64) may make; over it: 429 (negative: no limit)")
	fs.IntVar(&o.Limits.SourceBurst, "hermes.source-burst", hermes.DefaultSourceBurst, "API requests one source address may make at once")
	fs.IntVar(&o.Limits.RejectPenalty, "hermes.reject-penalty", hermes.DefaultRejectPenalty, "extra requests' worth an exchange or reveal rejected as junk, badly signed, unregistered or for another chain/hermes/channel costs its source (negative: none)")
	fs.Float64Var(&o.Limits.IdentityRate, "hermes.identity-rate", hermes.DefaultIdentityRate, "exchange messages per second one consumer identity may send; over it: 429 (negative: no limit)")
	fs.IntVar(&o.Limits.IdentityBurst, "hermes.identity-burst", hermes.DefaultIdentityBurst, "exchange messages one consumer identity may send at once")
	fs.DurationVar(&o.Limits.NegativeCacheTTL, "hermes.negative-cache-ttl", hermes.DefaultNegativeCacheTTL, "how long an unregistered identity (or one without a channel with this hermes) is remembered as such")
	fs.IntVar(&o.Limits.MaxTracked, "hermes.max-tracked", hermes.DefaultMaxTracked, "entries at most in each in-memory map keyed by remote input (channel cache, consumer/provider state, rate limiters); least recently used forgotten first")
	fs.StringVar(&o.ChainState, "hermes.chain-state", "", "file keeping pending settlement transactions and the event watcher position (default chain-state.db beside the SQLite store; needed with PostgreSQL)")
	fs.IntVar(&o.Confirmations, "chain.confirmations", -1, "blocks on top of a channel event before the hermes acts on it (-1: 0 on dev deployments, 12 otherwise)")
	fs.Uint64Var(&o.MaxLogRange, "chain.max-log-range", chain.DefaultMaxLogRange, "largest eth_getLogs block range (refused ranges are split)")
	fs.DurationVar(&o.TxReplaceAfter, "chain.tx-replace-after", chain.DefaultReplaceAfter, "replace a settlement transaction with higher fees when it is not mined this long")
	fs.StringVar(&o.MaxFeeCapWei, "chain.max-fee-cap", "", "fee ceiling in wei per gas for settlement transactions (default: 5x the first version's fee cap)")
}

// MaxHermesCommitDelay is the longest --hermes.commit-delay accepted: a
// group commit that waits longer only adds latency.
const MaxHermesCommitDelay = 100 * time.Millisecond

// DefaultConfirmations is the confirmation depth outside dev deployments
// when none is given.
const DefaultConfirmations = 12

// Config checks the options and returns the hermes configuration on c
// signed by operator (see HermesOperator); it creates the default store
// directory.
func (o HermesOptions) Config(c *Chain, operator identity.Signer) (HermesConfig, error) {
	cfg := o.HermesConfig
	if cfg.CommitDelay > MaxHermesCommitDelay {
		return cfg, fmt.Errorf("--hermes.commit-delay: %v is above %v (a longer wait only adds latency)", cfg.CommitDelay, MaxHermesCommitDelay)
	}
	if cfg.CPUSlots < 0 {
		return cfg, fmt.Errorf("--hermes.cpu-slots: %d is not a slot count (0: the default)", cfg.CPUSlots)
	}
	cfg.Chain, cfg.Hermes, cfg.Operator = c.Client, c.Hermes, operator
	var err error
	if cfg.SettleThreshold, err = parseWei("--hermes.settle-threshold", o.ThresholdWei, false); err != nil {
		return cfg, err
	}
	if cfg.MinConsumerFee, err = parseWei("--hermes.min-consumer-fee", o.MinFeeWei, true); err != nil {
		return cfg, err
	}
	if o.MaxFeeCapWei != "" {
		if cfg.TxMaxFeeCap, err = parseWei("--chain.max-fee-cap", o.MaxFeeCapWei, false); err != nil {
			return cfg, err
		}
	}
	if cfg.Confirmations, err = ConfirmationsFor(o.Confirmations, devDeployment(c.Client.Deployment())); err != nil {
		return cfg, err
	}
	if cfg.MaxUnrevealed == 0 {
		cfg.MaxUnrevealed = -1 // an operator's 0 is no limit
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return cfg, errors.New("--tls.cert and --tls.key go together")
	}
	if o.TLSCert != "" {
		cf, err := hermes.LoadCertFiles(o.TLSCert, o.TLSKey, cfg.Log)
		if err != nil {
			return cfg, err
		}
		cfg.TLS = cf.TLSConfig()
	}
	if cfg.DSN == "" {
		dir := filepath.Join(o.DataDir, "hermes")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return cfg, fmt.Errorf("create %s: %w", dir, err)
		}
		cfg.DSN = filepath.Join(dir, "hermes.db")
	}
	return cfg, nil
}

// parseWei parses a decimal wei amount; negative amounts are refused, zero
// only when zeroOK.
func parseWei(flag, s string, zeroOK bool) (*big.Int, error) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 || (!zeroOK && v.Sign() == 0) {
		what := "a positive wei amount"
		if zeroOK {
			what = "a wei amount"
		}
		return nil, fmt.Errorf("%s: %q is not %s", flag, s, what)
	}
	return v, nil
}

// HermesDevOperator is the operator of a dev deployment's hermes, whose
// key is public; outside dev deployments it is an error to have none.
func HermesDevOperator(c *Chain) (identity.Signer, error) {
	if err := DevKeysAllowed(c.Client.Deployment()); err != nil {
		return nil, fmt.Errorf("--hermes.operator is required outside dev chains: %w", err)
	}
	return identity.NewKeySigner(devchain.DevKey(devchain.HermesAccount)), nil
}

// ConfirmationsFor resolves a confirmation depth option (-1: 0 on dev
// deployments, DefaultConfirmations otherwise).
func ConfirmationsFor(flag int, dev bool) (uint64, error) {
	switch {
	case flag >= 0:
		return uint64(flag), nil
	case flag == -1 && dev:
		return 0, nil
	case flag == -1:
		return DefaultConfirmations, nil
	}
	return 0, fmt.Errorf("--chain.confirmations: %d is not a block count (or -1)", flag)
}

// RedactDSN hides a password in a postgres:// DSN for printing.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
	}
	return dsn
}
