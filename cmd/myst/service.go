package main

import (
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/buildinfo"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// serveFlags configure a provider serving paid sessions: `myst service`
// and `myst daemon --provider.serve` (each declares them under its own
// names).
type serveFlags struct {
	on  bool
	opt node.ServeOptions
}

func newServiceCmd(a *app) *cobra.Command {
	f := accountFlags{app: a}
	var (
		sf                serveFlags
		bootstrap, listen []string
		publicOnly        bool
		loc               node.LocationOptions
		api               bool
	)
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
			r := node.ServiceRun{Options: sf.opt, Location: loc, Bootstrap: bootstrap, Listen: listen, PublicAddrsOnly: publicOnly,
				DataDir: a.dataDir, ShowPassword: a.showPassword(cmd), Out: cmd.OutOrStdout(), Log: a.log}
			if api {
				r.API = &tequilapi.Config{Address: a.tequilapiAddress, Port: a.tequilapiPort, PasswordFile: a.local(cmd).PasswordFile(), Version: buildinfo.String(), Log: a.log}
			}
			if c, err := a.daemonClient(cmd); err == nil { // one provider per data dir: the daemon's
				return node.ServiceViaDaemon(cmd.Context(), c, r, f.Identity, f.PassphraseFile)
			}
			if err := r.Check(); err != nil {
				return err
			}
			s, err := f.session(cmd, true)
			if err != nil {
				return err
			}
			defer s.Close()
			return f.withSigner(cmd, s.ID, func(signer identity.Signer) error {
				r.Chain, r.Signer = s.Chain, signer
				return node.RunService(cmd.Context(), r)
			})
		},
	}
	fl := cmd.Flags()
	f.registerChain(fl)
	fl.StringVar(&f.Identity, "identity", "", "provider identity (default: the default identity)")
	fl.StringVar(&f.PassphraseFile, "passphrase-file", "", "file holding the identity passphrase (or $MYST_PASSPHRASE)")
	fl.StringVar(&f.Hermes, "hermes.contract", "", "accepted hermes contract (default: the deployment's hermes)")
	fl.StringVar(&sf.opt.HermesURL, "hermes.url", "http://127.0.0.1:4060", "hermes API: https://..., or http:// to loopback")
	fl.StringVar(&sf.opt.TransactorURL, "transactor", "", "transactor API that registers the identity and settles its earnings (the identity pays no gas; docs/transactor.md)")
	registerHermesTLS(fl, &sf.opt, "hermes.")
	fl.StringSliceVar(&bootstrap, "p2p.bootstrap", nil, "bootstrap peers: /ip4/.../tcp/PORT/p2p/PEERID, comma separated")
	fl.BoolVar(&publicOnly, network.PublicAddrsOnlyFlag, false, network.PublicAddrsOnlyUsage)
	fl.StringSliceVar(&listen, "p2p.listen", []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}, "libp2p listen multiaddrs")
	fl.StringVar(&sf.opt.ExitMode, "exit-mode", "userspace", "exit mode: userspace (gVisor netstack, no privileges) or kernel")
	registerLocation(fl, &loc, "")
	fl.StringVar(&sf.opt.PriceHour, "price.per-hour", "0.005", "price per hour in MYST")
	fl.StringVar(&sf.opt.PriceGiB, "price.per-gib", "0.1", "price per GiB in MYST")
	fl.StringVar(&sf.opt.Advertise, "wg.advertise", "127.0.0.1", "address consumers reach the WireGuard port at (your public IP)")
	fl.Uint16Var(&sf.opt.WGPort, "wg.port", 51820, "WireGuard UDP port; the next port carries ICE when --wg.advertise is public or --portmap maps it")
	fl.BoolVar(&sf.opt.PortMap, network.PortMapFlag, false, network.PortMapUsage)
	fl.StringSliceVar(&sf.opt.ICE.Servers, "ice.server", nil, "the network's STUN/TURN servers for sessions through NATs: stun:HOST:3478, turn:HOST:3478?transport=udp|tcp, turns:HOST:5349 (none: the static WireGuard endpoint)")
	fl.StringSliceVar(&sf.opt.Relays, network.RelaysFlag, nil, network.RelaysUsage)
	fl.StringVar(&sf.opt.ICE.TURNCredentialsFile, "ice.turn-credentials-file", "", "file with one line username:password for the TURN servers (myst relay credentials)")
	fl.StringSliceVar(&sf.opt.Allow, "exit.allow", nil, "extra exit allow rules, e.g. \"tcp:127.0.0.1/32 port 8080\" (use sparingly)")
	fl.BoolVar(&api, "service.api", true, "serve GET /sessions, GET /earnings and POST /settle on the Tequilapi address")
	fl.DurationVar(&sf.opt.PayInterval, "payment.interval", 0, "invoice interval (default 30s)")
	fl.DurationVar(&sf.opt.PayGrace, "payment.grace", 0, "how long an invoice may stay unpaid before the session ends (default 30s)")
	registerSettle(fl, &sf.opt.Settle)
	sf.opt.Caps.Register(fl)
	cmd.AddCommand(newServiceSettleCmd(a), newServiceSettlementsCmd(a))
	return cmd
}

func newServiceSettleCmd(a *app) *cobra.Command {
	f := accountFlags{app: a}
	var hermesURL, transactorURL string
	var so node.ServeOptions
	cmd := &cobra.Command{
		Use:   "settle",
		Short: "Settle the provider's hermes earnings on chain (POST /settle on a running service, else from <data-dir>/provider)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if c, err := a.daemonClient(cmd); err == nil {
				var res tequilapi.SettleDTO
				err := c.Do(ctx, http.MethodPost, "/settle", nil, &res)
				if err == nil {
					fmt.Fprintf(out, "settled %s wei cumulative: tx %s\n", res.Amount, res.Tx)
					return nil
				}
				if !client.IsCode(err, tequilapi.CodeNotFound) {
					return err
				}
			}
			s, err := f.session(cmd, true)
			if err != nil {
				return err
			}
			defer s.Close()
			ht, err := so.HermesTLS()
			if err != nil {
				return err
			}
			e, res, err := node.SettleStoredVia(ctx, filepath.Join(a.dataDir, "provider"), s.Chain, hermesURL, ht, s.ID, transactorURL)
			if e.Earned != nil {
				fmt.Fprintf(out, "earned %s, settled %s, unsettled %s\n", f.amounts.OfWei(e.Earned), f.amounts.OfWei(e.Settled), f.amounts.OfWei(e.Unsettled))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "settled %s cumulative: tx %s\n", f.amounts.OfWei(res.Amount), res.Tx.Hex())
			return nil
		},
	}
	fl := cmd.Flags()
	f.registerChain(fl)
	fl.StringVar(&f.Identity, "identity", "", "provider identity (default: the default identity)")
	fl.StringVar(&f.Hermes, "hermes.contract", "", "hermes contract (default: the deployment's hermes)")
	fl.StringVar(&hermesURL, "hermes.url", "http://127.0.0.1:4060", "hermes API: https://..., or http:// to loopback")
	fl.StringVar(&transactorURL, "transactor", "", "settle through this transactor API (the identity pays no gas)")
	registerHermesTLS(fl, &so, "hermes.")
	fl.BoolVar(&f.amounts.Wei, "wei", false, "show amounts in wei")
	return cmd
}

// registerHermesTLS declares <prefix>ca and <prefix>insecure-http: how a
// provider trusts its hermes's HTTPS API.
func registerHermesTLS(fs *pflag.FlagSet, s *node.ServeOptions, prefix string) {
	s.HermesFlags = prefix
	fs.StringVar(&s.HermesCA, prefix+"ca", "", "PEM file of the CA that signed the hermes's TLS certificate (default: the system roots)")
	fs.BoolVar(&s.HermesInsecureHTTP, prefix+"insecure-http", false, "allow a plain http:// hermes URL to a non-loopback host (unencrypted; never on a real network)")
}
