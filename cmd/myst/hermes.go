package main

import (
	"github.com/spf13/cobra"

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

The Go runtime's GOGC and GOMEMLIMIT environment variables tune its garbage
collector: GOGC=400 took ~5% off the hermes' CPU per accepted message for
~20% more memory (docs/benchmarks.md).

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
	o.Register(fl)
	return cmd
}
