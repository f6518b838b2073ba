// Package relay is the network's relay role: a STUN server that tells
// nodes their public address, and a TURN server (RFC 8656) that carries a
// session's WireGuard datagrams when no direct path exists (symmetric NAT
// on both sides, UDP blocked). TURN runs over UDP, TCP and TLS, so a node
// whose network allows only TCP out still gets through.
//
// A relay may also answer STUN on an alternate UDP port (Config.STUNAlt),
// the idea of RFC 5780's OTHER-ADDRESS: a node that asks both ports from
// one socket sees the same public address and port behind an
// endpoint-independent NAT and different ports behind an
// endpoint-dependent ("symmetric") one, so a network with a single relay
// can tell a node's NAT mapping (nat/netcheck) and punch (nat/punch).
//
// The relay sees only WireGuard ciphertext. It admits clients with
// time-limited credentials in the TURN REST form (username
// "<expiry>:<user>", password HMAC-SHA1(secret, username)), caps every
// allocation's bandwidth, bounds the number of allocations, and refuses to
// relay to its own host's loopback, private, link-local, multicast or
// unspecified addresses, so it cannot be used to reach the operator's LAN.
package relay

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/nat/addrs"
	"github.com/openmyst/openmyst/ratelimit"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"
	"golang.org/x/time/rate"
)

// Defaults of a relay.
const (
	// DefaultBandwidth is each allocation's cap, bytes per second in each
	// direction (50 Mbit/s).
	DefaultBandwidth = 50_000_000 / 8
	// DefaultMaxAllocations bounds the allocations held at once.
	DefaultMaxAllocations = 1000
	// DefaultRealm is the TURN realm.
	DefaultRealm = "openmyst"
	// DefaultCredentialTTL is how long credentials made by Credentials last.
	DefaultCredentialTTL = 12 * time.Hour
	// STUNAltRate and STUNAltBurst limit the requests the alternate STUN
	// port takes from one source address (per second, and at once);
	// more are dropped unread. A node's check sends one request each
	// 500 ms until answered, so many nodes behind one carrier-grade NAT
	// address fit.
	STUNAltRate  = 50
	STUNAltBurst = 100
)

// Config configures a relay Server.
type Config struct {
	// UDP is the address for STUN and TURN over UDP (e.g. ":3478"); empty
	// disables it.
	UDP string
	// STUNAlt is a second UDP address answering STUN Binding requests
	// only (e.g. ":3479"; no TURN allocations there): the alternate port
	// that, with UDP's, makes two STUN destinations of one relay (RFC
	// 5780's OTHER-ADDRESS idea, same IP and another port). Empty
	// disables it.
	STUNAlt string
	// TCP is the address for TURN over TCP (e.g. ":3478"); empty disables it.
	TCP string
	// TLS is the address for TURN over TLS (e.g. ":5349"), used with
	// TLSConfig; empty disables it.
	TLS       string
	TLSConfig *tls.Config
	// PublicIP is the relay's public address: allocations are reachable
	// there. Required when TURN is served.
	PublicIP netip.Addr
	// RelayBind is the local address relayed sockets bind to; zero means
	// the unspecified address.
	RelayBind netip.Addr
	// Secret is the shared secret of the TURN REST credentials. Required.
	Secret []byte
	// Realm is the TURN realm; empty means DefaultRealm.
	Realm string
	// Bandwidth caps each allocation, bytes per second in each direction;
	// zero means DefaultBandwidth.
	Bandwidth int
	// MaxAllocations bounds the allocations held at once; zero means
	// DefaultMaxAllocations.
	MaxAllocations int
	// AllowPrivatePeers lets allocations reach private and loopback
	// addresses: for loopback devnets only.
	AllowPrivatePeers bool
	// Logger receives the relay's log; nil means slog.Default().
	Logger *slog.Logger
}

// Server is a running relay.
type Server struct {
	turn  *turn.Server
	conns []closer
	log   *slog.Logger
	addrs Addrs
	gen   *generator
}

type closer interface{ Close() error }

// Addrs are the addresses a Server listens on.
type Addrs struct {
	UDP, TCP, TLS netip.AddrPort
	// STUNAlt is the alternate STUN port's address (Config.STUNAlt).
	STUNAlt netip.AddrPort
}

// Start starts a relay on cfg's addresses. It stops with Close.
func Start(cfg Config) (*Server, error) {
	if len(cfg.Secret) < 16 {
		return nil, errors.New("relay: the credential secret must be at least 16 bytes")
	}
	if cfg.UDP == "" && cfg.TCP == "" && cfg.TLS == "" && cfg.STUNAlt == "" {
		return nil, errors.New("relay: no listen address")
	}
	if !cfg.PublicIP.IsValid() {
		return nil, errors.New("relay: the public IP is required")
	}
	if cfg.TLS != "" && cfg.TLSConfig == nil {
		return nil, errors.New("relay: TURN over TLS needs a TLS configuration")
	}
	cfg.Realm = cmp.Or(cfg.Realm, DefaultRealm)
	cfg.Bandwidth = defaults.Positive(cfg.Bandwidth, DefaultBandwidth)
	cfg.MaxAllocations = defaults.Positive(cfg.MaxAllocations, DefaultMaxAllocations)
	log := cmp.Or(cfg.Logger, slog.Default())
	log = log.With("component", "relay")
	bind := "0.0.0.0"
	if cfg.RelayBind.IsValid() {
		bind = cfg.RelayBind.String()
	}
	gen := &generator{
		static:    &turn.RelayAddressGeneratorStatic{RelayAddress: net.IP(cfg.PublicIP.AsSlice()), Address: bind},
		bandwidth: cfg.Bandwidth,
		max:       cfg.MaxAllocations,
	}
	perm := permission(cfg.AllowPrivatePeers)
	s := &Server{log: log, gen: gen}
	var pcs []turn.PacketConnConfig
	var lns []turn.ListenerConfig
	fail := func(err error) (*Server, error) {
		for _, c := range s.conns {
			_ = c.Close()
		}
		return nil, err
	}
	// Every UDP socket answers STUN (pion's server answers Binding
	// requests on each); the alternate port's generator refuses
	// allocations, so it is STUN only.
	for _, u := range []struct {
		addr string
		to   *netip.AddrPort
		gen  turn.RelayAddressGenerator
		what string
	}{{cfg.UDP, &s.addrs.UDP, gen, ""}, {cfg.STUNAlt, &s.addrs.STUNAlt, stunOnly{}, " (alternate STUN port)"}} {
		if u.addr == "" {
			continue
		}
		pc, err := net.ListenPacket("udp4", u.addr)
		if err != nil {
			return fail(fmt.Errorf("relay: listen udp %s%s: %w", u.addr, u.what, err))
		}
		s.conns = append(s.conns, pc)
		*u.to = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		if _, alt := u.gen.(stunOnly); alt {
			// Anyone may ask: each source address is rate-limited.
			pc = &limitedSource{PacketConn: pc, lim: ratelimit.New[netip.Addr](STUNAltRate, STUNAltBurst, 0)}
		}
		pcs = append(pcs, turn.PacketConnConfig{PacketConn: pc, RelayAddressGenerator: u.gen, PermissionHandler: perm})
	}
	if cfg.TCP != "" {
		ln, err := net.Listen("tcp4", cfg.TCP)
		if err != nil {
			return fail(fmt.Errorf("relay: listen tcp %s: %w", cfg.TCP, err))
		}
		s.conns = append(s.conns, ln)
		s.addrs.TCP = ln.Addr().(*net.TCPAddr).AddrPort()
		lns = append(lns, turn.ListenerConfig{Listener: ln, RelayAddressGenerator: gen, PermissionHandler: perm})
	}
	if cfg.TLS != "" {
		ln, err := tls.Listen("tcp4", cfg.TLS, cfg.TLSConfig)
		if err != nil {
			return fail(fmt.Errorf("relay: listen tls %s: %w", cfg.TLS, err))
		}
		s.conns = append(s.conns, ln)
		s.addrs.TLS = ln.Addr().(*net.TCPAddr).AddrPort()
		lns = append(lns, turn.ListenerConfig{Listener: ln, RelayAddressGenerator: gen, PermissionHandler: perm})
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	ts, err := turn.NewServer(turn.ServerConfig{
		Realm:             cfg.Realm,
		AuthHandler:       turn.LongTermTURNRESTAuthHandler(string(cfg.Secret), lf.NewLogger("turn-auth")),
		PacketConnConfigs: pcs,
		ListenerConfigs:   lns,
		LoggerFactory:     lf,
	})
	if err != nil {
		return fail(fmt.Errorf("relay: start TURN: %w", err))
	}
	s.turn = ts
	log.Info("relay listening", "udp", s.addrs.UDP, "stun_alt", s.addrs.STUNAlt, "tcp", s.addrs.TCP, "tls", s.addrs.TLS, "public", cfg.PublicIP,
		"bandwidth_per_allocation", cfg.Bandwidth, "max_allocations", cfg.MaxAllocations)
	return s, nil
}

// Addrs returns the addresses the relay listens on.
func (s *Server) Addrs() Addrs { return s.addrs }

// Allocations is the number of allocations held now.
func (s *Server) Allocations() int { return s.turn.AllocationCount() }

// Close stops the relay and releases every allocation.
func (s *Server) Close() error {
	err := s.turn.Close()
	for _, c := range s.conns {
		_ = c.Close()
	}
	return err
}

// Credentials makes TURN credentials for user, valid for ttl, under
// secret: what a relay operator hands to the network's nodes.
func Credentials(secret []byte, user string, ttl time.Duration) (username, password string, err error) {
	return turn.GenerateLongTermTURNRESTCredentials(string(secret), user, ttl)
}

// permission refuses relaying to addresses that would reach the relay's
// own host or network, unless allowPrivate (devnets).
func permission(allowPrivate bool) turn.PermissionHandler {
	return func(_ net.Addr, peer net.IP) bool {
		a, ok := netip.AddrFromSlice(peer)
		if !ok {
			return false
		}
		return PeerAllowed(a.Unmap(), allowPrivate)
	}
}

// PeerAllowed reports whether a relay may send to a (see addrs.Remote).
func PeerAllowed(a netip.Addr, allowPrivate bool) bool { return addrs.Remote(a, allowPrivate) }

// generator hands out relayed sockets with a bandwidth cap, and bounds
// how many exist.
type generator struct {
	static    *turn.RelayAddressGeneratorStatic
	bandwidth int
	max       int

	mu   sync.Mutex
	live int
}

// ErrTooManyAllocations is returned when the relay holds its maximum.
var ErrTooManyAllocations = errors.New("relay: too many allocations")

func (g *generator) Validate() error { return g.static.Validate() }

func (g *generator) AllocatePacketConn(network string, port int) (net.PacketConn, net.Addr, error) {
	g.mu.Lock()
	if g.live >= g.max {
		g.mu.Unlock()
		return nil, nil, ErrTooManyAllocations
	}
	g.live++
	g.mu.Unlock()
	pc, addr, err := g.static.AllocatePacketConn(network, port)
	if err != nil {
		g.release()
		return nil, nil, err
	}
	burst := max(g.bandwidth/10, 64<<10)
	return &limitedConn{
		PacketConn: pc,
		in:         rate.NewLimiter(rate.Limit(g.bandwidth), burst),
		out:        rate.NewLimiter(rate.Limit(g.bandwidth), burst),
		release:    g.release,
	}, addr, nil
}

// ErrSTUNOnly is what an allocation asked on the alternate STUN port
// (Config.STUNAlt) gets.
var ErrSTUNOnly = errors.New("relay: the alternate STUN port does not allocate (use the TURN port)")

// stunOnly is the alternate STUN port's relay address generator: it
// refuses every allocation.
type stunOnly struct{}

func (stunOnly) Validate() error { return nil }

func (stunOnly) AllocatePacketConn(string, int) (net.PacketConn, net.Addr, error) {
	return nil, nil, ErrSTUNOnly
}

func (stunOnly) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, ErrSTUNOnly
}

// limitedSource is a socket that drops datagrams from a source address
// beyond its limit (one bucket per address, bounded: see ratelimit).
type limitedSource struct {
	net.PacketConn
	lim *ratelimit.Keyed[netip.Addr]
}

func (c *limitedSource) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if ua, ok := addr.(*net.UDPAddr); ok && c.lim.Allow(ua.AddrPort().Addr().Unmap(), time.Now()) {
			return n, addr, nil
		}
	}
}

func (g *generator) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, errors.New("relay: TCP allocations (RFC 6062) are not offered")
}

func (g *generator) release() {
	g.mu.Lock()
	g.live--
	g.mu.Unlock()
}

// limitedConn is a relayed socket whose traffic each way is capped.
// Reading waits for tokens (the peer's excess queues, then drops, in the
// kernel's socket buffer); writing drops what exceeds the cap, as a
// congested link would.
type limitedConn struct {
	net.PacketConn
	in, out *rate.Limiter
	release func()
	once    sync.Once
}

func (c *limitedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err == nil && n > 0 {
		_ = c.in.WaitN(context.Background(), min(n, c.in.Burst()))
	}
	return n, addr, err
}

func (c *limitedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.out.AllowN(time.Now(), len(p)) {
		return len(p), nil // dropped
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.PacketConn.Close()
}
