package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/config"
	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/retry"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/nat/portmap"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

// DaemonConfig configures a node daemon (`myst daemon`): storage,
// identities, the Tequilapi REST API, the chain source, the p2p node and
// the provider and consumer parts on them.
type DaemonConfig struct {
	// DataDir holds the node database, keys and the parts' databases.
	DataDir string
	// LightScrypt encrypts new keys with weak scrypt parameters (tests,
	// dev networks).
	LightScrypt bool
	// API configures the Tequilapi (Log defaults to Log).
	API tequilapi.Config
	// ShowPassword, when set, receives a newly generated Tequilapi
	// password once (it is never logged).
	ShowPassword func(password string)
	// Chain is the node's one chain source, connected on first use.
	Chain ChainConfig
	// P2P is the node's libp2p host and proposal gossip.
	P2P NetworkConfig
	// Provider is the provider side: an announced proposal and/or paid
	// sessions.
	Provider DaemonProvider
	// Consumer is the consumer side (PUT /connection).
	Consumer DaemonConsumer
	// ICE, when it names servers, runs sessions over ICE (the network's
	// STUN and TURN servers): the consumer's connections and the
	// served provider's sessions (unless Provider.Serve sets its own).
	ICE ICESettings
	// Extensions are further parts, started after the built-in ones and
	// stopped before them.
	Extensions []Extension
	// Version is reported in the start log line.
	Version string
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// NetworkConfig configures a node's libp2p host and proposal gossip.
type NetworkConfig struct {
	// ListenAddrs are the libp2p listen multiaddrs.
	ListenAddrs []string
	// Bootstrap are the bootstrap peers.
	Bootstrap []peer.AddrInfo
	// Relays are circuit relay peers (multiaddrs with /p2p/ID, the
	// network's p2p.relays) used behind a NAT besides Bootstrap.
	Relays []string
	// NAT turns on port mapping, AutoNAT, hole punching and relays.
	NAT bool
	// PublicAddrsOnly advertises only addresses usable from elsewhere on
	// the internet (p2p.Config.PublicAddrsOnly); off for loopback devnets
	// only: RunDaemon turns it on off dev chains (publicAddrsOnly).
	PublicAddrsOnly bool
	// Bootstrapper serves joiners: circuit relay and peer exchange.
	Bootstrapper bool
	// ChainID is the chain whose proposals are gossiped.
	ChainID uint64
}

// IdentityRef names an identity of the keystore and how to unlock it.
type IdentityRef struct {
	// Address is the identity (zero: the default identity).
	Address common.Address
	// PassphraseFile holds its passphrase (else $MYST_PASSPHRASE); only
	// read when the identity is locked.
	PassphraseFile string
}

// DaemonProvider is the provider side of a daemon.
type DaemonProvider struct {
	// Identity is the provider identity.
	Identity IdentityRef
	// Announce announces Offer without serving sessions.
	Announce bool
	// Offer is the proposal template Announce announces (its location is
	// decided from Location).
	Offer market.Proposal
	// TTL is each announcement's validity.
	TTL time.Duration
	// Location decides the announced location (Announce and Serve).
	Location LocationConfig
	// Serve, when set, serves paid sessions on the daemon's p2p host
	// and chain source (like `myst service`): a provider configuration
	// without Signer, Chain, Hermes, P2P, Discovery and Locator, which
	// the daemon fills in.
	Serve *ProviderConfig
	// Defaults are the daemon's provider flags: a provider started with
	// the options a node runner chose (PUT /service {"provider": ...},
	// the dashboard's start form) takes the rest from them.
	Defaults ServiceOptions
}

// DaemonConsumer is the consumer side of a daemon.
type DaemonConsumer struct {
	// Identity is the consumer identity paying for connections.
	Identity IdentityRef
	// SOCKS is the default local SOCKS5 proxy address of a connection.
	SOCKS string
	// VPN configures tun-mode connections (PUT /connection {"mode":
	// "tun"}). The daemon fills in an empty StateFile
	// (<data-dir>/VPNStateFile) and Control (its bootstrap peers and
	// chain RPC).
	VPN VPNConfig
	// PortMap asks the home router (NAT-PMP, then UPnP IGD) to forward
	// ICEPort while a connection over ICE is up, and offers the mapped
	// address as the sessions' host candidate: a provider behind a
	// symmetric NAT then reaches the consumer directly. In tun mode the
	// kill switch admits the router's NAT-PMP port and the UPnP client's
	// sockets (marked kernel.PortMapMark) to the router only. Needs ICE
	// servers (DaemonConfig.ICE) outside a loopback devnet.
	PortMap bool
	// ICEPort is the UDP port of the consumer's shared ICE socket with
	// PortMap (0: a free port, picked at start).
	ICEPort uint16
}

// VPNStateFile is the daemon's tun connection state in its data dir.
const VPNStateFile = "vpn.json"

// Extension is a part of a daemon.
type Extension struct {
	// Name identifies the part in logs and errors.
	Name string
	// Start starts the part. It must not block; work runs in goroutines
	// tied to ctx (canceled at shutdown). stop (optional) is called at
	// shutdown in reverse start order.
	Start func(ctx context.Context, n *DaemonNode) (stop func(context.Context) error, err error)
}

// DaemonNode is what the parts of a daemon share.
type DaemonNode struct {
	// Config is the daemon's configuration.
	Config DaemonConfig
	// Log is the node logger.
	Log *slog.Logger
	// DB is the node store.
	DB *storage.DB
	// Identities is the keystore.
	Identities *identity.Manager
	// API is the Tequilapi server; parts add routes before their start
	// returns.
	API *tequilapi.Server
	// Chain is the node's one chain source.
	Chain *ChainConn
	// P2P and Discovery are the node's one libp2p host and discovery
	// service (set by the network part, which starts first).
	P2P       *p2p.Node
	Discovery *discovery.Service
	// Trust is the node's fraud-proof blacklist (started with Discovery).
	Trust *Trust
	// NAT is the node's reachability view and peer reachability checks
	// (started with P2P).
	NAT *NATMonitor

	// providerSvc and connection are set by the provider and connection
	// parts for the dashboard part (nil: none).
	providerSvc *ProviderService
	connection  *ConnectionAPI
	// consumerPM is the consumer's mapped ICE port (nil without
	// Consumer.PortMap), set by the connection part.
	consumerPM *consumerPortMap
	// consumerEnds counts the daemon consumer's ended sessions (GET /metrics).
	consumerEnds endCounts
	// lastProvMu guards lastProv: the provider serveProvider last started,
	// which PUT /service without options starts again after DELETE
	// /service.
	lastProvMu sync.Mutex
	lastProv   *servedProvider
}

// servedProvider is what serveProvider was given.
type servedProvider struct {
	id  IdentityRef
	cfg ProviderConfig
	loc LocationConfig
	// req is the PUT /service request that described it (nil: the
	// --provider.serve flags).
	req *tequilapi.ServiceStartRequest
}

// providerRetry is how the daemon retries a provider start that failed
// (chain not reachable yet, registration failed, ...): after 5 s,
// doubling up to 5 minutes, spread so that daemons do not retry a
// recovered chain in step. A start refused for its configuration
// (ErrProviderConfig) is not retried.
var providerRetry = retry.Backoff{Initial: 5 * time.Second, Max: 5 * time.Minute, Jitter: true}

// NewIdentityManager opens the keystore of dataDir; db (optional)
// remembers the default identity.
func NewIdentityManager(dataDir string, db *storage.DB, light bool) (*identity.Manager, error) {
	var opts []identity.Option
	if db != nil {
		opts = append(opts, identity.WithSettings(db))
	}
	if light {
		opts = append(opts, identity.WithLightScrypt())
	}
	return identity.NewManager(filepath.Join(dataDir, "keystore"), opts...)
}

// OpenIdentities creates dataDir (mode 0700) if needed and opens its
// keystore, with the node database remembering the default identity. When
// a running daemon holds the database (storage.ErrLocked) and needDB is
// false, the keystore opens without it. close locks every key and closes
// the database.
func OpenIdentities(dataDir string, light, needDB bool) (m *identity.Manager, close func(), err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data dir: %w", err)
	}
	db, err := storage.Open(filepath.Join(dataDir, storage.FileName))
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrLocked) && !needDB:
		db = nil
	default:
		return nil, nil, err
	}
	if m, err = NewIdentityManager(dataDir, db, light); err != nil {
		if db != nil {
			db.Close()
		}
		return nil, nil, err
	}
	return m, func() {
		m.LockAll()
		if db != nil {
			db.Close()
		}
	}, nil
}

// NewAPI makes sure the Tequilapi password file exists (handing a new
// password to show, once) and returns the server.
func NewAPI(cfg tequilapi.Config, show func(password string)) (*tequilapi.Server, error) {
	pw, created, err := tequilapi.EnsurePassword(cfg.PasswordFile)
	if err != nil {
		return nil, err
	}
	if created && show != nil {
		show(pw)
	}
	return tequilapi.New(cfg)
}

// RunDaemon runs the daemon until ctx ends.
func RunDaemon(ctx context.Context, cfg DaemonConfig) error {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	log := cfg.Log
	if _, err := cfg.ICE.Config(); err != nil { // refused at start, not at the first session
		return err
	}
	// The daemon acts on chain P2P.ChainID only (checkChainID).
	if err := checkLightScrypt(cfg.P2P.ChainID, cfg.LightScrypt); err != nil {
		return err
	}
	cfg.P2P.PublicAddrsOnly = publicAddrsOnly(cfg.P2P.ChainID, cfg.P2P.PublicAddrsOnly)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	db, err := storage.Open(filepath.Join(cfg.DataDir, storage.FileName))
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close storage", "err", err)
		}
	}()
	ids, err := NewIdentityManager(cfg.DataDir, db, cfg.LightScrypt)
	if err != nil {
		return err
	}
	defer ids.LockAll()
	if cfg.API.Log == nil {
		cfg.API.Log = log
	}
	srv, err := NewAPI(cfg.API, cfg.ShowPassword)
	if err != nil {
		return err
	}
	srv.Add(tequilapi.IdentityRoutes(ids, log)...)
	srv.Add(tequilapi.CapabilitiesRoutes(Capabilities{}, log)...)
	if cfg.Chain.PendingDir == "" {
		cfg.Chain.PendingDir = filepath.Join(cfg.DataDir, "chain")
	}
	cc := NewChainConn(cfg.Chain)
	connected := make(chan struct{})
	defer func() {
		<-connected
		cc.Close()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(connected)
		if !hasPendingFiles(cfg.Chain.PendingDir) {
			return // nothing can be pending: connect on first use
		}
		// Connecting resumes what an earlier run left pending.
		if _, _, err := cc.Client(ctx); err != nil {
			log.Info("chain: not reachable at start; pending transactions resume once it is", "err", err)
		}
	}()
	n := &DaemonNode{Config: cfg, Log: log, DB: db, Identities: ids, API: srv, Chain: cc}
	parts := append([]Extension{
		{Name: "discovery", Start: startNetwork},
		{Name: "account", Start: startAccountRoutes},
		{Name: "connection", Start: startConnection},
		{Name: "provider", Start: startDaemonProvider},
		{Name: "ui", Start: startUI},
	}, cfg.Extensions...)
	var stops []func(context.Context) error
	var stopNames []string
	defer func() {
		// Stop the parts in reverse order, with a bounded grace period.
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer scancel()
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](sctx); err != nil {
				log.Error("stop "+stopNames[i], "err", err)
			}
		}
	}()
	for _, e := range parts {
		stop, err := e.Start(ctx, n)
		if err != nil {
			return fmt.Errorf("start %s: %w", e.Name, err)
		}
		if stop != nil {
			stops = append(stops, stop)
			stopNames = append(stopNames, e.Name)
		}
		log.Debug("daemon part started", "name", e.Name)
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	log.Info("node started", "data_dir", cfg.DataDir, "tequilapi", "http://"+ln.Addr().String(), "web_ui", "http://"+ln.Addr().String()+"/", "version", cfg.Version)
	err = srv.Serve(ctx, ln)
	log.Info("node stopping")
	return err
}

// startAccountRoutes adds the /identities/{id}/{account,register,topup,
// settle,beneficiary} routes on the daemon's chain source. The chain is
// connected on first use, so the daemon starts without one; the routes
// answer 503 chain_unavailable until it is reachable.
func startAccountRoutes(_ context.Context, n *DaemonNode) (func(context.Context) error, error) {
	n.API.Add(tequilapi.AccountRoutes(n.Identities, n.Chain, n.Log)...)
	return nil, nil
}

// startNetwork runs the node's libp2p host, proposal gossip, GET
// /proposals and, with Provider.Announce, the provider's announcer.
func startNetwork(ctx context.Context, n *DaemonNode) (func(context.Context) error, error) {
	cfg, prov := n.Config.P2P, n.Config.Provider
	log := n.Log
	offer := prov.Offer
	var locateLater func(host.Host) (market.Location, error)
	if prov.Announce {
		var err error
		if offer.Location, locateLater, err = AnnounceLocation(prov.Location, log); err != nil {
			return nil, err
		}
	}
	key, err := p2p.LoadOrCreateKey(filepath.Join(n.Config.DataDir, p2p.KeyFile))
	if err != nil {
		return nil, err
	}
	relays, err := p2p.ParseBootstrap(cfg.Relays)
	if err != nil {
		return nil, fmt.Errorf("--p2p.relays: %w", err)
	}
	node, err := p2p.New(p2p.Config{
		Key: key, ListenAddrs: cfg.ListenAddrs, Bootstrap: cfg.Bootstrap, Relays: relays, DHTMode: p2p.DHTServer,
		NAT: cfg.NAT, PublicAddrsOnly: cfg.PublicAddrsOnly, RelayService: cfg.Bootstrapper, Log: log,
	})
	if err != nil {
		return nil, err
	}
	svc, trust, err := startDiscovery(node.Host, discovery.Config{
		ValidatorConfig:   discovery.ValidatorConfig{ChainID: cfg.ChainID},
		HeartbeatInterval: GossipHeartbeat(cfg.ChainID),
		Log:               log, Bootstrapper: cfg.Bootstrapper,
	}, n.Config.DataDir, newChainBacking(func(ctx context.Context) (*chain.Client, error) {
		cl, _, err := n.Chain.Client(ctx)
		return cl, err
	}))
	if err != nil {
		node.Close()
		return nil, err
	}
	iceCfg, _ := n.Config.ICE.Config() // checked at start
	nat, err := StartNAT(NATConfig{P2P: node, ICE: iceCfg, AllowPrivate: !cfg.PublicAddrsOnly, Log: log,
		ManualPeerCheck: !prov.Announce && prov.Serve == nil})
	if err != nil {
		trust.Close()
		svc.Close()
		node.Close()
		return nil, err
	}
	n.P2P, n.Discovery, n.Trust, n.NAT = node, svc, trust, nat
	n.API.Add(tequilapi.ProposalRoutes(svc.Cache(), trust.Service, log)...)
	n.API.Add(tequilapi.QualityRoutes(trust.Service, log)...)
	n.API.Add(tequilapi.NATRoutes(nat, log)...)
	for _, a := range node.Multiaddrs() {
		log.Info("p2p: reachable as", "addr", a)
	}

	var signer identity.Signer
	if prov.Announce {
		if signer, err = UnlockIdentity(ctx, n.Identities, prov.Identity, "provider"); err != nil {
			nat.Close()
			trust.Close()
			svc.Close()
			node.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := node.Bootstrap(ctx); err != nil {
			log.Warn("p2p: bootstrap", "err", err)
		}
		if k := svc.SyncConnected(ctx, 3); k > 0 {
			log.Info("discovery: proposals pulled from peers", "count", k)
		}
		if signer == nil {
			return
		}
		if locateLater != nil {
			loc, err := locateLater(node.Host)
			if err != nil {
				log.Error("discovery: not announcing", "err", err)
				return
			}
			offer.Location = loc
		}
		ann, err := discovery.NewAnnouncer(svc, discovery.AnnouncerConfig{
			Proposal: offer, Signer: signer, Host: node.Host, TTL: prov.TTL, Log: log,
			Seq: discovery.SeqFileFor(n.Config.DataDir, signer.Address()),
		})
		if err != nil {
			log.Error("discovery: announcer", "err", err)
			return
		}
		log.Info("discovery: announcing proposal", "provider", signer.Address().Hex(), "country", offer.Location.Country,
			"per_gib", offer.Price.PerGiB.MYST(), "per_hour", offer.Price.PerHour.MYST())
		if err := ann.Run(ctx); err != nil {
			log.Error("discovery: announce", "err", err)
		}
	}()
	return func(context.Context) error {
		cancel()
		wg.Wait() // the announcer has published its withdrawal
		return errors.Join(nat.Close(), trust.Close(), svc.Close(), node.Close())
	}, nil
}

// startConnection adds PUT/GET/DELETE /connection and GET /sessions. The
// consumer (its database under <data-dir>/consumer) starts on the first
// connect, on the daemon's chain source and its one p2p host, so a daemon
// without a chain still runs.
func startConnection(ctx context.Context, n *DaemonNode) (func(context.Context) error, error) {
	var (
		mu   sync.Mutex
		cons *Consumer
	)
	get := func(rctx context.Context) (*Consumer, error) {
		mu.Lock()
		defer mu.Unlock()
		if cons != nil {
			return cons, nil
		}
		c, err := startDaemonConsumer(ctx, rctx, n)
		if err != nil {
			return nil, err
		}
		cons = c
		return c, nil
	}
	vpn := n.Config.Consumer.VPN
	if vpn.StateFile == "" {
		vpn.StateFile = filepath.Join(n.Config.DataDir, VPNStateFile)
	}
	if vpn.Control == nil {
		vpn.Control = n.controlAddrs
	}
	if vpn.ICEServers == nil {
		vpn.ICEServers = n.iceServerAddrs
	}
	api := &ConnectionAPI{Consumer: get, DefaultSOCKS: n.Config.Consumer.SOCKS, VPN: vpn, Log: n.Log}
	// Before Recover: a tun connection resumed after a crash maps the
	// ICE port again, as a fresh one does.
	if err := n.startConsumerPortMap(); err != nil {
		n.Log.Warn("node: consumer port mapping off", "err", err)
	}
	api.portMap = n.consumerPM
	if err := api.Recover(ctx); err != nil {
		if n.consumerPM != nil {
			err = errors.Join(err, n.consumerPM.close())
		}
		return nil, err
	}
	n.connection = api
	n.API.Add(tequilapi.ConnectionRoutes(api, n.Log)...)
	hist := HistoryAPI{History: func() *session.History {
		mu.Lock()
		defer mu.Unlock()
		if cons == nil {
			return nil
		}
		return cons.History
	}}
	n.API.Add(tequilapi.SessionRoutes(hist, n.Log)...)
	n.API.Add(tequilapi.SpendingRoutes(hist, n.Log)...)
	return func(sctx context.Context) error {
		err := api.Close(sctx)
		mu.Lock()
		defer mu.Unlock()
		if cons != nil {
			err = errors.Join(err, cons.Close())
		}
		if n.consumerPM != nil {
			err = errors.Join(err, n.consumerPM.close())
		}
		return err
	}, nil
}

// startConsumerPortMap opens the consumer's ICE socket for port mapping
// (Consumer.PortMap) when sessions run ICE beyond loopback.
func (n *DaemonNode) startConsumerPortMap() error {
	if !n.Config.Consumer.PortMap {
		return nil
	}
	iceCfg, err := n.Config.ICE.Config()
	if err != nil || iceCfg == nil || iceCfg.Loopback {
		return err
	}
	pc := portmap.Config{Description: "openmyst consumer", Logger: n.Log}
	if kernel.CheckNetAdmin() == nil {
		// Marked, so that a tun connection's kill switch admits the
		// UPnP client's sockets (to the gateway only); a daemon without
		// CAP_NET_ADMIN has no tun mode and could not mark them.
		pc.Control = ice.MarkControl(kernel.PortMapMark)
	}
	client := portmap.New(pc)
	n.consumerPM, err = openConsumerPortMap(n.Config.Consumer.ICEPort, client, ConsumerPortMapWait, n.Log)
	return err
}

// controlAddrs are the destinations a tun connection's kill switch admits
// outside the tunnel besides the provider: the bootstrap/relay peers and
// the chain RPC (resolved now).
func (n *DaemonNode) controlAddrs(ctx context.Context) ([]netip.AddrPort, error) {
	var ms []string
	for _, ai := range n.Config.P2P.Bootstrap {
		for _, a := range ai.Addrs {
			ms = append(ms, a.String())
		}
	}
	out := consumer.MultiaddrControlAddrs(ms)
	rpc, err := RPCControlAddrs(ctx, n.Config.Chain.RPC)
	if err != nil {
		return nil, err
	}
	return append(out, rpc...), nil
}

// iceServerAddrs are the STUN/TURN servers a tun connection's kill switch
// admits while a session negotiates its path, and for a path through our
// TURN allocation (resolved now).
func (n *DaemonNode) iceServerAddrs(ctx context.Context) ([]netip.AddrPort, error) {
	iceCfg, err := n.Config.ICE.Config()
	if err != nil || iceCfg == nil {
		return nil, err
	}
	srv, err := ice.ServerAddrs(ctx, iceCfg.Servers)
	if err != nil {
		return nil, fmt.Errorf("--ice.server: %w", err)
	}
	return consumer.JoinAddrs(srv), nil
}

// checkChainID refuses a chain whose id is not the one the p2p node
// gossips proposals of.
func (n *DaemonNode) checkChainID(got uint64) error {
	if want := n.Config.P2P.ChainID; got != want {
		return fmt.Errorf("the chain has id %d but the p2p node gossips proposals of chain %d: restart the daemon with --discovery.chain-id %d", got, want, got)
	}
	return nil
}

// startDaemonConsumer starts the daemon's consumer on its chain source and
// p2p node; ctx bounds the consumer's life, rctx the start.
func startDaemonConsumer(ctx, rctx context.Context, n *DaemonNode) (*Consumer, error) {
	cl, hermes, err := n.Chain.Client(rctx)
	if err != nil {
		return nil, tequilapi.NewError(http.StatusServiceUnavailable, tequilapi.CodeChainUnavailable, err.Error())
	}
	if n.P2P == nil || n.Discovery == nil {
		return nil, tequilapi.NewError(http.StatusServiceUnavailable, "p2p_unavailable", "the daemon's p2p node is not running")
	}
	if err := n.checkChainID(cl.ChainID().Uint64()); err != nil {
		return nil, tequilapi.NewError(http.StatusServiceUnavailable, tequilapi.CodeChainUnavailable, err.Error())
	}
	signer, err := UnlockIdentity(rctx, n.Identities, n.Config.Consumer.Identity, "consumer")
	if err != nil {
		return nil, tequilapi.NewError(http.StatusConflict, "identity_locked", err.Error())
	}
	iceCfg, err := n.Config.ICE.Config() // checked at start; the credentials file is read again
	if err != nil {
		return nil, err
	}
	if iceCfg != nil && n.consumerPM != nil {
		iceCfg.Mux = n.consumerPM.mux // announced while a connection holds the mapping
	}
	return StartConsumer(ctx, ConsumerConfig{
		DataDir: filepath.Join(n.Config.DataDir, "consumer"), Signer: signer, Chain: cl, Hermes: hermes,
		P2P: n.P2P, Discovery: n.Discovery, ICE: iceCfg, Trust: n.Trust, Log: n.Log, ends: &n.consumerEnds,
	})
}

// startDaemonProvider gives the daemon its provider slot: the provider
// routes (404 while it serves none), PUT /service starting a provider at
// runtime (`myst service` beside the daemon), and with Provider.Serve a
// provider on the daemon's p2p host and chain source, started in the
// background: registration waits for the chain, and the start is retried
// until the chain is reachable.
func startDaemonProvider(ctx context.Context, n *DaemonNode) (func(context.Context) error, error) {
	prov := n.Config.Provider
	if prov.Serve != nil && prov.Announce {
		return nil, errors.New("--provider.serve announces the provider's proposal itself: drop --provider.announce")
	}
	svc := &ProviderService{}
	n.API.Add(tequilapi.EarningsRoutes(svc, n.Log)...)
	n.API.Add(tequilapi.SettlementRoutes(svc, n.Log)...)
	n.API.Add(tequilapi.ServiceCapsRoutes(svc, n.Log)...)
	starter := daemonServiceStarter{n: n, ctx: ctx, svc: svc}
	n.API.Add(tequilapi.ServiceStartRoutes(starter, n.Log)...)
	n.API.Add(tequilapi.ServiceStopRoutes(starter, n.Log)...)
	n.API.Add(tequilapi.ServiceOptionsRoutes(starter, n.Log)...)
	n.providerSvc = svc
	if n.NAT != nil {
		n.NAT.SetPortMappings(func() []portmap.Mapping { return providerPortMappings(svc.Provider()) })
	}
	if err := n.restoreProvider(ctx, svc); err != nil {
		return nil, err
	}
	return func(context.Context) error { return svc.Close() }, nil
}

// serveProvider starts the provider sp describes in svc, on the daemon's
// p2p host and chain source (backoff: see ServeConfig.Retry).
func (n *DaemonNode) serveProvider(ctx context.Context, svc *ProviderService, sp servedProvider, backoff retry.Backoff) error {
	if n.P2P == nil || n.Discovery == nil {
		return errors.New("--provider.serve needs the daemon's p2p node")
	}
	n.setLastProv(&sp)
	id, cfg, loc := sp.id, sp.cfg, sp.loc
	locator, closeDB, err := OpenLocator(loc, n.Log)
	if err != nil {
		return err
	}
	signer, err := UnlockIdentity(ctx, n.Identities, id, "provider")
	if err != nil {
		closeDB()
		return err
	}
	cfg.Signer, cfg.Locator, cfg.P2P, cfg.Discovery = signer, locator, n.P2P, n.Discovery
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(n.Config.DataDir, "provider")
	}
	if cfg.Progress == nil {
		cfg.Progress = func(m string) { n.Log.Info("provider: " + m) }
	}
	if cfg.ICE == nil {
		if cfg.ICE, err = n.Config.ICE.Config(); err != nil {
			closeDB()
			return err
		}
	}
	if cfg.Log == nil {
		cfg.Log = n.Log
	}
	if err := svc.Start(ctx, ServeConfig{Provider: cfg, Chain: n.Chain.Client, CheckChainID: n.checkChainID, Retry: backoff}, closeDB); err != nil {
		closeDB()
		return err
	}
	return nil
}

// daemonServiceStarter starts and stops a provider in a running daemon
// (tequilapi.ServiceStarter and tequilapi.ServiceStopper).
type daemonServiceStarter struct {
	n   *DaemonNode
	ctx context.Context // the daemon's: the provider outlives the request
	svc *ProviderService
}

// StartService implements tequilapi.ServiceStarter: the options are a
// ServiceOptions JSON object.
func (d daemonServiceStarter) StartService(ctx context.Context, req tequilapi.ServiceStartRequest) (tequilapi.ServiceCapsDTO, error) {
	if d.svc.Serving() {
		return tequilapi.ServiceCapsDTO{}, ErrAlreadyServing
	}
	if d.n.Config.Provider.Announce {
		return tequilapi.ServiceCapsDTO{}, tequilapi.NewError(http.StatusConflict, "announcing", "this daemon announces a proposal of its own (--provider.announce): restart it without, or with --provider.serve")
	}
	if len(req.Options) == 0 && req.Provider == nil {
		// Start again the provider DELETE /service stopped.
		last := d.n.lastProvider()
		if last == nil {
			return tequilapi.ServiceCapsDTO{}, tequilapi.FieldError("options", "required: this daemon ran no provider to start again")
		}
		if req.Identity != "" {
			return tequilapi.ServiceCapsDTO{}, tequilapi.FieldError("identity", "give it with options (without options the last provider starts again as itself)")
		}
		return d.start(ctx, *last)
	}
	sp, err := d.n.resolveStart(req, d.n.Config.Provider.Identity.PassphraseFile)
	if err != nil {
		return tequilapi.ServiceCapsDTO{}, err
	}
	return d.start(ctx, sp)
}

// start starts the provider in the daemon, remembers it (on, across
// restarts) and returns its caps.
func (d daemonServiceStarter) start(ctx context.Context, sp servedProvider) (tequilapi.ServiceCapsDTO, error) {
	// The daemon's context: the provider (and a start waiting for the
	// chain) outlives the request.
	if err := d.n.serveProvider(d.ctx, d.svc, sp, retry.Backoff{}); err != nil {
		if errors.Is(err, ErrAlreadyServing) {
			return tequilapi.ServiceCapsDTO{}, err
		}
		return tequilapi.ServiceCapsDTO{}, tequilapi.NewError(http.StatusBadGateway, "provider_start_failed", err.Error())
	}
	if err := saveProviderState(ctx, d.n.DB, providerState{State: tequilapi.ProviderOn, Request: sp.req}); err != nil {
		// Not remembered: not started either.
		return tequilapi.ServiceCapsDTO{}, errors.Join(err, d.svc.Stop())
	}
	return d.svc.Caps(ctx)
}

// StopService implements tequilapi.ServiceStopper: the provider (served
// with --provider.serve or started by PUT /service) stops as at daemon
// shutdown; the daemon, its p2p host and consumer keep running.
func (d daemonServiceStarter) StopService(ctx context.Context) error {
	if err := d.svc.Stop(); err != nil {
		return err
	}
	var req *tequilapi.ServiceStartRequest
	if last := d.n.lastProvider(); last != nil {
		req = last.req
	}
	if err := saveProviderState(ctx, d.n.DB, providerState{State: tequilapi.ProviderOff, Request: req}); err != nil {
		return fmt.Errorf("the provider stopped, but a daemon restart would start it again: %w", err)
	}
	d.n.Log.Info("provider stopped (DELETE /service); it stays off across restarts")
	return nil
}

// ServiceOptions are the options of a provider started in a running
// daemon (PUT /service): what `myst service` was given.
type ServiceOptions struct {
	Serve    ServeOptions
	Location LocationOptions
}

// ErrNoPassphrase is returned by ReadPassphrase when neither a file nor
// $MYST_PASSPHRASE gives one.
var ErrNoPassphrase = errors.New("no passphrase")

// PassphraseEnv may hold an identity passphrase for scripts.
const PassphraseEnv = "MYST_PASSPHRASE"

// ReadPassphrase reads a passphrase from file (trailing newline removed),
// else from $MYST_PASSPHRASE; ErrNoPassphrase when there is neither.
func ReadPassphrase(file string) (string, error) {
	if file != "" {
		return config.ReadSecretFile(file, "passphrase")
	}
	if pw := os.Getenv(PassphraseEnv); pw != "" {
		return pw, nil
	}
	return "", ErrNoPassphrase
}

// UnlockIdentity unlocks ref (or the default identity) in ids, reading its
// passphrase only when it is locked, and returns its signer. role names
// the identity in errors (and its --<role>.passphrase-file flag).
func UnlockIdentity(ctx context.Context, ids *identity.Manager, ref IdentityRef, role string) (identity.Signer, error) {
	addr := ref.Address
	if addr == (common.Address{}) {
		var err error
		if addr, err = ids.Default(ctx); err != nil {
			return nil, fmt.Errorf("%s identity: %w", role, err)
		}
	}
	if !ids.IsUnlocked(addr) {
		pw, err := ReadPassphrase(ref.PassphraseFile)
		if errors.Is(err, ErrNoPassphrase) {
			return nil, fmt.Errorf("%s identity %s is locked: unlock it (POST /identities/{id}/unlock), or give --%s.passphrase-file or $%s", role, addr.Hex(), role, PassphraseEnv)
		}
		if err != nil {
			return nil, err
		}
		if err := ids.Unlock(addr, pw); err != nil {
			return nil, fmt.Errorf("unlock %s identity %s: %w", role, addr.Hex(), err)
		}
	}
	return ids.Signer(addr)
}
