package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/buildinfo"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// daemonFlags are the flags of `myst daemon`, one struct per part.
type daemonFlags struct {
	allowRemote bool
	chain       daemonChainFlags
	disc        discoveryFlags
	serve       serveFlags
	cons        consumerFlags
}

// daemonChainFlags configure the daemon's one chain source, shared by the
// account routes and the consumer.
type daemonChainFlags struct {
	rpc, deployment, txKeyFile, hermes string
}

func (f *daemonChainFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.rpc, "chain.rpc", "http://127.0.0.1:8545", "EVM JSON-RPC endpoint of the node (account routes, the consumer's channel)")
	fs.StringVar(&f.deployment, "chain.deployment", "", "contract deployment JSON (default <data-dir>/chain/deployment.json)")
	fs.StringVar(&f.txKeyFile, "chain.transactor-key-file", "", "file with the hex private key paying gas (default on dev deployments: the dev transactor account; without one, the account routes are read-only)")
	fs.StringVar(&f.hermes, "chain.hermes", "", "hermes contract of the identities' channels (default: the deployment's hermes)")
}

// config is the chain source the flags describe.
func (f daemonChainFlags) config(a *app) (node.ChainConfig, error) {
	cfg := node.ChainConfig{RPC: f.rpc, Deployment: f.deployment, TransactorKeyFile: f.txKeyFile, Log: a.log}
	if cfg.Deployment == "" {
		cfg.Deployment = a.defaultDeploymentPath()
	}
	if f.hermes != "" {
		h, err := identity.ParseAddress(f.hermes)
		if err != nil {
			return cfg, fmt.Errorf("--chain.hermes: %w", err)
		}
		cfg.Hermes = h
	}
	return cfg, nil
}

// consumerFlags configure the daemon's consumer (PUT /connection).
type consumerFlags struct {
	identity, passFile, socks string
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
	f.chain.register(fs)
	f.disc.register(fs)
	s := &f.serve
	fs.BoolVar(&s.on, "provider.serve", false, "serve paid WireGuard sessions on the daemon's p2p host (like myst service): registers --provider.identity, announces its proposal (--location.*, --price.*) and adds GET /earnings, POST /settle")
	fs.StringVar(&s.hermesURL, "provider.hermes-url", "http://127.0.0.1:4060", "hermes API of the served provider: https://..., or http:// to loopback")
	s.hermesTLS.register(fs, "provider.hermes-")
	fs.StringVar(&s.exitMode, "exit.mode", "userspace", "exit mode of the served provider: userspace (no privileges) or kernel")
	fs.StringSliceVar(&s.allow, "exit.allow", nil, "extra exit allow rules of the served provider, e.g. \"tcp:127.0.0.1/32 port 8080\"")
	fs.StringVar(&s.advertise, "wg.advertise", "127.0.0.1", "address consumers reach the served provider's WireGuard port at")
	fs.Uint16Var(&s.wgPort, "wg.port", 51820, "WireGuard UDP port of the served provider")
	fs.DurationVar(&s.payInterval, "payment.interval", 0, "invoice interval of the served provider (default 30s)")
	fs.DurationVar(&s.payGrace, "payment.grace", 0, "how long an invoice may stay unpaid before the session ends (default 30s)")
	c := &f.cons
	fs.StringVar(&c.identity, "consumer.identity", "", "consumer identity paying for connections (default: the default identity)")
	fs.StringVar(&c.passFile, "consumer.passphrase-file", "", "file with the consumer identity's passphrase (or $"+node.PassphraseEnv+")")
	fs.StringVar(&c.socks, "consumer.socks", "127.0.0.1:1080", "default local SOCKS5 proxy address of a connection")
	return cmd
}

// config is the node.DaemonConfig the flags describe.
func (f *daemonFlags) config(a *app, cmd *cobra.Command) (node.DaemonConfig, error) {
	cfg := node.DaemonConfig{
		DataDir: a.dataDir, LightScrypt: a.lightScrypt, Version: buildinfo.String(), Log: a.log,
		API: tequilapi.Config{
			Address: a.tequilapiAddress, Port: a.tequilapiPort, AllowRemote: f.allowRemote,
			PasswordFile: a.passwordFile(), Version: buildinfo.String(), Log: a.log,
		},
		ShowPassword: a.showPassword(cmd),
		Consumer:     node.DaemonConsumer{SOCKS: f.cons.socks},
	}
	var err error
	if cfg.Chain, err = f.chain.config(a); err != nil {
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
	prov := &cfg.Provider
	if prov.Identity, err = identityRef(d.identity, d.passFile); err != nil {
		return cfg, fmt.Errorf("--provider.identity: %w", err)
	}
	prov.TTL = d.ttl
	if d.announce {
		prov.Announce = true
		if prov.Offer, err = d.offer(); err != nil {
			return cfg, err
		}
	}
	if d.announce || f.serve.on { // (offer checked it when announcing)
		if prov.Location, err = d.loc.config(); err != nil {
			return cfg, fmt.Errorf("--provider.serve: %w", err)
		}
	}
	if f.serve.on {
		f.serve.priceHour, f.serve.priceGiB = d.priceHour, d.priceGiB
		pc, err := f.serve.config()
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
		fmt.Fprintf(cmd.ErrOrStderr(), "Tequilapi password for user %q (shown once, stored in %s): %s\n", tequilapi.Username, a.passwordFile(), pw)
	}
}

// identityManager opens the keystore; db may be nil (default identity then
// not remembered).
func (a *app) identityManager(db *storage.DB) (*identity.Manager, error) {
	return node.NewIdentityManager(a.dataDir, db, a.lightScrypt)
}

// tequilapiURL is the base URL of the configured Tequilapi.
func (a *app) tequilapiURL() string {
	return "http://" + net.JoinHostPort(a.tequilapiAddress, strconv.Itoa(a.tequilapiPort))
}

// errNoDaemon means no daemon answers for this data dir.
var errNoDaemon = errors.New("no running daemon for this data dir")

// daemonClient returns a logged-in Tequilapi client when a daemon for this
// data dir is running: its password file exists, the configured address
// answers /healthcheck and the password logs in. Otherwise errNoDaemon.
func (a *app) daemonClient(ctx context.Context) (*client.Client, error) {
	pw, err := tequilapi.ReadPassword(a.passwordFile())
	if err != nil {
		return nil, errNoDaemon
	}
	c, err := client.New(a.tequilapiURL(), &http.Client{Timeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.Healthcheck(hctx); err != nil {
		return nil, errNoDaemon
	}
	if _, err := c.Login(hctx, pw); err != nil {
		a.log.Debug("daemon answers but login with the password file failed", "err", err)
		return nil, errNoDaemon
	}
	return c, nil
}
