package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/node"
)

func newHermesCmd(a *app) *cobra.Command {
	f := accountFlags{app: a}
	var (
		dbDSN, listen, operator string
		threshold, minFee       string
		settleEvery, pollEvery  time.Duration
		maxUnrevealed, maxBatch int
		tlsCert, tlsKey         string
		insecureHTTP            bool
		limits                  hermes.Limits
		chainState, maxFeeCap   string
		confirmations           int
		maxLogRange             uint64
		replaceAfter            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "hermes",
		Short: "Run a hermes payment hub (HTTP API, durable store, settlement worker)",
		Long: `Runs the hermes payment hub for one Hermes contract: providers post
consumers' exchange messages to POST /v1/exchange and get hermes promises,
reveal R on POST /v1/reveal, and query state; the API is described at
/openapi.json and metrics are at /metrics.

State is in SQLite at <data-dir>/hermes/hermes.db by default, or in
PostgreSQL with --hermes.db postgres://user@host:port/db. The operator key
signs hermes promises: --hermes.operator names a keystore identity (unlocked
with --passphrase-file or $MYST_PASSPHRASE); on a dev deployment (myst chain
dev) it defaults to the dev hermes operator, whose key is public.

The API is served over HTTPS with --tls.cert and --tls.key (PEM files,
re-read when they change). Without them it is plain HTTP, which is only
accepted on a loopback --hermes.listen address (a devnet) unless
--hermes.insecure-http is given.

Example against the dev chain:
  myst chain dev &
  myst hermes --hermes.listen 127.0.0.1:4060`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := f.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			thr, ok := new(big.Int).SetString(threshold, 10)
			if !ok || thr.Sign() <= 0 {
				return fmt.Errorf("--hermes.settle-threshold: %q is not a positive wei amount", threshold)
			}
			mf, ok := new(big.Int).SetString(minFee, 10)
			if !ok || mf.Sign() < 0 {
				return fmt.Errorf("--hermes.min-consumer-fee: %q is not a wei amount", minFee)
			}
			conf, err := confirmationsFor(confirmations, s.Client.Deployment().Faucet)
			if err != nil {
				return err
			}
			var feeCeiling *big.Int
			if maxFeeCap != "" {
				if feeCeiling, ok = new(big.Int).SetString(maxFeeCap, 10); !ok || feeCeiling.Sign() <= 0 {
					return fmt.Errorf("--chain.max-fee-cap: %q is not a positive wei amount", maxFeeCap)
				}
			}
			if maxUnrevealed == 0 {
				maxUnrevealed = -1 // the flag's 0 is no limit
			}
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("--tls.cert and --tls.key go together")
			}
			cfg := node.HermesConfig{
				Chain: s.Client, Hermes: s.Hermes, DSN: dbDSN, Listen: listen, SettleThreshold: thr, SettleInterval: settleEvery,
				MinConsumerFee: mf, MaxUnrevealed: maxUnrevealed, MaxBatch: maxBatch, ChainPoll: pollEvery, ProcessMetrics: true, Log: a.log,
				InsecureHTTP: insecureHTTP, Limits: limits,
				ChainState: chainState, Confirmations: conf, MaxLogRange: maxLogRange, TxReplaceAfter: replaceAfter, TxMaxFeeCap: feeCeiling,
			}
			if tlsCert != "" {
				cf, err := hermes.LoadCertFiles(tlsCert, tlsKey, a.log)
				if err != nil {
					return err
				}
				cfg.TLS = cf.TLSConfig()
			}
			run := func(signer identity.Signer) error {
				cfg.Operator = signer
				return a.runHermes(ctx, cmd, cfg)
			}
			if operator == "" {
				if !s.Client.Deployment().Faucet {
					return errors.New("--hermes.operator is required outside dev deployments")
				}
				a.log.Warn("hermes: using the dev hermes operator key (public; dev chains only)")
				return run(identity.NewKeySigner(devchain.DevKey(devchain.HermesAccount)))
			}
			addr, err := identity.ParseAddress(operator)
			if err != nil {
				return fmt.Errorf("--hermes.operator: %w", err)
			}
			return f.withSigner(cmd, addr, run)
		},
	}
	fl := cmd.Flags()
	f.registerChain(fl)
	fl.StringVar(&f.hermes, "hermes.contract", "", "Hermes contract address (default: the deployment's hermes)")
	fl.StringVar(&operator, "hermes.operator", "", "operator identity in the keystore (default on dev deployments: the dev hermes operator)")
	fl.StringVar(&f.passFile, "passphrase-file", "", "file holding the operator identity's passphrase (or $MYST_PASSPHRASE)")
	fl.StringVar(&dbDSN, "hermes.db", "", "SQLite file, or postgres://... for PostgreSQL (default <data-dir>/hermes/hermes.db)")
	fl.StringVar(&listen, "hermes.listen", "127.0.0.1:4060", "API listen address")
	fl.StringVar(&tlsCert, "tls.cert", "", "PEM certificate chain: serve the API over HTTPS (with --tls.key)")
	fl.StringVar(&tlsKey, "tls.key", "", "PEM private key of --tls.cert")
	fl.BoolVar(&insecureHTTP, "hermes.insecure-http", false, "allow plain HTTP on a non-loopback --hermes.listen (unencrypted; never on a real network)")
	fl.StringVar(&threshold, "hermes.settle-threshold", "1000000000000000000", "settle a consumer's promise on chain once this much (wei) is revealed and unsettled")
	fl.DurationVar(&settleEvery, "hermes.settle-interval", 30*time.Second, "how often the settlement worker runs")
	fl.StringVar(&minFee, "hermes.min-consumer-fee", "0", "lowest transactor fee (wei) a consumer promise must carry")
	fl.IntVar(&maxUnrevealed, "hermes.max-unrevealed", 64, "promises a provider may hold without revealing R (0: no limit)")
	fl.IntVar(&maxBatch, "hermes.max-batch", 512, "exchange messages per group commit at most")
	fl.DurationVar(&pollEvery, "hermes.chain-poll", 2*time.Second, "how often to look for top-up events")
	fl.Float64Var(&limits.SourceRate, "hermes.source-rate", hermes.DefaultSourceRate, "API requests per second one source address (IPv4, or IPv6 /64) may make; over it: 429 (negative: no limit)")
	fl.IntVar(&limits.SourceBurst, "hermes.source-burst", hermes.DefaultSourceBurst, "API requests one source address may make at once")
	fl.IntVar(&limits.RejectPenalty, "hermes.reject-penalty", hermes.DefaultRejectPenalty, "extra requests' worth an exchange or reveal rejected as junk, badly signed, unregistered or for another chain/hermes/channel costs its source (negative: none)")
	fl.Float64Var(&limits.IdentityRate, "hermes.identity-rate", hermes.DefaultIdentityRate, "exchange messages per second one consumer identity may send; over it: 429 (negative: no limit)")
	fl.IntVar(&limits.IdentityBurst, "hermes.identity-burst", hermes.DefaultIdentityBurst, "exchange messages one consumer identity may send at once")
	fl.DurationVar(&limits.NegativeCacheTTL, "hermes.negative-cache-ttl", hermes.DefaultNegativeCacheTTL, "how long an unregistered identity (or one without a channel with this hermes) is remembered as such")
	fl.IntVar(&limits.MaxTracked, "hermes.max-tracked", hermes.DefaultMaxTracked, "entries at most in each in-memory map keyed by remote input (channel cache, consumer/provider state, rate limiters); least recently used forgotten first")
	fl.StringVar(&chainState, "hermes.chain-state", "", "file keeping pending settlement transactions and the event watcher position (default chain-state.db beside the SQLite store; needed with PostgreSQL)")
	fl.IntVar(&confirmations, "chain.confirmations", -1, "blocks on top of a channel event before the hermes acts on it (-1: 0 on dev deployments, 12 otherwise)")
	fl.Uint64Var(&maxLogRange, "chain.max-log-range", chain.DefaultMaxLogRange, "largest eth_getLogs block range (refused ranges are split)")
	fl.DurationVar(&replaceAfter, "chain.tx-replace-after", chain.DefaultReplaceAfter, "replace a settlement transaction with higher fees when it is not mined this long")
	fl.StringVar(&maxFeeCap, "chain.max-fee-cap", "", "fee ceiling in wei per gas for settlement transactions (default: 5x the first version's fee cap)")
	return cmd
}

// runHermes runs the hermes cfg describes until ctx ends; the store
// defaults to <data-dir>/hermes/hermes.db.
func (a *app) runHermes(ctx context.Context, cmd *cobra.Command, cfg node.HermesConfig) error {
	if cfg.DSN == "" {
		dir := filepath.Join(a.dataDir, "hermes")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		cfg.DSN = filepath.Join(dir, "hermes.db")
	}
	h, err := node.StartHermes(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "hermes running\n  api:      %s (OpenAPI at /openapi.json, metrics at /metrics)\n  hermes:   %s (fee %d bps)\n  operator: %s\n  chain id: %s\n  store:    %s\n",
		h.URL(), cfg.Hermes.Hex(), h.FeeBps, cfg.Operator.Address().Hex(), cfg.Chain.ChainID(), redactDSN(cfg.DSN))
	<-ctx.Done()
	err = h.Close()
	a.log.Info("hermes stopped")
	return err
}

// redactDSN hides a password in a postgres:// DSN for printing.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
	}
	return dsn
}

// defaultConfirmations is the confirmation depth outside dev deployments
// when --chain.confirmations is not given.
const defaultConfirmations = 12

// confirmationsFor resolves --chain.confirmations (-1: by deployment).
func confirmationsFor(flag int, dev bool) (uint64, error) {
	switch {
	case flag >= 0:
		return uint64(flag), nil
	case flag == -1 && dev:
		return 0, nil
	case flag == -1:
		return defaultConfirmations, nil
	}
	return 0, fmt.Errorf("--chain.confirmations: %d is not a block count (or -1)", flag)
}
