package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/buildinfo"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

// daemonFlags are the flags of `myst daemon`, one struct per part.
type daemonFlags struct {
	allowRemote bool
	chain       node.ChainFlags
	disc        discoveryFlags
	serve       serveFlags
	cons        consumerFlags
}

// registerDaemonChain declares the daemon's one chain source, shared by
// the account routes and the consumer.
func registerDaemonChain(fs *pflag.FlagSet, f *node.ChainFlags) {
	f.HermesFlag = "chain.hermes"
	fs.Var(network.RPCFlag(&f.RPC, "http://127.0.0.1:8545"), "chain.rpc", "EVM JSON-RPC endpoint of the node (account routes, the consumer's channel); repeat it (or separate by commas) for RPCs to fail over to")
	fs.StringVar(&f.Deployment, "chain.deployment", "", "contract deployment JSON (default <data-dir>/chain/deployment.json)")
	fs.StringVar(&f.TransactorKeyFile, "chain.transactor-key-file", "", "file with the hex private key paying gas (default on dev deployments: the dev transactor account; without one, the account routes are read-only)")
	fs.StringVar(&f.Hermes, "chain.hermes", "", "hermes contract of the identities' channels (default: the deployment's hermes)")
}

// consumerFlags configure the daemon's consumer (PUT /connection).
type consumerFlags struct {
	identity, passFile, socks string
	tunIface, resolvConf      string
	icePort                   uint16
}

func newDaemonCmd(a *app) *cobra.Command {
	f := &daemonFlags{}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the node: storage, identities and the Tequilapi REST API",
		Long: `Run the node until SIGINT or SIGTERM.

On first start a random Tequilapi password is generated, stored in
<data-dir>/tequilapi.password (mode 0600) and printed once. Log in with
  curl -s -X POST http://127.0.0.1:4050/auth/login -d '{"username":"myst","password":"<password>"}'
and send the token as "Authorization: Bearer <token>".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(a, cmd)
			if err != nil {
				return err
			}
			return node.RunDaemon(cmd.Context(), cfg)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&f.allowRemote, "tequilapi.allow-remote", false, "allow Tequilapi to listen on a non-loopback address")
	registerDaemonChain(fs, &f.chain)
	f.disc.register(fs)
	s := &f.serve
	fs.BoolVar(&s.on, "provider.serve", false, "serve paid WireGuard sessions on the daemon's p2p host (like myst service): registers --provider.identity, announces its proposal (--location.*, --price.*) and adds GET /earnings, POST /settle")
	fs.StringVar(&s.opt.HermesURL, "provider.hermes-url", "http://127.0.0.1:4060", "hermes API of the served provider: https://..., or http:// to loopback")
	fs.StringVar(&s.opt.TransactorURL, "provider.transactor", "", "transactor API registering and settling the served provider (no gas of its own; docs/transactor.md)")
	registerHermesTLS(fs, &s.opt, "provider.hermes-")
	s.opt.Caps.Register(fs) // --provider.allow also restricts an announce-only proposal
	registerSettle(fs, &s.opt.Settle)
	fs.StringVar(&s.opt.ExitMode, "exit.mode", "userspace", "exit mode of the served provider: userspace (no privileges) or kernel")
	fs.StringSliceVar(&s.opt.Allow, "exit.allow", nil, "extra exit allow rules of the served provider, e.g. \"tcp:127.0.0.1/32 port 8080\"")
	fs.StringVar(&s.opt.Advertise, "wg.advertise", "127.0.0.1", "address consumers reach the served provider's WireGuard port at")
	fs.Uint16Var(&s.opt.WGPort, "wg.port", 51820, "WireGuard UDP port of the served provider; the next port carries ICE when --wg.advertise is public or --portmap maps it")
	fs.BoolVar(&s.opt.PortMap, network.PortMapFlag, false, network.PortMapUsage)
	fs.StringSliceVar(&s.opt.ICE.Servers, "ice.server", nil, "the network's STUN/TURN servers for sessions through NATs: stun:HOST:3478, turn:HOST:3478?transport=udp|tcp, turns:HOST:5349 (none: the static WireGuard endpoint)")
	fs.StringVar(&s.opt.ICE.TURNCredentialsFile, "ice.turn-credentials-file", "", "file with one line username:password for the TURN servers (myst relay credentials)")
	fs.DurationVar(&s.opt.PayInterval, "payment.interval", 0, "invoice interval of the served provider (default 30s)")
	fs.DurationVar(&s.opt.PayGrace, "payment.grace", 0, "how long an invoice may stay unpaid before the session ends (default 30s)")
	c := &f.cons
	fs.StringVar(&c.identity, "consumer.identity", "", "consumer identity paying for connections (default: the default identity)")
	fs.StringVar(&c.passFile, "consumer.passphrase-file", "", "file with the consumer identity's passphrase (or $"+node.PassphraseEnv+")")
	fs.StringVar(&c.socks, "consumer.socks", "127.0.0.1:1080", "default local SOCKS5 proxy address of a connection")
	fs.Uint16Var(&c.icePort, "consumer.ice-port", node.DefaultConsumerICEPort, "UDP port of the consumer's ICE socket, forwarded by the home router while connected with --portmap (0: any free port)")
	fs.StringVar(&c.tunIface, "tun.interface", kernel.DefaultClientInterface, "TUN interface of tun-mode connections (PUT /connection {\"mode\":\"tun\"}; needs CAP_NET_ADMIN)")
	fs.StringVar(&c.resolvConf, "tun.resolv-conf", "/etc/resolv.conf", "resolv.conf a tun-mode connection points at the tunnel's DNS and restores on disconnect (empty: leave DNS alone)")
	return cmd
}

// config is the node.DaemonConfig the flags describe.
func (f *daemonFlags) config(a *app, cmd *cobra.Command) (node.DaemonConfig, error) {
	cfg := node.DaemonConfig{
		DataDir: a.dataDir, LightScrypt: a.lightScrypt, Version: buildinfo.String(), Log: a.log,
		API: tequilapi.Config{
			Address: a.tequilapiAddress, Port: a.tequilapiPort, AllowRemote: f.allowRemote,
			PasswordFile: a.local(cmd).PasswordFile(), Version: buildinfo.String(), Log: a.log,
		},
		ShowPassword: a.showPassword(cmd),
		Consumer: node.DaemonConsumer{SOCKS: f.cons.socks,
			VPN: node.VPNConfig{Interface: f.cons.tunIface, ResolvConf: f.cons.resolvConf}, PortMap: f.serve.opt.PortMap, ICEPort: f.cons.icePort},
		ICE: f.serve.opt.ICE,
	}
	var err error
	if cfg.Chain, err = a.local(cmd).ChainConfig(f.chain); err != nil {
		return cfg, err
	}
	if cfg.Consumer.Identity, err = identityRef(f.cons.identity, f.cons.passFile); err != nil {
		return cfg, fmt.Errorf("--consumer.identity: %w", err)
	}
	d := &f.disc
	if cfg.P2P.Bootstrap, err = p2p.ParseBootstrap(d.p2p.bootstrap); err != nil {
		return cfg, err
	}
	cfg.P2P.ListenAddrs, cfg.P2P.NAT, cfg.P2P.Bootstrapper, cfg.P2P.ChainID = d.p2p.listen, d.p2p.nat, d.bootstrapper, d.p2p.chainID
	cfg.P2P.PublicAddrsOnly, cfg.P2P.Relays = d.p2p.publicOnly, d.p2p.relays
	prov := &cfg.Provider
	if prov.Identity, err = identityRef(d.identity, d.passFile); err != nil {
		return cfg, fmt.Errorf("--provider.identity: %w", err)
	}
	prov.TTL = d.ttl
	if d.announce {
		prov.Announce = true
		d.offer.ChainID, d.offer.Allow = d.p2p.chainID, f.serve.opt.Caps.Allow
		if prov.Offer, err = d.offer.Offer(); err != nil {
			return cfg, err
		}
	}
	if d.announce || f.serve.on { // (offer checked it when announcing)
		if prov.Location, err = d.offer.Location.Config(); err != nil {
			return cfg, fmt.Errorf("--provider.serve: %w", err)
		}
	}
	if f.serve.on {
		f.serve.opt.PriceHour, f.serve.opt.PriceGiB = d.offer.PriceHour, d.offer.PriceGiB
		pc, err := f.serve.opt.Config()
		if err != nil {
			return cfg, err
		}
		prov.Serve = &pc
	}
	return cfg, nil
}

// identityRef is an identity flag (empty: the default identity) and its
// passphrase file.
func identityRef(addr, passFile string) (node.IdentityRef, error) {
	r := node.IdentityRef{PassphraseFile: passFile}
	if addr == "" {
		return r, nil
	}
	a, err := identity.ParseAddress(addr)
	r.Address = a
	return r, err
}

// showPassword prints a new Tequilapi password once, on the terminal
// only, never in the log.
func (a *app) showPassword(cmd *cobra.Command) func(string) {
	return func(pw string) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Tequilapi password for user %q (shown once, stored in %s): %s\n", tequilapi.Username, a.local(cmd).PasswordFile(), pw)
	}
}

// daemonClient returns a logged-in Tequilapi client when a daemon for this
// data dir is running (client.Daemon); otherwise client.ErrNoDaemon.
func (a *app) daemonClient(cmd *cobra.Command) (*client.Client, error) {
	return a.local(cmd).Daemon(cmd.Context())
}
