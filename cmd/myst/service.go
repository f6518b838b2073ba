package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
)

func newServiceCmd(a *app) *cobra.Command {
	f := accountFlags{app: a}
	var (
		r   node.ServiceRun
		api bool
	)
	sf := &r.Options
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Run a provider: register, publish a proposal, serve paid WireGuard sessions",
		Long: `Registers the identity on chain if needed (waiting for the chain), publishes
a signed wireguard proposal over libp2p and serves sessions: every consumer is
checked (signature, proposal, price, registration, channel funds), gets a
tunnel address on the userspace exit, and pays per second and per byte
through the hermes. Ends a session when payment stops for longer than the
grace period. Session history and earnings are kept in
<data-dir>/provider; with --service.api the Tequilapi serves GET /sessions,
GET /earnings and POST /settle.`,
		Example: `  myst chain dev &  myst hermes &
  myst service --identity 0x... --passphrase-file pw --p2p.bootstrap /ip4/... --location.country DE`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r.Out, r.ShowPassword = cmd.OutOrStdout(), a.showPassword(cmd)
			if api {
				ac := a.apiConfig(cmd)
				r.API = &ac
			}
			return a.local(cmd).RunService(cmd.Context(), f.AccountFlags, r)
		},
	}
	fl := cmd.Flags()
	f.registerIdentity(fl, "provider identity")
	registerProviderChain(fl, &f, sf)
	fl.StringSliceVar(&r.Bootstrap, "p2p.bootstrap", nil, "bootstrap peers: /ip4/.../tcp/PORT/p2p/PEERID, comma separated")
	fl.BoolVar(&r.PublicAddrsOnly, network.PublicAddrsOnlyFlag, false, network.PublicAddrsOnlyUsage)
	fl.StringSliceVar(&r.Listen, "p2p.listen", []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}, "libp2p listen multiaddrs")
	fl.StringSliceVar(&sf.Relays, network.RelaysFlag, nil, network.RelaysUsage)
	fl.StringVar(&sf.ExitMode, "exit-mode", "userspace", "exit mode: userspace (gVisor netstack, no privileges) or kernel")
	r.Location.Register(fl, "")
	registerPrice(fl, &sf.PriceHour, &sf.PriceGiB)
	registerServe(fl, sf, "")
	fl.BoolVar(&api, "service.api", true, "serve GET /sessions, GET /earnings and POST /settle on the Tequilapi address")
	sf.Settle.Register(fl)
	sf.Caps.Register(fl)
	cmd.AddCommand(newServiceSettleCmd(a), newServiceSettlementsCmd(a))
	return cmd
}

func newServiceSettleCmd(a *app) *cobra.Command {
	f := accountFlags{app: a}
	var so node.ServeOptions
	cmd := leafCmd("settle", "Settle the provider's hermes earnings on chain (POST /settle on a running service, else from <data-dir>/provider)", func(cmd *cobra.Command) error {
		return a.local(cmd).SettleService(cmd.Context(), cmd.OutOrStdout(), f.amounts, f.AccountFlags, so)
	})
	fl := cmd.Flags()
	fl.StringVar(&f.Identity, "identity", "", "provider identity (default: the default identity)")
	registerProviderChain(fl, &f, &so)
	fl.BoolVar(&f.amounts.Wei, "wei", false, "show amounts in wei")
	return cmd
}

// registerProviderChain declares a standalone provider's --chain.*,
// --hermes.* and --transactor flags (myst service and its settle).
func registerProviderChain(fl *pflag.FlagSet, f *accountFlags, so *node.ServeOptions) {
	f.registerChain(fl)
	f.HermesFlag = "hermes.contract"
	fl.StringVar(&f.Hermes, "hermes.contract", "", "hermes contract the provider accepts and settles with (default: the deployment's hermes)")
	fl.StringVar(&so.HermesURL, "hermes.url", "", "hermes API: https://..., or http:// to loopback (default on dev chains only: "+node.DevHermesURL+")")
	fl.StringVar(&so.TransactorURL, "transactor", "", "transactor API that registers the identity and settles its earnings (the identity pays no gas; docs/transactor.md)")
	registerHermesTLS(fl, so, "hermes.")
}
