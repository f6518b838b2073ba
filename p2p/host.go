package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/internal/retry"
)

// ProtocolPrefix is the DHT protocol prefix of the openmyst network; it
// keeps openmyst nodes out of the public IPFS DHT.
const ProtocolPrefix = "/openmyst"

// DefaultListenAddrs are the production listen addresses: every interface,
// TCP and QUIC, on port 4001.
var DefaultListenAddrs = []string{
	"/ip4/0.0.0.0/tcp/4001",
	"/ip4/0.0.0.0/udp/4001/quic-v1",
	"/ip6/::/tcp/4001",
	"/ip6/::/udp/4001/quic-v1",
}

// Each relayed connection through a relay-role node is cut after
// CircuitDuration or CircuitData bytes (each way), whichever comes first.
// libp2p's defaults (2 minutes, 128 KiB) are sized for a hole punch and
// would cut a paid session's control stream (invoices and promises for as
// long as the session runs); these carry an hour of a session's control
// traffic and stay bounded. WireGuard traffic never runs through them:
// the data path is ICE (direct or TURN).
const (
	CircuitDuration = time.Hour
	CircuitData     = 16 << 20
)

// CircuitLimit is the limit a relay-role node puts on each relayed
// connection: CircuitDuration and CircuitData.
func CircuitLimit() *relayv2.RelayLimit {
	return &relayv2.RelayLimit{Duration: CircuitDuration, Data: CircuitData}
}

// DHTMode selects whether the node answers DHT queries.
type DHTMode int

const (
	// DHTServer answers queries: bootstrap peers and providers.
	DHTServer DHTMode = iota
	// DHTClient only queries: short-lived consumers.
	DHTClient
)

// Config configures a Node.
type Config struct {
	// Key is the peer key; nil means a fresh ephemeral key.
	Key ic.PrivKey
	// ListenAddrs are multiaddrs to listen on; nil means DefaultListenAddrs
	// and an empty non-nil slice means do not listen.
	ListenAddrs []string
	// Bootstrap are the peers connected to at start and seeding the DHT.
	Bootstrap []peer.AddrInfo
	// Relays are circuit relay v2 peers a node behind a NAT (NAT) reserves
	// a relayed address with, besides the bootstrap peers (StaticRelays).
	Relays []peer.AddrInfo
	// DHTMode is server (default) or client.
	DHTMode DHTMode
	// NAT turns on NAT port mapping, AutoNAT (v2 and service), hole
	// punching and auto relay through the bootstrap peers. Production on,
	// loopback tests off.
	NAT bool
	// RelayService makes this node a circuit relay v2 for others, and an
	// AutoNAT server (bootstrap nodes with a public address).
	RelayService bool
	// PublicAddrsOnly advertises, to peers and in DHT records, only the
	// addresses a peer elsewhere on the internet can use (PublicAddrs);
	// off for loopback devnets.
	PublicAddrsOnly bool
	// ConnLow and ConnHigh are the connection manager watermarks; 0 means
	// 100 and 400.
	ConnLow, ConnHigh int
	// Log receives the node's log lines; nil means slog.Default().
	Log *slog.Logger
}

// Node is a running libp2p host with its DHT.
type Node struct {
	// Host is the libp2p host.
	Host host.Host
	// DHT is the Kademlia DHT on ProtocolPrefix.
	DHT *dht.IpfsDHT

	bootstrap []peer.AddrInfo
	log       *slog.Logger
	nat       *natWatch
	closeOnce sync.Once
	closeErr  error
}

// New starts a host listening on cfg.ListenAddrs with its DHT. It does not
// dial anyone: call Bootstrap.
func New(cfg Config) (*Node, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	listen := cfg.ListenAddrs
	if listen == nil {
		listen = DefaultListenAddrs
	}
	low, high := cfg.ConnLow, cfg.ConnHigh
	if low == 0 && high == 0 {
		low, high = 100, 400
	}
	cm, err := connmgr.NewConnManager(low, high, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(cm),
		libp2p.DisableMetrics(),
	}
	rm, err := resourceManager(relayIPs(cfg))
	if err != nil {
		return nil, err
	}
	opts = append(opts, rm)
	if cfg.Key != nil {
		opts = append(opts, libp2p.Identity(cfg.Key))
	}
	if cfg.NAT {
		opts = append(opts,
			libp2p.NATPortMap(),
			libp2p.EnableNATService(),
			libp2p.EnableAutoNATv2(),
			libp2p.EnableHolePunching(),
		)
		if relays := StaticRelays(cfg); len(relays) > 0 {
			opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(relays))
		}
	}
	if cfg.PublicAddrsOnly {
		opts = append(opts, libp2p.AddrsFactory(PublicAddrs))
	}
	if cfg.RelayService {
		// A relay is a public node by its operator's word: libp2p starts
		// the relay service only on a node it believes public. It also
		// answers AutoNAT dial-back requests, so nodes behind NAT learn
		// that they need a relay.
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithLimit(CircuitLimit())), libp2p.EnableNATService(), libp2p.ForceReachabilityPublic())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: start host: %w", err)
	}
	mode := dht.ModeServer
	if cfg.DHTMode == DHTClient {
		mode = dht.ModeClient
	}
	kad, err := dht.New(h,
		dht.Mode(mode),
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.BootstrapPeers(cfg.Bootstrap...),
		dht.DisableProviders(),
		dht.DisableValues(),
		dht.AddressFilter(addrFilter(cfg.PublicAddrsOnly)),
	)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("p2p: start DHT: %w", err)
	}
	n := &Node{Host: h, DHT: kad, bootstrap: cfg.Bootstrap, log: log}
	if err := n.watchNAT(); err != nil {
		kad.Close()
		h.Close()
		return nil, fmt.Errorf("p2p: follow reachability events: %w", err)
	}
	log.Debug("p2p node started", "peer", h.ID().String(), "addrs", fmt.Sprint(h.Addrs()))
	return n, nil
}

// ID is the node's peer id.
func (n *Node) ID() peer.ID { return n.Host.ID() }

// AddrInfo is the node's peer id and listen addresses, what other nodes
// need to bootstrap from it.
func (n *Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()}
}

// Multiaddrs are the node's full p2p multiaddrs (".../p2p/<id>"), as given
// to --p2p.bootstrap.
func (n *Node) Multiaddrs() []string {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()})
	if err != nil {
		return nil
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// Bootstrap connects to the configured bootstrap peers (in parallel, each
// bounded by ctx) and refreshes the DHT routing table. It fails only when
// there were bootstrap peers and none could be reached.
func (n *Node) Bootstrap(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		ok   int
	)
	for _, pi := range n.bootstrap {
		if pi.ID == n.Host.ID() {
			continue
		}
		wg.Add(1)
		go func(pi peer.AddrInfo) {
			defer wg.Done()
			err := connectRetry(ctx, n.Host, pi)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", pi.ID, err))
				return
			}
			ok++
		}(pi)
	}
	wg.Wait()
	if len(errs) > 0 {
		n.log.Warn("p2p: some bootstrap peers unreachable", "err", errors.Join(errs...))
	}
	if ok == 0 && len(errs) > 0 {
		return fmt.Errorf("p2p: no bootstrap peer reachable: %w", errors.Join(errs...))
	}
	if err := n.DHT.Bootstrap(ctx); err != nil {
		return fmt.Errorf("p2p: DHT bootstrap: %w", err)
	}
	if ok == 0 {
		return nil
	}
	// The routing table fills once identify has seen a peer's DHT protocol;
	// wait a little for that so lookups right after Bootstrap work.
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for n.DHT.RoutingTable().Size() == 0 {
		select {
		case <-wait.Done():
			n.log.Warn("p2p: DHT routing table still empty after bootstrap")
			return nil
		case <-t.C:
		}
	}
	return nil
}

// ForgetDialFailures drops the dial backoff the host keeps for p after
// failed dials, so the next dial to p tries its addresses again. A
// consumer calls it once a kill switch admits p: dials refused before
// that say nothing about p.
func (n *Node) ForgetDialFailures(p peer.ID) {
	if s, ok := n.Host.Network().(*swarm.Swarm); ok {
		s.Backoff().Clear(p)
	}
}

// FindPeer returns the addresses of id, from the peerstore or the DHT.
func (n *Node) FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	pi, err := n.DHT.FindPeer(ctx, id)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("p2p: find peer %s: %w", id, err)
	}
	return pi, nil
}

// Close stops the DHT and the host. It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closeErr = errors.Join(n.DHT.Close(), n.Host.Close())
		n.nat.stop()
		<-n.nat.done
	})
	return n.closeErr
}

// StaticRelays are the circuit relays a node behind a NAT uses: its
// Relays, then its bootstrap peers (which serve as relays, see
// Config.RelayService), each peer once.
func StaticRelays(cfg Config) []peer.AddrInfo {
	var out []peer.AddrInfo
	seen := map[peer.ID]bool{}
	for _, ai := range append(append([]peer.AddrInfo(nil), cfg.Relays...), cfg.Bootstrap...) {
		if !seen[ai.ID] {
			seen[ai.ID] = true
			out = append(out, ai)
		}
	}
	return out
}

// ParseBootstrap parses "/ip4/.../tcp/4001/p2p/<id>" multiaddrs (several per
// peer allowed; empty entries skipped) into peer infos.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for _, s := range addrs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("p2p: bootstrap address %q: %w", s, err)
		}
		mas = append(mas, m)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("p2p: bootstrap addresses: %w", err)
	}
	return infos, nil
}

// bootstrapTries is how many times Bootstrap dials one bootstrap peer, and
// bootstrapBackoff the wait between tries: a bootstrap node busy with many
// joining peers (or a loaded host) can let one handshake run past the dial
// timeout (5 s for a private address), and one such failure must not stop
// a node from joining.
const bootstrapTries = 3

var bootstrapBackoff = retry.Backoff{Initial: time.Second, Jitter: true}

// connectRetry connects h to pi, up to bootstrapTries times. A retry
// forces a new dial: the swarm's dial backoff would refuse it otherwise.
func connectRetry(ctx context.Context, h host.Host, pi peer.AddrInfo) error {
	return retry.Do(ctx, bootstrapBackoff, bootstrapTries, func(ctx context.Context, try int) error {
		if try > 1 {
			ctx = network.WithForceDirectDial(ctx, "bootstrap retry")
		}
		return h.Connect(ctx, pi)
	})
}
