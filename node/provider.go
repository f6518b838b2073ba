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
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/discovery"
	hclient "github.com/openmyst/openmyst/hermes/client"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/nat/portmap"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/session/pingpong/paystore"
	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/transactor"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/kernel"
	"github.com/openmyst/openmyst/tunnel/userspace"
)

// DefaultThresholds are a provider's invoice threshold and unpaid cap
// when none are configured: an early invoice as soon as a minute plus
// 256 MiB of service is unbilled, and the session ends when four times
// that is served but not settled. A free price has neither.
func DefaultThresholds(price pingpong.Price) (threshold, maxUnpaid *big.Int) {
	threshold = price.Total(time.Minute, 256<<20)
	if threshold.Sign() <= 0 {
		return nil, nil
	}
	return threshold, new(big.Int).Mul(threshold, big.NewInt(4))
}

// Payment tunes the pay-as-you-go loop of a provider's sessions
// (session/provider.Payment). Zero values take the pingpong defaults, and
// DefaultThresholds when both Threshold and MaxUnpaid are nil.
type Payment = provider.Payment

// ProviderConfig configures a provider node.
type ProviderConfig struct {
	// DataDir holds the node database and the p2p key.
	DataDir string
	// AutoSettle, when set, settles the hermes earnings on its own
	// (periodically and at shutdown, see SettlePolicy); nil: by hand only.
	AutoSettle *SettlePolicy
	// Signer is the provider identity.
	Signer identity.Signer
	// Chain is the chain client (its transactor registers and settles).
	Chain *chain.Client
	// Hermes is the accepted hermes; HermesURL its API (https://, or
	// http:// to loopback); HermesTLS how its certificate is trusted.
	Hermes    common.Address
	HermesURL string
	HermesTLS HermesTLS
	// HermesPromiseFee is the transactor fee a hermes promise may carry
	// whatever its amount (nil: none; a larger one must stay within the
	// hermes's on-chain fee rate).
	HermesPromiseFee *big.Int
	// Bootstrap are the p2p bootstrap peers; ListenAddrs the libp2p
	// listen addresses (default loopback TCP on a free port).
	Bootstrap   []peer.AddrInfo
	ListenAddrs []string
	// Relays are circuit relay peers used behind a NAT besides Bootstrap.
	Relays []peer.AddrInfo
	// NAT turns on libp2p NAT traversal.
	NAT bool
	// PublicAddrsOnly advertises only addresses usable from elsewhere on
	// the internet (p2p.Config.PublicAddrsOnly); off for loopback devnets
	// only: always on off dev chains (publicAddrsOnly).
	PublicAddrsOnly bool
	// P2P and Discovery, when both set, are the node's running libp2p
	// host and discovery service: the provider shares them (one host, one
	// peer id per node; Bootstrap, ListenAddrs and NAT are then ignored)
	// and Close leaves them running for their owner. When nil, the
	// provider starts its own from <DataDir>/p2p.key.
	P2P       *p2p.Node
	Discovery *discovery.Service
	// Location and Price are announced in the proposal.
	Location market.Location
	// Locator, when set, decides the announced location once the p2p host
	// is up (from HostIPs); Location is then ignored.
	Locator Locator
	Price   market.Price
	// ProposalTTL is each announcement's validity (default 10 min).
	ProposalTTL time.Duration
	// WGPort is the WireGuard UDP port (0: any); AdvertiseAddr the address
	// consumers reach it at (default 127.0.0.1).
	WGPort        uint16
	AdvertiseAddr netip.Addr
	// AdvertiseAuto finds the advertised endpoint instead of AdvertiseAddr
	// (which it replaces): the router's mapping of the WireGuard port
	// (PortMap), else what the ICE configuration's STUN servers see of
	// the WireGuard port when the NAT maps endpoint-independently, else
	// a public interface address; behind an endpoint-dependent NAT no
	// static endpoint works and sessions need ICE (AdvertisedEndpoint).
	// It is checked again every AdvertiseRefresh (default
	// DefaultAdvertiseRefresh) and a change is advertised from then on.
	// Needs a fixed WGPort.
	AdvertiseAuto    bool
	AdvertiseRefresh time.Duration
	// PortMap asks the home router (NAT-PMP, then UPnP IGD; nat/portmap)
	// to forward the WireGuard port and, with ICE, the ICE port
	// (WGPort+1) to this host; the leases are renewed and removed on
	// Close. A mapped WireGuard port becomes the advertised endpoint
	// unless AdvertiseAddr is a public address; a mapped ICE port is
	// every session's host candidate (ice.Mux), so consumers behind
	// symmetric NATs reach the provider directly. Mapped addresses are
	// denied on the exit. Needs a fixed WGPort. It sends NAT-PMP and
	// SSDP packets to the local network: off on devnets.
	PortMap bool
	// ICE, when set, runs ICE for consumers that offer it (nat/ice; the
	// network's STUN and TURN servers, see ICEConfig); nil serves only
	// the static WireGuard endpoint.
	ICE *ice.Config
	// ExitMode is userspace (default: gVisor netstack, no privileges) or
	// kernel (TUN + nftables, root).
	ExitMode tunnel.Mode
	// Allow opens exit destinations the default policy denies (e.g. a
	// loopback test server).
	Allow []tunnel.Rule
	// TransactorFee is the fee consumer promises must carry.
	TransactorFee *big.Int
	// Relay, when set, is the transactor that registers the identity and
	// settles its promises (the identity pays no gas); nil sends both
	// from Chain's own transactor key.
	Relay *transactor.Client
	// TransactorURL, when set and Relay is nil, is the transactor API
	// Relay is made for (the network definition's transactor).
	TransactorURL string
	// Payment tunes sessions.
	Payment Payment
	// Caps are the operator's limits: per-session bandwidth, concurrent
	// sessions, monthly traffic quota, consumer allow-list.
	Caps ProviderCaps
	// QuotaEvery is how often running sessions' traffic is counted
	// against the quota and saved (0: provider.DefaultQuotaEvery).
	QuotaEvery time.Duration
	// SendInvoice, when set, builds the function that writes each signed
	// invoice to a session's stream (see provider.Config.SendInvoice).
	SendInvoice func(w *sessionproto.Writer) func(context.Context, *payments.Invoice) error
	// WrapExit, when set, wraps the tunnel exit the provider admits
	// consumers to (tests: a provider whose exit throttles every peer).
	WrapExit func(tunnel.Exit) tunnel.Exit
	// Progress, when set, receives human-readable progress lines
	// (registration, waiting for the chain).
	Progress func(string)
	// NATReport, when set, receives a one-line reachability summary
	// whenever it changes (own p2p host only; see NATConfig.Report).
	NATReport func(string)
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// Provider is a running provider node.
type Provider struct {
	cfg     ProviderConfig
	log     *slog.Logger
	DB      *storage.DB
	History *session.History
	Pay     *paystore.Store
	// Settlements is the durable history of settlement attempts.
	Settlements *SettlementHistory
	P2P         *p2p.Node
	Discovery   *discovery.Service
	Exit        tunnel.Exit
	// ExitPolicy is the exit's policy; feed the node's public or mapped
	// addresses to its SetExtraDenied as reachability learns them.
	ExitPolicy *tunnel.ExitPolicy
	Sessions   *provider.Manager
	// Quota counts this month's traffic (Caps.MonthlyQuota).
	Quota  *provider.Quota
	Hermes *hclient.Client
	// NAT is the reachability view of the provider's own p2p host (nil
	// when the host is shared: its owner runs one).
	NAT       *NATMonitor
	hashlocks *hclient.StorageHashlocks

	// portMaps holds the router's port mappings (nil without PortMap);
	// mux is the sessions' shared ICE socket (nil without one).
	portMaps *portMaps
	mux      *ice.Mux
	// finder and epExit find and carry the advertised endpoint
	// (AdvertiseAuto; nil otherwise).
	finder *endpointFinder
	epExit *endpointExit

	// ownP2P is whether P2P and Discovery were started here.
	ownP2P bool
	// trust is the blacklist started with an own Discovery (nil if shared).
	trust *Trust
	// loc is the announced location.
	loc market.Location
	// ann announces offer; priceMu guards offer.
	ann     *discovery.Announcer
	priceMu sync.Mutex
	offer   market.Proposal

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartProvider registers the identity if needed, opens the node
// database, starts the exit, the libp2p host with proposal gossip and the
// session manager, and announces the proposal.
func StartProvider(ctx context.Context, cfg ProviderConfig) (_ *Provider, err error) {
	if cfg.Signer == nil || cfg.Chain == nil || cfg.DataDir == "" {
		return nil, refused(errors.New("node: provider needs a signer, a chain and a data dir"))
	}
	// Devnet shortcuts by the chain's own id (realnet.go).
	id := cfg.Chain.ChainID().Uint64()
	if cfg.HermesURL, err = hermesClientURL(id, cfg.HermesURL, cfg.HermesTLS.AllowInsecureHTTP); err != nil {
		return nil, refused(err)
	}
	if cfg.ICE, err = iceForChain(id, cfg.ICE); err != nil {
		return nil, refused(err)
	}
	if err := resolveAdvertise(id, &cfg); err != nil {
		return nil, refused(err)
	}
	cfg.PublicAddrsOnly = publicAddrsOnly(id, cfg.PublicAddrsOnly)
	if cfg.TransactorURL != "" {
		if err := transactorClientURL(id, cfg.TransactorURL); err != nil {
			return nil, refused(err)
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string) {}
	}
	if cfg.AdvertiseRefresh <= 0 {
		cfg.AdvertiseRefresh = DefaultAdvertiseRefresh
	}
	if cfg.ListenAddrs == nil {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	if cfg.TransactorFee == nil {
		cfg.TransactorFee = new(big.Int)
	}
	log := cfg.Log.With("provider", cfg.Signer.Address().Hex())
	p := &Provider{cfg: cfg, log: log}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	if cfg.Relay == nil && cfg.TransactorURL != "" {
		r, err := transactor.NewClient(cfg.TransactorURL, cfg.Chain.Deployment(), nil)
		if err != nil {
			return nil, err
		}
		cfg.Relay = r
	}
	register := EnsureRegistered
	if cfg.Relay != nil {
		register = func(ctx context.Context, c *chain.Client, s identity.Signer, h common.Address, progress func(string)) error {
			return EnsureRegisteredVia(ctx, c, cfg.Relay, s, h, progress)
		}
	}
	if err := register(ctx, cfg.Chain, cfg.Signer, cfg.Hermes, cfg.Progress); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if p.DB, err = storage.Open(filepath.Join(cfg.DataDir, storage.FileName)); err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = p.DB.Close() })
	p.History = session.NewHistory(p.DB)
	p.Pay = paystore.New(p.DB)
	if cfg.AutoSettle != nil {
		if err := cfg.AutoSettle.Validate(); err != nil {
			return nil, refused(err)
		}
	}
	if p.Settlements, err = NewSettlementHistory(ctx, p.DB); err != nil {
		return nil, err
	}
	if p.hashlocks, err = hclient.NewStorageHashlocks(ctx, p.DB); err != nil {
		return nil, err
	}
	p.Hermes, err = hclient.New(cfg.HermesURL, p.hashlocks, hclient.Options{
		Attempts: 2, BaseDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond, Log: log,
		Chain: HermesTerms{cfg.Chain}, HermesID: cfg.Hermes, MaxPromiseFee: cfg.HermesPromiseFee, RootCAs: cfg.HermesTLS.CA, AllowInsecureHTTP: cfg.HermesTLS.AllowInsecureHTTP,
	})
	if err != nil {
		return nil, err
	}
	// Whatever a crash interrupted goes to the hermes first.
	if n, rerr := p.Hermes.Recover(ctx); rerr != nil {
		log.Warn("node: recover pending hermes exchanges", "err", rerr)
	} else if n > 0 {
		log.Info("node: recovered pending hermes exchanges", "count", n)
	}

	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		return nil, err
	}
	if cfg.PortMap {
		p.startPortMap(ctx, &cfg)
		if p.portMaps != nil {
			closers = append(closers, p.portMaps.close)
		}
	}
	if cfg.AdvertiseAuto {
		p.finder = newEndpointFinder(cfg, p.portMaps)
		ep := p.finder.find(ctx)
		cfg.AdvertiseAddr, p.cfg.AdvertiseAddr = ep.Addr.Addr(), ep.Addr.Addr()
		log.Info("node: advertised WireGuard endpoint", "endpoint", ep.String())
	}
	// The advertised address may not be on an interface (a NAT mapping):
	// consumers must not reach it through the exit either.
	policy, err := tunnel.NewExitPolicy(tunnel.PolicyConfig{Allow: cfg.Allow, InterfaceAddrs: true, ExtraDenied: []netip.Addr{cfg.AdvertiseAddr}})
	if err != nil {
		return nil, err
	}
	p.ExitPolicy = policy
	if mux, err := p.iceMux(cfg); err != nil {
		log.Warn("node: sessions without a shared ICE port", "err", err)
	} else if mux != nil {
		closers = append(closers, func() { _ = mux.Close() })
		iceCfg := *cfg.ICE
		iceCfg.Mux = mux
		cfg.ICE, p.cfg.ICE = &iceCfg, &iceCfg
		p.mux = mux
	}
	if p.portMaps != nil {
		p.portMaps.attach(policy, p.mux, []netip.Addr{cfg.AdvertiseAddr})
	}
	wgKey, err := loadOrCreateWGKey(filepath.Join(cfg.DataDir, "wg.key"))
	if err != nil {
		return nil, err
	}
	switch cfg.ExitMode {
	case "", tunnel.ModeUserspace:
		v4, v6 := pool.Ranges()
		p.Exit, err = userspace.NewExit(userspace.ExitConfig{
			PrivateKey: wgKey, ListenPort: cfg.WGPort, AdvertiseAddr: cfg.AdvertiseAddr, Gateway: pool.Gateway(),
			TunnelRanges: []netip.Prefix{v4, v6}, Policy: policy, Log: log,
		})
	case tunnel.ModeKernel:
		p.Exit, err = kernel.NewExit(ctx, kernel.ExitConfig{
			PrivateKey: wgKey, ListenPort: cfg.WGPort, EndpointAddr: cfg.AdvertiseAddr, Pool: pool, Policy: policy, Log: log,
		})
	default:
		err = refused(fmt.Errorf("unknown exit mode %q", cfg.ExitMode))
	}
	if err != nil {
		return nil, fmt.Errorf("node: exit: %w", err)
	}
	if p.finder != nil {
		p.epExit = newEndpointExit(p.Exit, p.finder.current().Addr)
		p.Exit = p.epExit
	}
	if cfg.WrapExit != nil {
		p.Exit = cfg.WrapExit(p.Exit)
	}
	closers = append(closers, func() { _ = p.Exit.Close() })

	chainID := cfg.Chain.ChainID()
	if (cfg.P2P == nil) != (cfg.Discovery == nil) {
		return nil, refused(errors.New("node: provider needs both a shared p2p node and its discovery service, or neither"))
	}
	if cfg.P2P != nil {
		p.P2P, p.Discovery = cfg.P2P, cfg.Discovery
	} else if err := p.startP2P(ctx, chainID.Uint64(), &closers); err != nil {
		return nil, err
	}

	if p.Quota, err = provider.NewQuota(ctx, quotaStore{p.DB}, cfg.Caps.MonthlyQuota, nil); err != nil {
		return nil, err
	}
	self := cfg.Signer.Address()
	pay := cfg.Payment
	if pay.Threshold == nil && pay.MaxUnpaid == nil {
		pay.Threshold, pay.MaxUnpaid = DefaultThresholds(pingpong.Price{PerHour: cfg.Price.PerHour.Int(), PerGiB: cfg.Price.PerGiB.Int()})
	}
	p.Sessions, err = provider.New(provider.Config{
		Signer: cfg.Signer, ChainID: chainID,
		Proposal: func() (market.Proposal, bool) { return p.Discovery.Cache().Get(self) },
		Exit:     p.Exit, Pool: pool, Funds: chainFunds{cfg.Chain},
		Hermes: hermesAdapter{c: p.Hermes, st: p.hashlocks}, Permanent: permanentHermesError,
		Store: dualStore{db: p.DB, pay: p.Pay}, History: p.History, TransactorFee: cfg.TransactorFee,
		Payment: pay, SendInvoice: cfg.SendInvoice, ICE: cfg.ICE, Log: log,
		MaxSessions: cfg.Caps.MaxSessions, SessionBandwidth: cfg.Caps.SessionBandwidth, Quota: p.Quota, QuotaEvery: cfg.QuotaEvery,
	})
	if err != nil {
		return nil, err
	}
	p.P2P.Host.SetStreamHandler(sessionproto.ProtocolID, p.Sessions.Handle)
	p.P2P.Host.SetStreamHandler(sessionproto.ProtocolICE, p.Sessions.Handle)
	p.P2P.Host.SetStreamHandler(sessionproto.ProtocolResume, p.Sessions.Handle)
	closers = append(closers, func() {
		p.P2P.Host.RemoveStreamHandler(sessionproto.ProtocolID)
		p.P2P.Host.RemoveStreamHandler(sessionproto.ProtocolICE)
		p.P2P.Host.RemoveStreamHandler(sessionproto.ProtocolResume)
		_ = p.Sessions.Close()
	})

	p.loc = cfg.Location
	if cfg.Locator != nil {
		if p.loc, err = cfg.Locator.Locate(HostIPs(p.P2P.Host)); err != nil {
			return nil, fmt.Errorf("node: provider location: %w", err)
		}
	}
	p.offer = market.Proposal{
		ChainID: chainID.Uint64(), ServiceType: market.ServiceWireGuard, Location: p.loc, Price: cfg.Price,
		Hermes: []common.Address{cfg.Hermes}, Access: cfg.Caps.Access(), Caps: cfg.Caps.Announced(),
	}
	ann, err := discovery.NewAnnouncer(p.Discovery, discovery.AnnouncerConfig{
		Proposal: p.offer, Signer: cfg.Signer, Host: p.P2P.Host, TTL: cfg.ProposalTTL, Log: log,
		Seq: discovery.SeqFileFor(cfg.DataDir, cfg.Signer.Address()),
	})
	if errors.Is(err, discovery.ErrBadAnnouncer) {
		return nil, refused(err) // an offer that can never be announced
	}
	if err != nil {
		return nil, err
	}
	p.ann = ann
	if p.NAT != nil {
		p.NAT.SetPortMappings(func() []portmap.Mapping { return providerPortMappings(p) })
	}
	rctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := ann.Run(rctx); err != nil {
			log.Error("node: announcer stopped", "err", err)
		}
	}()
	if p.finder != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.refreshEndpoint(rctx, cfg.AdvertiseRefresh)
		}()
	}
	if pol := cfg.AutoSettle; pol != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			runAutoSettle(rctx, p.settler(), p.Settlements, *pol, log)
		}()
	}
	return p, nil
}

// startP2P starts the provider's own libp2p host and discovery service.
func (p *Provider) startP2P(ctx context.Context, chainID uint64, closers *[]func()) (err error) {
	cfg := p.cfg
	key, err := p2p.LoadOrCreateKey(filepath.Join(cfg.DataDir, p2p.KeyFile))
	if err != nil {
		return err
	}
	if p.P2P, err = p2p.New(p2p.Config{Key: key, ListenAddrs: cfg.ListenAddrs, Bootstrap: cfg.Bootstrap, Relays: cfg.Relays, DHTMode: p2p.DHTServer, NAT: cfg.NAT, PublicAddrsOnly: cfg.PublicAddrsOnly, Log: p.log}); err != nil {
		return err
	}
	*closers = append(*closers, func() { _ = p.P2P.Close() })
	if p.Discovery, p.trust, err = startDiscovery(p.P2P.Host, discovery.Config{ValidatorConfig: discovery.ValidatorConfig{ChainID: chainID}, HeartbeatInterval: GossipHeartbeat(chainID), Log: p.log}, cfg.DataDir,
		newChainBacking(func(context.Context) (*chain.Client, error) { return cfg.Chain, nil })); err != nil {
		return err
	}
	*closers = append(*closers, func() { _ = p.trust.Close(); _ = p.Discovery.Close() })
	if p.NAT, err = StartNAT(NATConfig{P2P: p.P2P, ICE: cfg.ICE, AllowPrivate: !cfg.PublicAddrsOnly, Report: cfg.NATReport, Log: p.log}); err != nil {
		return err
	}
	*closers = append(*closers, func() { _ = p.NAT.Close() })
	p.ownP2P = true
	if len(cfg.Bootstrap) > 0 {
		if err := p.P2P.Bootstrap(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Location is the location the provider announces.
func (p *Provider) Location() market.Location { return p.loc }

// SetPrice announces the provider's proposal with a new price at once.
// New sessions pay it; running sessions keep the price they agreed to.
// It is not persisted: a restart announces the configured price.
func (p *Provider) SetPrice(price market.Price) market.Proposal {
	p.priceMu.Lock()
	defer p.priceMu.Unlock()
	p.offer.Price = price
	p.ann.Update(p.offer)
	return p.offer
}

// Address is the provider identity.
func (p *Provider) Address() common.Address { return p.cfg.Signer.Address() }

// Proposal returns the provider's current published proposal.
func (p *Provider) Proposal() (market.Proposal, bool) { return p.Discovery.Cache().Get(p.Address()) }

// WaitPublished waits until the provider's proposal is published.
func (p *Provider) WaitPublished(ctx context.Context) error {
	for {
		if _, ok := p.Proposal(); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node: proposal of %s not published: %w", p.Address().Hex(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close ends every session (the consumers get a Destroy), withdraws the
// proposal and stops the node.
func (p *Provider) Close() error {
	p.P2P.Host.RemoveStreamHandler(sessionproto.ProtocolID)
	p.P2P.Host.RemoveStreamHandler(sessionproto.ProtocolICE)
	p.P2P.Host.RemoveStreamHandler(sessionproto.ProtocolResume)
	_ = p.Sessions.Close()
	p.cancel()
	p.wg.Wait()
	if pol := p.cfg.AutoSettle; pol != nil && pol.AtShutdown {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownSettleTimeout)
		settled, why, err := p.settler().AutoSettleOnce(ctx, p.Settlements, *pol, TriggerShutdown)
		cancel()
		switch {
		case err != nil:
			p.log.Warn("node: settlement at shutdown failed", "err", err)
		case settled:
			p.log.Info("node: settled provider earnings at shutdown")
		default:
			p.log.Info("node: no settlement at shutdown", "reason", why)
		}
	}
	if p.ownP2P {
		_ = p.NAT.Close()
		_ = p.trust.Close()
		_ = p.Discovery.Close()
		_ = p.P2P.Close()
	}
	_ = p.Exit.Close()
	if p.mux != nil {
		_ = p.mux.Close()
	}
	p.portMaps.close()
	return p.DB.Close()
}

// Earnings is what the hermes owes the provider and what is settled.
type Earnings struct {
	// Earned is the cumulative hermes promise amount (before the hermes
	// fee), in wei.
	Earned *big.Int `json:"earned"`
	// Settled is what the provider channel has settled on chain, in wei.
	Settled *big.Int `json:"settled"`
	// Unsettled is Earned-Settled.
	Unsettled *big.Int `json:"unsettled"`
}

// Settler reads a provider's earnings and settles them on chain. It
// needs no identity key: the hermes signed the promise and the chain
// client's transactor pays the gas.
type Settler struct {
	// Chain is the chain client; Hermes the hermes contract.
	Chain  *chain.Client
	Hermes common.Address
	// Provider is the provider identity.
	Provider common.Address
	// Client is the hermes API client.
	Client *hclient.Client
	// Pay and Hashlocks are the provider's stores of invoice secrets.
	Pay       *paystore.Store
	Hashlocks *hclient.StorageHashlocks
	// Relay, when set, settles through a transactor instead of Chain's key.
	Relay *transactor.Client
}

// NewSettler returns a Settler over a provider's node database.
func NewSettler(ctx context.Context, db *storage.DB, c *chain.Client, hermesID common.Address, hermesURL string, ht HermesTLS, provider common.Address) (_ *Settler, err error) {
	if hermesURL, err = hermesClientURL(c.ChainID().Uint64(), hermesURL, ht.AllowInsecureHTTP); err != nil {
		return nil, err
	}
	hl, err := hclient.NewStorageHashlocks(ctx, db)
	if err != nil {
		return nil, err
	}
	hc, err := hclient.New(hermesURL, hl, hclient.Options{Chain: HermesTerms{c}, HermesID: hermesID, RootCAs: ht.CA, AllowInsecureHTTP: ht.AllowInsecureHTTP})
	if err != nil {
		return nil, err
	}
	return &Settler{Chain: c, Hermes: hermesID, Provider: provider, Client: hc, Pay: paystore.New(db), Hashlocks: hl}, nil
}

func (p *Provider) settler() *Settler {
	return &Settler{Chain: p.cfg.Chain, Hermes: p.cfg.Hermes, Provider: p.Address(), Client: p.Hermes, Pay: p.Pay, Hashlocks: p.hashlocks, Relay: p.cfg.Relay}
}

// Earnings reads the provider's earnings from the hermes and the chain.
func (p *Provider) Earnings(ctx context.Context) (Earnings, error) { return p.settler().Earnings(ctx) }

// Settle settles the latest hermes promise on chain (see Settler.Settle).
func (p *Provider) Settle(ctx context.Context) (Settlement, error) {
	return p.settler().SettleRecorded(ctx, p.Settlements, TriggerManual)
}

// SettlementHistory lists the provider's settlement attempts, newest
// first (limit <= 0: all).
func (p *Provider) SettlementHistory(ctx context.Context, limit int) ([]SettlementRecord, error) {
	return p.Settlements.List(ctx, limit)
}

// Earnings reads the provider's earnings from the hermes and the chain.
func (p *Settler) Earnings(ctx context.Context) (Earnings, error) {
	v, err := p.Client.Provider(ctx, p.Provider.Hex())
	if err != nil {
		return Earnings{}, fmt.Errorf("node: hermes view: %w", err)
	}
	e := Earnings{Earned: new(big.Int), Settled: new(big.Int)}
	if v.LatestPromise != nil {
		e.Earned.Set(v.LatestPromise.Amount)
	}
	pc, err := p.Chain.ProviderChannel(ctx, p.Hermes, p.Provider)
	if err != nil {
		return Earnings{}, fmt.Errorf("node: provider channel: %w", err)
	}
	if pc.Settled != nil {
		e.Settled.Set(pc.Settled)
	}
	e.Unsettled = new(big.Int).Sub(e.Earned, e.Settled)
	return e, nil
}

// Settlement is one provider settlement on chain.
type Settlement struct {
	// Tx is the settlement transaction.
	Tx common.Hash `json:"tx"`
	// Amount is the cumulative hermes promise settled, in wei.
	Amount *big.Int `json:"amount"`
}

// ErrNothingToSettle is returned by Settle when the hermes holds no
// promise above what is settled.
var ErrNothingToSettle = errors.New("node: nothing to settle")

// Settle settles the latest hermes promise on chain with its secret R
// (from the node database, so it works after a restart). The provider's
// beneficiary receives the promise minus the hermes fee.
func (p *Settler) Settle(ctx context.Context) (Settlement, error) {
	v, err := p.Client.Provider(ctx, p.Provider.Hex())
	if err != nil {
		return Settlement{}, fmt.Errorf("node: hermes view: %w", err)
	}
	lp := v.LatestPromise
	if lp == nil {
		return Settlement{}, ErrNothingToSettle
	}
	e, err := p.Earnings(ctx)
	if err != nil {
		return Settlement{}, err
	}
	if e.Unsettled.Sign() <= 0 {
		return Settlement{}, ErrNothingToSettle
	}
	// The hermes's view is its own claim: check the promise against the
	// chain (signer, channel, and what the contract would pay for it now)
	// before paying gas for it.
	if err := p.Client.CheckSettleable(ctx, p.Provider, lp); err != nil {
		return Settlement{}, fmt.Errorf("node: the hermes's latest promise: %w", err)
	}
	r, _, err := p.Pay.Secret(ctx, lp.Hashlock)
	if err != nil {
		entry, herr := p.Hashlocks.Get(ctx, lp.Hashlock)
		if herr != nil {
			return Settlement{}, fmt.Errorf("node: secret of the latest hermes promise: %w", err)
		}
		r = entry.R
	}
	if p.Relay != nil {
		return p.settleVia(ctx, *lp, r)
	}
	rc, err := p.Chain.SettleProviderPromise(ctx, p.Hermes, p.Provider, *lp, r)
	if err != nil {
		return Settlement{}, fmt.Errorf("node: settle on chain: %w", err)
	}
	// A node can serve the receipt before its head moves to the receipt's
	// block: wait for the head so that the next Earnings (read at
	// "latest") sees this settlement instead of settling it again.
	if err := waitHead(ctx, p.Chain.Backend(), rc.BlockNumber); err != nil {
		return Settlement{}, fmt.Errorf("node: settlement %s mined: %w", rc.TxHash.Hex(), err)
	}
	return Settlement{Tx: rc.TxHash, Amount: new(big.Int).Set(lp.Amount)}, nil
}

// settleVia settles promise lp with secret r through the transactor relay.
func (p *Settler) settleVia(ctx context.Context, lp payments.Promise, r [32]byte) (Settlement, error) {
	dep := p.Chain.Deployment()
	q, err := p.Relay.Quote(ctx)
	if err != nil {
		return Settlement{}, fmt.Errorf("node: transactor fee quote: %w", err)
	}
	res, err := p.Relay.Settle(ctx, q, chain.Settlement{Kind: chain.KindProvider, ChainID: dep.ChainID, Contract: p.Hermes, Provider: p.Provider, Promise: lp, Preimage: r})
	if err != nil {
		return Settlement{}, fmt.Errorf("node: settle through the transactor: %w", err)
	}
	if err := waitTx(ctx, p.Chain.Backend(), res.Tx); err != nil {
		return Settlement{}, fmt.Errorf("node: settlement %s mined: %w", res.Tx.Hex(), err)
	}
	return Settlement{Tx: res.Tx, Amount: new(big.Int).Set(lp.Amount)}, nil
}

// waitHead returns once b's head block is at least n.
func waitHead(ctx context.Context, b chain.Backend, n *big.Int) error {
	for {
		h, err := b.HeaderByNumber(ctx, nil)
		if err != nil {
			return fmt.Errorf("chain head: %w", err)
		}
		if n == nil || h.Number.Cmp(n) >= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for block %s (head %s): %w", n, h.Number, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// EnsureRegistered registers signer on chain with hermes unless it is
// registered already, reporting progress.
func EnsureRegistered(ctx context.Context, c *chain.Client, signer identity.Signer, hermesID common.Address, progress func(string)) error {
	return EnsureRegisteredFee(ctx, c, signer, hermesID, nil, progress)
}

// EnsureRegisteredFee is EnsureRegistered paying fee (nil: none) from
// the identity's pre-funded channel to the chain client's transactor.
func EnsureRegisteredFee(ctx context.Context, c *chain.Client, signer identity.Signer, hermesID common.Address, fee *big.Int, progress func(string)) error {
	return ensureRegistered(ctx, c, signer, hermesID, progress, func(say func(string)) (*big.Int, error) {
		say(fmt.Sprintf("registering identity %s with hermes %s; waiting for the chain...", signer.Address().Hex(), hermesID.Hex()))
		_, rc, err := c.RegisterIdentity(ctx, signer, hermesID, fee, common.Address{})
		if err != nil && !errors.Is(err, chain.ErrAlreadyRegistered) {
			return nil, fmt.Errorf("node: register %s: %w", signer.Address().Hex(), err)
		}
		if err != nil || rc == nil {
			return nil, nil
		}
		return rc.BlockNumber, nil
	})
}

// ensureRegistered is the one registration flow of EnsureRegisteredFee
// and EnsureRegisteredVia: unless c reads signer as registered, register
// (reporting through say) returns the block its registration was mined
// in (nil: registered meanwhile by someone else), and reads at "latest"
// after this (channel balance, logs) see the registration.
func ensureRegistered(ctx context.Context, c *chain.Client, signer identity.Signer, hermesID common.Address, progress func(string), register func(say func(string)) (*big.Int, error)) error {
	if progress == nil {
		progress = func(string) {}
	}
	ok, err := c.IsRegistered(ctx, signer.Address())
	if err != nil {
		return fmt.Errorf("node: registration of %s: %w", signer.Address().Hex(), err)
	}
	if ok {
		return nil
	}
	block, err := register(progress)
	if err != nil {
		return err
	}
	if block != nil {
		if err := waitHead(ctx, c.Backend(), block); err != nil {
			return fmt.Errorf("node: registration of %s mined: %w", signer.Address().Hex(), err)
		}
	}
	progress(fmt.Sprintf("identity %s registered", signer.Address().Hex()))
	return nil
}

// chainFunds checks consumers on chain.
type chainFunds struct{ c *chain.Client }

// ConsumerFunds implements provider.Funds: registration and channel balance.
func (f chainFunds) ConsumerFunds(ctx context.Context, consumer, hermesID common.Address) (bool, *big.Int, error) {
	ok, err := f.c.IsRegistered(ctx, consumer)
	if err != nil || !ok {
		return false, nil, err
	}
	st, err := f.c.ChannelState(ctx, f.c.ChannelAddress(consumer, hermesID))
	if err != nil {
		return true, nil, err
	}
	return true, st.Balance, nil
}

// dualStore keeps invoice secrets both in the pay-as-you-go store (for
// resume and settlement) and in the hermes client's store (which needs
// them to reveal R and to recover after a crash). Both live in the node
// database, so one transaction (one fsync) writes both.
type dualStore struct {
	db  *storage.DB
	pay *paystore.Store
}

// Put stores R in both stores in one durable commit.
func (d dualStore) Put(ctx context.Context, lock, r [32]byte, agreementID *big.Int) error {
	err := d.db.Update(ctx, func(tx *storage.Tx) error {
		if err := paystore.PutSecretTx(tx, lock, r, agreementID); err != nil {
			return err
		}
		return hclient.PutTx(tx, hclient.Entry{Hashlock: lock, R: r, Created: time.Now().UTC()})
	})
	if err != nil {
		return fmt.Errorf("node: store invoice secret: %w", err)
	}
	return nil
}

// PutExchange implements pingpong.ExchangeStore.
func (d dualStore) PutExchange(ctx context.Context, em *payments.ExchangeMessage) error {
	return d.pay.PutExchange(ctx, em)
}

// hermesAdapter is pingpong.Hermes over the hermes HTTP client.
type hermesAdapter struct {
	c  *hclient.Client
	st *hclient.StorageHashlocks
}

// RequestPromise posts the exchange message (the client reveals R after).
func (h hermesAdapter) RequestPromise(ctx context.Context, em *payments.ExchangeMessage) (*payments.Promise, error) {
	return h.c.RequestPromise(ctx, em)
}

// RevealR succeeds once the client has revealed R, retrying through Recover.
func (h hermesAdapter) RevealR(ctx context.Context, _ common.Address, lock, _ [32]byte) error {
	e, err := h.st.Get(ctx, lock)
	if err != nil {
		return err
	}
	if e.Revealed {
		return nil
	}
	if _, err := h.c.Recover(ctx); err != nil {
		return err
	}
	if e, err = h.st.Get(ctx, lock); err != nil {
		return err
	}
	if !e.Revealed {
		return errors.New("node: reveal still pending")
	}
	return nil
}

// permanentHermesError is a hermes rejection other than "unavailable",
// or a hermes promise the client refused.
func permanentHermesError(err error) bool {
	var ae *hclient.APIError
	return errors.As(err, &ae) && !ae.Code.Retryable() || errors.Is(err, hclient.ErrUntrustedPromise)
}

var _ pingpong.Hermes = hermesAdapter{}

// loadOrCreateWGKey keeps the exit's WireGuard key in a 0600 file.
func loadOrCreateWGKey(path string) (tunnel.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		return tunnel.ParsePrivateKey(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return tunnel.PrivateKey{}, err
	}
	k, err := tunnel.GenerateKey()
	if err != nil {
		return k, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(k.String()), 0o600); err != nil {
		return k, err
	}
	return k, os.Rename(tmp, path)
}
