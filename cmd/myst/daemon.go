package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/buildinfo"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

// daemonFlags are the flags of `myst daemon`.
type daemonFlags struct {
	allowRemote bool
	node.DaemonOptions
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
	registerChain(fs, &f.Chain, "; without one, the account routes are read-only")
	f.Chain.HermesFlag = "chain.hermes"
	fs.StringVar(&f.Chain.Hermes, "chain.hermes", "", "hermes contract of the identities' channels (default: the deployment's hermes)")
	registerDiscovery(fs, &f.DaemonOptions)
	s := &f.ServeOptions
	fs.BoolVar(&f.Serve, "provider.serve", false, "serve paid WireGuard sessions on the daemon's p2p host (like myst service): registers --provider.identity, announces its proposal (--location.*, --price.*) and adds GET /earnings, POST /settle")
	fs.StringVar(&s.HermesURL, "provider.hermes-url", "", "hermes API of the served provider: https://..., or http:// to loopback (default on dev chains only: "+node.DevHermesURL+")")
	fs.StringVar(&s.TransactorURL, "provider.transactor", "", "transactor API registering and settling the served provider (no gas of its own; docs/transactor.md)")
	registerHermesTLS(fs, s, "provider.hermes-")
	s.Caps.Register(fs) // --provider.allow also restricts an announce-only proposal
	s.Settle.Register(fs)
	fs.StringVar(&s.ExitMode, "exit.mode", "userspace", "exit mode of the served provider: userspace (no privileges) or kernel")
	registerServe(fs, s, " of the served provider")
	fs.StringVar(&f.ConsumerIdentity, "consumer.identity", "", "consumer identity paying for connections (default: the default identity)")
	fs.StringVar(&f.ConsumerPassphraseFile, "consumer.passphrase-file", "", "file with the consumer identity's passphrase (or $"+node.PassphraseEnv+")")
	fs.StringVar(&f.SOCKS, "consumer.socks", "127.0.0.1:1080", "default local SOCKS5 proxy address of a connection")
	fs.Uint16Var(&f.ConsumerICEPort, "consumer.ice-port", node.DefaultConsumerICEPort, "UDP port of the consumer's ICE socket, forwarded by the home router while connected with --portmap (0: any free port)")
	fs.StringVar(&f.TunInterface, "tun.interface", kernel.DefaultClientInterface, "TUN interface of tun-mode connections (PUT /connection {\"mode\":\"tun\"}; needs CAP_NET_ADMIN)")
	fs.StringVar(&f.ResolvConf, "tun.resolv-conf", "/etc/resolv.conf", "resolv.conf a tun-mode connection points at the tunnel's DNS and restores on disconnect (empty: leave DNS alone)")
	return cmd
}

// config is the node.DaemonConfig the flags describe.
func (f *daemonFlags) config(a *app, cmd *cobra.Command) (node.DaemonConfig, error) {
	l := a.local(cmd)
	cfg := node.DaemonConfig{
		DataDir: a.dataDir, LightScrypt: a.lightScrypt, Version: buildinfo.String(), Log: a.log,
		API:          a.apiConfig(cmd),
		ShowPassword: a.showPassword(cmd),
	}
	cfg.API.AllowRemote = f.allowRemote
	return cfg, f.Apply(l, &cfg)
}

// apiConfig is the Tequilapi of --tequilapi.*.
func (a *app) apiConfig(cmd *cobra.Command) tequilapi.Config {
	return tequilapi.Config{Address: a.tequilapiAddress, Port: a.tequilapiPort, PasswordFile: a.local(cmd).PasswordFile(),
		Version: buildinfo.String(), Log: a.log}
}

// showPassword prints a new Tequilapi password once, on the terminal
// only, never in the log.
func (a *app) showPassword(cmd *cobra.Command) func(string) {
	return func(pw string) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Tequilapi password for user %q (shown once, stored in %s): %s\n", tequilapi.Username, a.local(cmd).PasswordFile(), pw)
	}
}

// daemonClient returns a logged-in Tequilapi client when a daemon for this
// data dir is running (client.Daemon); otherwise client.ErrNoDaemon,
// wrapped with the advice to start one.
func (a *app) daemonClient(cmd *cobra.Command) (*client.Client, error) {
	c, err := a.local(cmd).Daemon(cmd.Context())
	if err != nil {
		return nil, fmt.Errorf("%w: start `myst daemon` first", err)
	}
	return c, nil
}
