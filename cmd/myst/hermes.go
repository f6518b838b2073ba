package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/node"
)

func newHermesCmd(a *app) *cobra.Command {
	f := accountFlags{app: a}
	var operator string
	o := node.HermesOptions{HermesConfig: node.HermesConfig{ProcessMetrics: true}}
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
			o.DataDir, o.Log = a.dataDir, a.log
			return f.local(cmd).RunHermes(cmd.Context(), f.ChainFlags, operator, f.PassphraseFile, o, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	f.registerChain(fl)
	f.HermesFlag = "hermes.contract"
	fl.StringVar(&f.Hermes, "hermes.contract", "", "Hermes contract address (default: the deployment's hermes)")
	fl.StringVar(&operator, "hermes.operator", "", "operator identity in the keystore (default on dev deployments: the dev hermes operator)")
	fl.StringVar(&f.PassphraseFile, "passphrase-file", "", "file holding the operator identity's passphrase (or $MYST_PASSPHRASE)")
	fl.StringVar(&o.DSN, "hermes.db", "", "SQLite file, or postgres://... for PostgreSQL (default <data-dir>/hermes/hermes.db)")
	fl.StringVar(&o.Listen, "hermes.listen", "127.0.0.1:4060", "API listen address")
	fl.StringVar(&o.TLSCert, "tls.cert", "", "PEM certificate chain: serve the API over HTTPS (with --tls.key)")
	fl.StringVar(&o.TLSKey, "tls.key", "", "PEM private key of --tls.cert")
	fl.BoolVar(&o.InsecureHTTP, "hermes.insecure-http", false, "allow plain HTTP on a non-loopback --hermes.listen (unencrypted; never on a real network)")
	fl.StringVar(&o.ThresholdWei, "hermes.settle-threshold", "1000000000000000000", "settle a consumer's promise on chain once this much (wei) is revealed and unsettled")
	fl.DurationVar(&o.SettleInterval, "hermes.settle-interval", 30*time.Second, "how often the settlement worker runs")
	fl.StringVar(&o.MinFeeWei, "hermes.min-consumer-fee", "0", "lowest transactor fee (wei) a consumer promise must carry")
	fl.IntVar(&o.MaxUnrevealed, "hermes.max-unrevealed", 64, "promises a provider may hold without revealing R (0: no limit)")
	fl.IntVar(&o.MaxBatch, "hermes.max-batch", 512, "exchange messages per group commit at most")
	fl.DurationVar(&o.ChainPoll, "hermes.chain-poll", 2*time.Second, "how often to look for top-up events")
	fl.Float64Var(&o.Limits.SourceRate, "hermes.source-rate", hermes.DefaultSourceRate, "API requests per second one source address (IPv4, or IPv6 /64) may make; over it: 429 (negative: no limit)")
	fl.IntVar(&o.Limits.SourceBurst, "hermes.source-burst", hermes.DefaultSourceBurst, "API requests one source address may make at once")
	fl.IntVar(&o.Limits.RejectPenalty, "hermes.reject-penalty", hermes.DefaultRejectPenalty, "extra requests' worth an exchange or reveal rejected as junk, badly signed, unregistered or for another chain/hermes/channel costs its source (negative: none)")
	fl.Float64Var(&o.Limits.IdentityRate, "hermes.identity-rate", hermes.DefaultIdentityRate, "exchange messages per second one consumer identity may send; over it: 429 (negative: no limit)")
	fl.IntVar(&o.Limits.IdentityBurst, "hermes.identity-burst", hermes.DefaultIdentityBurst, "exchange messages one consumer identity may send at once")
	fl.DurationVar(&o.Limits.NegativeCacheTTL, "hermes.negative-cache-ttl", hermes.DefaultNegativeCacheTTL, "how long an unregistered identity (or one without a channel with this hermes) is remembered as such")
	fl.IntVar(&o.Limits.MaxTracked, "hermes.max-tracked", hermes.DefaultMaxTracked, "entries at most in each in-memory map keyed by remote input (channel cache, consumer/provider state, rate limiters); least recently used forgotten first")
	fl.StringVar(&o.ChainState, "hermes.chain-state", "", "file keeping pending settlement transactions and the event watcher position (default chain-state.db beside the SQLite store; needed with PostgreSQL)")
	fl.IntVar(&o.Confirmations, "chain.confirmations", -1, "blocks on top of a channel event before the hermes acts on it (-1: 0 on dev deployments, 12 otherwise)")
	fl.Uint64Var(&o.MaxLogRange, "chain.max-log-range", chain.DefaultMaxLogRange, "largest eth_getLogs block range (refused ranges are split)")
	fl.DurationVar(&o.TxReplaceAfter, "chain.tx-replace-after", chain.DefaultReplaceAfter, "replace a settlement transaction with higher fees when it is not mined this long")
	fl.StringVar(&o.MaxFeeCapWei, "chain.max-fee-cap", "", "fee ceiling in wei per gas for settlement transactions (default: 5x the first version's fee cap)")
	return cmd
}
