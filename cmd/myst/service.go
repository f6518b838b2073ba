package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/buildinfo"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
	mystsession "github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
	"github.com/openmyst/openmyst/tunnel"
)

func newServiceCmd() *cobra.Command {
	var (
		f                        accountFlags
		hermesURL, exitMode      string
		hermesTLS                hermesTLSFlags
		bootstrap, listen, allow []string
		loc                      locationFlags
		priceHour, priceGiB      string
		advertise                string
		wgPort                   uint16
		api                      bool
		payInterval, payGrace    time.Duration
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
			ctx := cmd.Context()
			mode, err := tunnel.ParseMode(exitMode)
			if err != nil {
				return err
			}
			if err := loc.check(); err != nil {
				return err
			}
			ph, err := market.ParseMYST(priceHour)
			if err != nil {
				return fmt.Errorf("--price.per-hour: %w", err)
			}
			pg, err := market.ParseMYST(priceGiB)
			if err != nil {
				return fmt.Errorf("--price.per-gib: %w", err)
			}
			adv, err := netip.ParseAddr(advertise)
			if err != nil {
				return fmt.Errorf("--wg.advertise: %w", err)
			}
			var rules []tunnel.Rule
			for _, a := range allow {
				r, err := tunnel.ParseRule(a)
				if err != nil {
					return fmt.Errorf("--exit.allow: %w", err)
				}
				rules = append(rules, r)
			}
			boot, err := p2p.ParseBootstrap(bootstrap)
			if err != nil {
				return err
			}
			ht, err := hermesTLS.load()
			if err != nil {
				return err
			}
			s, err := f.session(cmd, true)
			if err != nil {
				return err
			}
			defer s.Close()
			out := cmd.OutOrStdout()
			locator, closeDB, err := loc.locator(theApp.log)
			if err != nil {
				return err
			}
			defer closeDB()
			return f.withSigner(cmd, s.id, func(signer identity.Signer) error {
				p, err := node.StartProvider(ctx, node.ProviderConfig{
					DataDir: filepath.Join(theApp.dataDir, "provider"), Signer: signer, Chain: s.Client,
					Hermes: s.Hermes, HermesURL: hermesURL, HermesTLS: ht, Bootstrap: boot, ListenAddrs: listen, NAT: true,
					Locator: locator,
					Price:   market.Price{PerHour: market.NewAmount(ph), PerGiB: market.NewAmount(pg)},
					WGPort:  wgPort, AdvertiseAddr: adv, Allow: rules, ExitMode: mode,
					Payment:  node.Payment{Interval: payInterval, Grace: payGrace},
					Progress: func(m string) { fmt.Fprintln(out, m) }, Log: theApp.log,
				})
				if err != nil {
					return err
				}
				defer p.Close()
				l := p.Location()
				fmt.Fprintf(out, "provider %s serving: %s, %s MYST/h, %s MYST/GiB, wireguard %s, peer %s\n",
					signer.Address().Hex(), l.Country, priceHour, priceGiB, p.Exit.Endpoint(), p.P2P.ID())
				fmt.Fprintf(out, "  location: country %s, city %q, asn %d, ip type %s\n", l.Country, l.City, l.ASN, l.IPType)
				for _, a := range p.P2P.Multiaddrs() {
					fmt.Fprintf(out, "  p2p: %s\n", a)
				}
				if !api {
					<-ctx.Done()
					return nil
				}
				pw, created, err := tequilapi.EnsurePassword(theApp.passwordFile())
				if err != nil {
					return err
				}
				if created {
					fmt.Fprintf(cmd.ErrOrStderr(), "Tequilapi password for user %q (shown once, stored in %s): %s\n", tequilapi.Username, theApp.passwordFile(), pw)
				}
				srv, err := tequilapi.New(tequilapi.Config{
					Address: theApp.tequilapiAddress, Port: theApp.tequilapiPort, PasswordFile: theApp.passwordFile(),
					Version: buildinfo.String(), Log: theApp.log,
				})
				if err != nil {
					return err
				}
				srv.Add(tequilapi.SessionRoutes(node.HistoryAPI{History: func() *mystsession.History { return p.History }}, theApp.log)...)
				srv.Add(tequilapi.EarningsRoutes(node.EarningsAPI{Provider: p}, theApp.log)...)
				ln, err := srv.Listen()
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "tequilapi: http://%s (GET /sessions, GET /earnings, POST /settle)\n", ln.Addr())
				return srv.Serve(ctx, ln)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.rpc, "chain.rpc", "http://127.0.0.1:8545", "EVM JSON-RPC endpoint")
	fl.StringVar(&f.deployment, "chain.deployment", "", "contract deployment JSON (default <data-dir>/chain/deployment.json)")
	fl.StringVar(&f.txKeyFile, "chain.transactor-key-file", "", "file with the hex private key paying gas (default on dev deployments: the dev transactor)")
	fl.StringVar(&f.identity, "identity", "", "provider identity (default: the default identity)")
	fl.StringVar(&f.passFile, "passphrase-file", "", "file holding the identity passphrase (or $MYST_PASSPHRASE)")
	fl.StringVar(&f.hermes, "hermes.contract", "", "accepted hermes contract (default: the deployment's hermes)")
	fl.StringVar(&hermesURL, "hermes.url", "http://127.0.0.1:4060", "hermes API: https://..., or http:// to loopback")
	hermesTLS.register(fl, "hermes.")
	fl.StringSliceVar(&bootstrap, "p2p.bootstrap", nil, "bootstrap peers: /ip4/.../tcp/PORT/p2p/PEERID, comma separated")
	fl.StringSliceVar(&listen, "p2p.listen", []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}, "libp2p listen multiaddrs")
	fl.StringVar(&exitMode, "exit-mode", "userspace", "exit mode: userspace (gVisor netstack, no privileges) or kernel")
	fl.StringVar(&loc.country, "location.country", "", "country, ISO 3166-1 alpha-2 (required unless --location.geoip-db detects it; overrides it)")
	fl.StringVar(&loc.city, "location.city", "", "city (overrides --location.geoip-db)")
	fl.Uint32Var(&loc.asn, "location.asn", 0, "autonomous system number (overrides --location.geoip-db)")
	fl.StringVar(&loc.ipType, "location.ip-type", "", ipTypeUsage)
	loc.registerDetection(fl)
	fl.StringVar(&priceHour, "price.per-hour", "0.005", "price per hour in MYST")
	fl.StringVar(&priceGiB, "price.per-gib", "0.1", "price per GiB in MYST")
	fl.StringVar(&advertise, "wg.advertise", "127.0.0.1", "address consumers reach the WireGuard port at (your public IP)")
	fl.Uint16Var(&wgPort, "wg.port", 51820, "WireGuard UDP port")
	fl.StringSliceVar(&allow, "exit.allow", nil, "extra exit allow rules, e.g. \"tcp:127.0.0.1/32 port 8080\" (use sparingly)")
	fl.BoolVar(&api, "service.api", true, "serve GET /sessions, GET /earnings and POST /settle on the Tequilapi address")
	fl.DurationVar(&payInterval, "payment.interval", 0, "invoice interval (default 30s)")
	fl.DurationVar(&payGrace, "payment.grace", 0, "how long an invoice may stay unpaid before the session ends (default 30s)")
	cmd.AddCommand(newServiceSettleCmd())
	return cmd
}

func newServiceSettleCmd() *cobra.Command {
	var f accountFlags
	var hermesURL string
	var hermesTLS hermesTLSFlags
	cmd := &cobra.Command{
		Use:   "settle",
		Short: "Settle the provider's hermes earnings on chain (POST /settle on a running service, else from <data-dir>/provider)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if c, err := theApp.daemonClient(ctx); err == nil {
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
			db, err := storage.Open(filepath.Join(theApp.dataDir, "provider", storage.FileName))
			if err != nil {
				return fmt.Errorf("provider database: %w", err)
			}
			defer db.Close()
			ht, err := hermesTLS.load()
			if err != nil {
				return err
			}
			st, err := node.NewSettler(ctx, db, s.Client, s.Hermes, hermesURL, ht, s.id)
			if err != nil {
				return err
			}
			e, err := st.Earnings(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "earned %s, settled %s, unsettled %s\n", f.amount(e.Earned), f.amount(e.Settled), f.amount(e.Unsettled))
			res, err := st.Settle(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "settled %s cumulative: tx %s\n", f.amount(res.Amount), res.Tx.Hex())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.rpc, "chain.rpc", "http://127.0.0.1:8545", "EVM JSON-RPC endpoint")
	fl.StringVar(&f.deployment, "chain.deployment", "", "contract deployment JSON (default <data-dir>/chain/deployment.json)")
	fl.StringVar(&f.txKeyFile, "chain.transactor-key-file", "", "file with the hex private key paying gas (default on dev deployments: the dev transactor)")
	fl.StringVar(&f.identity, "identity", "", "provider identity (default: the default identity)")
	fl.StringVar(&f.hermes, "hermes.contract", "", "hermes contract (default: the deployment's hermes)")
	fl.StringVar(&hermesURL, "hermes.url", "http://127.0.0.1:4060", "hermes API: https://..., or http:// to loopback")
	hermesTLS.register(fl, "hermes.")
	fl.BoolVar(&f.wei, "wei", false, "show amounts in wei")
	return cmd
}

// daemonProviderFlags configure the provider a daemon runs with
// --provider.serve on its own p2p host. Identity, location and prices come
// from the discovery part's --provider.* / --location.* / --price.* flags.
type daemonProviderFlags struct {
	serve                 bool
	hermesURL, exitMode   string
	hermesTLS             hermesTLSFlags
	advertise             string
	allow                 []string
	wgPort                uint16
	payInterval, payGrace time.Duration
}

var provFlags daemonProviderFlags

// providerRetry is how long the daemon waits before retrying a provider
// start that failed (chain not reachable yet, ...).
const providerRetry = 5 * time.Second

func init() {
	registerDaemonExtension(daemonExtension{
		Name: "provider",
		Flags: func(fs *pflag.FlagSet) {
			f := &provFlags
			fs.BoolVar(&f.serve, "provider.serve", false, "serve paid WireGuard sessions on the daemon's p2p host (like myst service): registers --provider.identity, announces its proposal (--location.*, --price.*) and adds GET /earnings, POST /settle")
			fs.StringVar(&f.hermesURL, "provider.hermes-url", "http://127.0.0.1:4060", "hermes API of the served provider: https://..., or http:// to loopback")
			f.hermesTLS.register(fs, "provider.hermes-")
			fs.StringVar(&f.exitMode, "exit.mode", "userspace", "exit mode of the served provider: userspace (no privileges) or kernel")
			fs.StringSliceVar(&f.allow, "exit.allow", nil, "extra exit allow rules of the served provider, e.g. \"tcp:127.0.0.1/32 port 8080\"")
			fs.StringVar(&f.advertise, "wg.advertise", "127.0.0.1", "address consumers reach the served provider's WireGuard port at")
			fs.Uint16Var(&f.wgPort, "wg.port", 51820, "WireGuard UDP port of the served provider")
			fs.DurationVar(&f.payInterval, "payment.interval", 0, "invoice interval of the served provider (default 30s)")
			fs.DurationVar(&f.payGrace, "payment.grace", 0, "how long an invoice may stay unpaid before the session ends (default 30s)")
		},
		Start: startDaemonProvider,
	})
}

// startDaemonProvider runs a node.Provider on the daemon's p2p host and
// chain source. It starts in the background (registration waits for the
// chain) and retries until the chain is reachable.
func startDaemonProvider(ctx context.Context, n *daemonNode) (func(context.Context) error, error) {
	f := provFlags
	if !f.serve {
		return nil, nil
	}
	if discFlags.announce {
		return nil, errors.New("--provider.serve announces the provider's proposal itself: drop --provider.announce")
	}
	if n.P2P == nil || n.Discovery == nil {
		return nil, errors.New("--provider.serve needs the daemon's p2p node")
	}
	cfg, err := f.config(n)
	if err != nil {
		return nil, err
	}
	lf := discFlags.location()
	locator, closeDB, err := lf.locator(n.Log)
	if err != nil {
		return nil, err
	}
	cfg.Locator = locator
	signer, err := discFlags.signer(ctx, n.Identities)
	if err != nil {
		closeDB()
		return nil, err
	}
	cfg.Signer = signer
	ep := &daemonEarnings{}
	n.API.Add(tequilapi.EarningsRoutes(ep, n.Log)...)

	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := f.start(ctx, n, cfg)
			if err == nil {
				ep.set(p)
				n.Log.Info("provider serving", "provider", signer.Address().Hex(), "peer", n.P2P.ID().String(),
					"wireguard", p.Exit.Endpoint().String(), "country", cfg.Location.Country)
				return
			}
			if ctx.Err() != nil {
				return
			}
			n.Log.Warn("provider: start failed; retrying", "err", err, "in", providerRetry)
			select {
			case <-ctx.Done():
				return
			case <-time.After(providerRetry):
			}
		}
	}()
	return func(context.Context) error {
		cancel()
		<-done
		defer closeDB()
		if p := ep.get(); p != nil {
			return p.Close()
		}
		return nil
	}, nil
}

// config builds the provider configuration the flags describe (without
// chain and signer).
func (f daemonProviderFlags) config(n *daemonNode) (node.ProviderConfig, error) {
	var cfg node.ProviderConfig
	mode, err := tunnel.ParseMode(f.exitMode)
	if err != nil {
		return cfg, err
	}
	d := discFlags
	lf := d.location()
	if err := lf.check(); err != nil {
		return cfg, fmt.Errorf("--provider.serve: %w", err)
	}
	ph, err := market.ParseMYST(d.priceHour)
	if err != nil {
		return cfg, fmt.Errorf("--price.per-hour: %w", err)
	}
	pg, err := market.ParseMYST(d.priceGiB)
	if err != nil {
		return cfg, fmt.Errorf("--price.per-gib: %w", err)
	}
	adv, err := netip.ParseAddr(f.advertise)
	if err != nil {
		return cfg, fmt.Errorf("--wg.advertise: %w", err)
	}
	var rules []tunnel.Rule
	for _, a := range f.allow {
		r, err := tunnel.ParseRule(a)
		if err != nil {
			return cfg, fmt.Errorf("--exit.allow: %w", err)
		}
		rules = append(rules, r)
	}
	ht, err := f.hermesTLS.load()
	if err != nil {
		return cfg, err
	}
	return node.ProviderConfig{
		DataDir: filepath.Join(n.DataDir, "provider"), HermesURL: f.hermesURL, HermesTLS: ht,
		P2P: n.P2P, Discovery: n.Discovery,
		Price:  market.Price{PerHour: market.NewAmount(ph), PerGiB: market.NewAmount(pg)},
		WGPort: f.wgPort, AdvertiseAddr: adv, Allow: rules, ExitMode: mode,
		Payment:  node.Payment{Interval: f.payInterval, Grace: f.payGrace},
		Progress: func(m string) { n.Log.Info("provider: " + m) }, Log: n.Log,
	}, nil
}

// start connects the chain and starts the provider once.
func (f daemonProviderFlags) start(ctx context.Context, n *daemonNode, cfg node.ProviderConfig) (*node.Provider, error) {
	cl, hermes, err := n.Chain.Chain(ctx)
	if err != nil {
		return nil, err
	}
	if want := cl.ChainID().Uint64(); discFlags.p2p.chainID != want {
		return nil, fmt.Errorf("the chain has id %d but the p2p node gossips proposals of chain %d: restart the daemon with --discovery.chain-id %d", want, discFlags.p2p.chainID, want)
	}
	cfg.Chain, cfg.Hermes = cl, hermes
	return node.StartProvider(ctx, cfg)
}

// daemonEarnings is tequilapi.EarningsService over the daemon's provider
// once it has started (503 provider_starting before).
type daemonEarnings struct {
	mu sync.Mutex
	p  *node.Provider
}

func (e *daemonEarnings) set(p *node.Provider) { e.mu.Lock(); e.p = p; e.mu.Unlock() }

func (e *daemonEarnings) get() *node.Provider {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.p
}

func (e *daemonEarnings) api() (node.EarningsAPI, error) {
	p := e.get()
	if p == nil {
		return node.EarningsAPI{}, tequilapi.NewError(http.StatusServiceUnavailable, "provider_starting", "the provider has not started yet (see the daemon log)")
	}
	return node.EarningsAPI{Provider: p}, nil
}

// Earnings implements tequilapi.EarningsService.
func (e *daemonEarnings) Earnings(ctx context.Context) (tequilapi.EarningsDTO, error) {
	a, err := e.api()
	if err != nil {
		return tequilapi.EarningsDTO{}, err
	}
	return a.Earnings(ctx)
}

// Settle implements tequilapi.EarningsService.
func (e *daemonEarnings) Settle(ctx context.Context) (tequilapi.SettleDTO, error) {
	a, err := e.api()
	if err != nil {
		return tequilapi.SettleDTO{}, err
	}
	return a.Settle(ctx)
}

// hermesTLSFlags say how a provider trusts its hermes's HTTPS API.
type hermesTLSFlags struct {
	prefix   string
	ca       string
	insecure bool
}

// register adds <prefix>ca and <prefix>insecure-http to fl.
func (h *hermesTLSFlags) register(fl *pflag.FlagSet, prefix string) {
	h.prefix = prefix
	fl.StringVar(&h.ca, prefix+"ca", "", "PEM file of the CA that signed the hermes's TLS certificate (default: the system roots)")
	fl.BoolVar(&h.insecure, prefix+"insecure-http", false, "allow a plain http:// hermes URL to a non-loopback host (unencrypted; never on a real network)")
}

// load reads the CA file.
func (h hermesTLSFlags) load() (node.HermesTLS, error) {
	t, err := node.LoadHermesTLS(h.ca, h.insecure)
	if err != nil {
		return t, fmt.Errorf("--%sca: %w", h.prefix, err)
	}
	return t, nil
}
