package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/atomicfile"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/relay"
	"github.com/openmyst/openmyst/transactor"
	"github.com/openmyst/openmyst/tunnel"
)

// ProviderSpec describes one devnet provider.
type ProviderSpec struct {
	// Country, City and IPType are its location.
	Country, City string
	IPType        market.IPType
	// PerHour and PerGiB are its price in MYST ("0" for a free node).
	PerHour, PerGiB string
}

// DefaultProviders are the devnet's three providers: two paid ones in
// different countries and prices, and a free test node.
var DefaultProviders = []ProviderSpec{
	{Country: "DE", City: "Berlin", IPType: market.IPResidential, PerHour: "0.06", PerGiB: "0.1"},
	{Country: "US", City: "Austin", IPType: market.IPHosting, PerHour: "0.04", PerGiB: "0.2"},
	{Country: "NL", City: "Amsterdam", IPType: market.IPResidential, PerHour: "0", PerGiB: "0"},
}

// Dev account indexes the devnet's identities use (their keys are public:
// devchain.DevKey).
const (
	devProviderAccount = 3 // providers are 3, 4, 5
	devConsumerAccount = 8
)

// DevnetConfig configures a devnet.
type DevnetConfig struct {
	// DataDir holds every node's state; "" makes (and removes) a temp dir.
	DataDir string
	// Providers to start (default DefaultProviders).
	Providers []ProviderSpec
	// Allow opens exit destinations on every provider (e.g. a loopback
	// test server); the default policy denies loopback and private nets.
	Allow []tunnel.Rule
	// ConsumerFunds is the consumer's channel top-up (default 100 MYST).
	ConsumerFunds *big.Int
	// Payment tunes the providers' sessions.
	Payment Payment
	// HermesMinFee is the transactor fee consumer promises carry (paid
	// to the transactor when the hermes settles them).
	HermesMinFee *big.Int
	// ProviderPromiseFee is the transactor fee on the hermes's promises
	// to providers (paid when a provider settles).
	ProviderPromiseFee *big.Int
	// RegistrationFee is the transactor fee the consumer's registration
	// pays from its channel.
	RegistrationFee *big.Int
	// Gasless makes the providers register and settle through the
	// devnet's transactor instead of the dev transactor key.
	Gasless bool
	// ChainPort is the dev chain's JSON-RPC port (0: any free port).
	ChainPort int
	// AdjustProvider changes provider i's configuration before it starts.
	AdjustProvider map[int]func(*ProviderConfig)
	// NoICE runs the devnet without its relay and without ICE: sessions
	// use the providers' static WireGuard endpoints.
	NoICE bool
	// Progress receives human-readable progress lines.
	Progress func(string)
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// devnetRelayLimits are the devnet transactor's limits: every node of a
// devnet calls it from loopback, so the per-source limits are wide.
var devnetRelayLimits = transactor.Limits{PerSource: 50, SourceBurst: 200, PerIdentity: 5, IdentityBurst: 20, ZeroFeeRegistrations: 5, ZeroFeeBurst: 20, MaxInFlight: 16}

// Devnet is a whole openmyst network in one process on loopback.
type Devnet struct {
	// DataDir is where the state lives.
	DataDir string
	// Chain is the dev chain; Client its client (dev transactor).
	Chain  *devchain.Chain
	Client *chain.Client
	eth    *ethclient.Client
	// Hermes is the hermes.
	Hermes *Hermes
	// Transactor is the gasless relay (paying from the dev transactor
	// key); TransactorClient its client.
	Transactor       *Transactor
	TransactorClient *transactor.Client
	// Boot is the bootstrap peer.
	Boot      *p2p.Node
	bootDisc  *discovery.Service
	bootTrust *Trust
	// Relay is the devnet's STUN/TURN relay on loopback (nil with NoICE).
	Relay *relay.Server
	// ICE is the ICE configuration of the devnet's nodes: the relay's
	// STUN and TURN servers, loopback candidates (nil with NoICE).
	ICE *ice.Config
	// Providers are the providers, in spec order.
	Providers []*Provider
	// ConsumerSigner is the funded, registered consumer identity.
	ConsumerSigner identity.Signer
	cfg            DevnetConfig
	provCfgs       []ProviderConfig
	tmp            bool
}

// StartDevnet starts a dev chain with the contracts, a hermes, a
// bootstrap peer and the providers, and registers and funds a consumer
// identity from the dev faucet.
func StartDevnet(ctx context.Context, cfg DevnetConfig) (_ *Devnet, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string) {}
	}
	if cfg.Providers == nil {
		cfg.Providers = DefaultProviders
	}
	if cfg.ConsumerFunds == nil {
		cfg.ConsumerFunds = money.MYST(100)
	}
	d := &Devnet{cfg: cfg, DataDir: cfg.DataDir}
	defer func() {
		if err != nil {
			_ = d.Close()
		}
	}()
	if d.DataDir == "" {
		if d.DataDir, err = os.MkdirTemp("", "myst-devnet-"); err != nil {
			return nil, err
		}
		d.tmp = true
	}
	log := cfg.Log
	cfg.Progress("starting the dev chain")
	if d.Chain, err = devchain.Start(ctx, devchain.Config{Port: cfg.ChainPort, Log: log}); err != nil {
		return nil, fmt.Errorf("node: dev chain: %w", err)
	}
	if d.eth, err = d.Chain.Dial(ctx); err != nil {
		return nil, err
	}
	tx, err := chain.NewTransactor(ctx, d.eth, devchain.DevKey(devchain.TransactorAccount), log)
	if err != nil {
		return nil, err
	}
	if d.Client, err = chain.NewClient(ctx, d.eth, d.Chain.Deployment(), tx, log); err != nil {
		return nil, err
	}
	dep := d.Chain.Deployment()
	if err := os.MkdirAll(filepath.Join(d.DataDir, "chain"), 0o700); err != nil {
		return nil, err
	}
	if err := dep.Save(d.DeploymentPath()); err != nil {
		return nil, fmt.Errorf("node: save deployment: %w", err)
	}
	cfg.Progress("starting the hermes")
	if err := os.MkdirAll(filepath.Join(d.DataDir, "hermes"), 0o700); err != nil {
		return nil, err
	}
	if d.Hermes, err = StartHermes(ctx, HermesConfig{
		Chain: d.Client, Hermes: dep.Hermes, Operator: identity.NewKeySigner(devchain.DevKey(devchain.HermesAccount)),
		DSN: filepath.Join(d.DataDir, "hermes", "hermes.db"), MinConsumerFee: cfg.HermesMinFee, ProviderPromiseFee: cfg.ProviderPromiseFee, Log: log,
	}); err != nil {
		return nil, err
	}
	cfg.Progress("starting the transactor")
	if err := os.MkdirAll(filepath.Join(d.DataDir, "transactor"), 0o700); err != nil {
		return nil, err
	}
	if d.Transactor, err = StartTransactor(ctx, TransactorConfig{
		Chain: d.Client, Signer: identity.NewKeySigner(devchain.DevKey(devchain.TransactorAccount)), Hermes: dep.Hermes,
		Fees:      transactor.Fees{Register: cfg.RegistrationFee, Settle: cfg.ProviderPromiseFee},
		StorePath: filepath.Join(d.DataDir, "transactor", "transactor.db"), Limits: devnetRelayLimits, Log: log,
	}); err != nil {
		return nil, err
	}
	if d.TransactorClient, err = transactor.NewClient(d.Transactor.URL(), dep, nil); err != nil {
		return nil, err
	}
	cfg.Progress("starting the bootstrap peer")
	if d.Boot, err = p2p.New(p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, DHTMode: p2p.DHTServer, Log: log}); err != nil {
		return nil, err
	}
	if d.bootDisc, d.bootTrust, err = startDiscovery(d.Boot.Host, discovery.Config{ValidatorConfig: discovery.ValidatorConfig{ChainID: dep.ChainID}, Bootstrapper: true, HeartbeatInterval: GossipHeartbeat(dep.ChainID), Log: log}, filepath.Join(d.DataDir, "bootstrap"),
		newChainBacking(func(context.Context) (*chain.Client, error) { return d.Client, nil })); err != nil {
		return nil, err
	}

	if !cfg.NoICE {
		cfg.Progress("starting the STUN/TURN relay")
		if d.Relay, d.ICE, err = startDevRelay(filepath.Join(d.DataDir, "relay"), log); err != nil {
			return nil, err
		}
	}

	cfg.Progress("funding and registering the consumer from the dev faucet")
	d.ConsumerSigner = identity.NewKeySigner(devchain.DevKey(devConsumerAccount))
	channel := d.Client.ChannelAddress(d.ConsumerSigner.Address(), dep.Hermes)
	if _, err := d.Client.Mint(ctx, channel, cfg.ConsumerFunds); err != nil {
		return nil, fmt.Errorf("node: fund consumer channel: %w", err)
	}
	if err := EnsureRegisteredFee(ctx, d.Client, d.ConsumerSigner, dep.Hermes, cfg.RegistrationFee, cfg.Progress); err != nil {
		return nil, err
	}

	allow, err := devExitAllow(cfg.Allow, d.Relay)
	if err != nil {
		return nil, err
	}
	for i, spec := range cfg.Providers {
		ph, err := money.ParseMYSTAmount(spec.PerHour)
		if err != nil {
			return nil, fmt.Errorf("node: provider %d price: %w", i, err)
		}
		pg, err := money.ParseMYSTAmount(spec.PerGiB)
		if err != nil {
			return nil, fmt.Errorf("node: provider %d price: %w", i, err)
		}
		ipType := spec.IPType
		if ipType == "" {
			ipType = market.IPResidential
		}
		cfg.Progress(fmt.Sprintf("starting provider %d (%s, %s MYST/h, %s MYST/GiB)", i+1, spec.Country, spec.PerHour, spec.PerGiB))
		pc := ProviderConfig{
			DataDir: filepath.Join(d.DataDir, fmt.Sprintf("provider%d", i+1)),
			Signer:  identity.NewKeySigner(devchain.DevKey(devProviderAccount + i)),
			Chain:   d.Client, Hermes: dep.Hermes, HermesURL: d.Hermes.URL(), HermesPromiseFee: cfg.ProviderPromiseFee,
			Bootstrap: []peer.AddrInfo{d.Boot.AddrInfo()},
			Location:  market.Location{Country: spec.Country, City: spec.City, IPType: ipType},
			Price:     market.Price{PerHour: ph, PerGiB: pg},
			Allow:     allow, TransactorFee: cfg.HermesMinFee, Payment: cfg.Payment,
			ICE: d.ICE, Progress: cfg.Progress, Log: log,
		}
		if cfg.Gasless {
			pc.Relay = d.TransactorClient
		}
		if adjust := cfg.AdjustProvider[i]; adjust != nil {
			adjust(&pc)
		}
		p, err := StartProvider(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("node: provider %d: %w", i+1, err)
		}
		d.Providers = append(d.Providers, p)
		d.provCfgs = append(d.provCfgs, pc)
	}
	for _, p := range d.Providers {
		if err := p.WaitPublished(ctx); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// RestartProvider stops provider i (its sessions end) and starts it again
// from the same data dir, identity and settings, as after a process
// restart. The new node replaces Providers[i].
func (d *Devnet) RestartProvider(ctx context.Context, i int) (*Provider, error) {
	if i < 0 || i >= len(d.Providers) {
		return nil, fmt.Errorf("node: no provider %d", i)
	}
	_ = d.Providers[i].Close()
	d.Providers = append(d.Providers[:i:i], d.Providers[i+1:]...)
	p, err := StartProvider(ctx, d.provCfgs[i])
	if err != nil {
		return nil, err
	}
	d.Providers = append(d.Providers[:i:i], append([]*Provider{p}, d.Providers[i:]...)...)
	return p, p.WaitPublished(ctx)
}

// DeploymentPath is where the devnet wrote its contract deployment (for
// --chain.deployment).
func (d *Devnet) DeploymentPath() string { return filepath.Join(d.DataDir, "chain", "deployment.json") }

// NetworkName is the name of the network definition a devnet writes.
const NetworkName = "devnet"

// Network is the devnet's network definition: its chain, deployment,
// hermes, transactor, bootstrap peer and (unless NoICE) its relay's STUN
// and TURN servers, for processes that join it (--network).
func (d *Devnet) Network() *network.Network {
	dep := d.Chain.Deployment()
	zero := uint64(0)
	n := &network.Network{
		Name: NetworkName, ChainID: dep.ChainID, RPC: []string{d.Chain.URL()}, Confirmations: &zero,
		Deployment: dep,
		Hermes:     []network.Hermes{{URL: d.Hermes.URL(), Operator: dep.HermesOperator, Contract: dep.Hermes}},
		Bootstrap:  d.BootstrapAddrs(),
	}
	if d.Transactor != nil {
		n.TransactorURL = d.Transactor.URL()
	}
	if d.Relay != nil {
		n.STUN, n.TURN = devRelayURLs(d.Relay)
	}
	return n
}

// devExitAllow is the devnet exits' allow list: the caller's rules and,
// with a relay, its STUN port over UDP on loopback, so that a consumer's
// STUN request sent through the tunnel (consumer.Status.PublicIPSeen) is
// answered by the devnet's relay; a loopback destination is otherwise
// refused by every exit. Devnet only.
func devExitAllow(allow []tunnel.Rule, r *relay.Server) ([]tunnel.Rule, error) {
	out := append([]tunnel.Rule(nil), allow...)
	if r == nil || !r.Addrs().UDP.IsValid() {
		return out, nil
	}
	rule, err := tunnel.ParseRule(fmt.Sprintf("udp:%s port %d", r.Addrs().UDP.Addr(), r.Addrs().UDP.Port()))
	if err != nil {
		return nil, fmt.Errorf("node: devnet relay's STUN rule: %w", err)
	}
	return append(out, rule), nil
}

// devRelayURLs are a devnet relay's STUN and TURN server URLs: over UDP
// only (pion asks every server URL for a reflexive address over UDP, and
// the devnet's TCP port, another number than the UDP one unlike a real
// relay's 3478, would hold gathering up for the full gather timeout). The
// STUN URLs are its UDP port and its alternate STUN port.
func devRelayURLs(r *relay.Server) (stun, turn []string) {
	ad := r.Addrs()
	return RelaySTUNURLs(ad.UDP.Addr(), ad), []string{"turn:" + ad.UDP.String() + "?transport=udp"}
}

// devTURNCredentials is the file in the devnet relay's directory holding
// its TURN credentials.
const devTURNCredentials = "turn-credentials"

// TURNCredentialsFile is where a devnet writes its relay's TURN
// credentials (one line username:password, for
// --ice.turn-credentials-file), "" with NoICE.
func (d *Devnet) TURNCredentialsFile() string {
	if d.Relay == nil {
		return ""
	}
	return filepath.Join(d.DataDir, "relay", devTURNCredentials)
}

// WriteNetwork saves Network to <DataDir>/networks/devnet.toml and
// returns the path.
func (d *Devnet) WriteNetwork() (string, error) {
	path := network.PathOf(d.DataDir, NetworkName)
	return path, d.Network().Save(path)
}

// BootstrapAddrs are the bootstrap peer's multiaddrs (for --p2p.bootstrap).
func (d *Devnet) BootstrapAddrs() []string { return d.Boot.Multiaddrs() }

// StartConsumer starts a consumer node for the devnet's consumer identity
// in dataDir ("": <DataDir>/consumer).
func (d *Devnet) StartConsumer(ctx context.Context, dataDir string) (*Consumer, error) {
	if dataDir == "" {
		dataDir = filepath.Join(d.DataDir, "consumer")
	}
	return StartConsumer(ctx, ConsumerConfig{
		DataDir: dataDir, Signer: d.ConsumerSigner, Chain: d.Client, Hermes: d.Chain.Deployment().Hermes,
		Bootstrap: []peer.AddrInfo{d.Boot.AddrInfo()}, MaxFee: d.cfg.HermesMinFee, ICE: d.ICE, Log: d.cfg.Log,
	})
}

// startDevRelay starts a devnet's relay on loopback (STUN and TURN over
// UDP and TCP, STUN on an alternate UDP port; the nodes use UDP) and returns the ICE configuration of the devnet's nodes,
// with TURN credentials valid for a day.
func startDevRelay(dataDir string, log *slog.Logger) (*relay.Server, *ice.Config, error) {
	lo := netip.MustParseAddr("127.0.0.1")
	r, err := StartRelay(RelayConfig{DataDir: dataDir, UDP: "127.0.0.1:0", STUNAlt: "127.0.0.1:0", TCP: "127.0.0.1:0", PublicIP: lo, AllowPrivate: true, Log: log})
	if err != nil {
		return nil, nil, fmt.Errorf("node: devnet relay: %w", err)
	}
	user, pass, err := RelayCredentials(dataDir, "devnet", 24*time.Hour)
	if err != nil {
		_ = r.Close()
		return nil, nil, err
	}
	stunURLs, turnURLs := devRelayURLs(r)
	servers, err := ice.ParseServers(stunURLs, turnURLs, user, pass)
	if err == nil {
		err = atomicfile.Write(filepath.Join(dataDir, devTURNCredentials), []byte(user+":"+pass+"\n"), 0o600)
	}
	if err != nil {
		_ = r.Close()
		return nil, nil, err
	}
	return r, &ice.Config{Servers: servers, Policy: ice.CandidatePolicy{AllowPrivate: true}, Loopback: true, Timeout: DefaultICETimeout}, nil
}

// Close stops everything in reverse order and removes a temp data dir.
func (d *Devnet) Close() error {
	var errs []error
	for i := len(d.Providers) - 1; i >= 0; i-- {
		errs = append(errs, d.Providers[i].Close())
	}
	if d.Relay != nil {
		errs = append(errs, d.Relay.Close())
	}
	if d.bootDisc != nil {
		errs = append(errs, d.bootTrust.Close(), d.bootDisc.Close())
	}
	if d.Boot != nil {
		errs = append(errs, d.Boot.Close())
	}
	if d.Transactor != nil {
		errs = append(errs, d.Transactor.Close())
	}
	if d.Hermes != nil {
		errs = append(errs, d.Hermes.Close())
	}
	if d.eth != nil {
		d.eth.Close()
	}
	if d.Chain != nil {
		errs = append(errs, d.Chain.Close())
	}
	if d.tmp {
		errs = append(errs, os.RemoveAll(d.DataDir))
	}
	return errors.Join(errs...)
}
