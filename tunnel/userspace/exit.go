package userspace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/connbind"
)

// ExitConfig configures a userspace provider exit.
type ExitConfig struct {
	// PrivateKey is the device key; consumers get its public half.
	PrivateKey tunnel.PrivateKey
	// ListenPort is the UDP port (0: any free port).
	ListenPort uint16
	// ListenAddr, if set to a specific address, binds the UDP port there
	// only (tests use 127.0.0.1), with a simple one-datagram-per-call
	// socket. Unset or unspecified uses wireguard-go's batched, UDP
	// GSO/GRO-capable socket on every local address: the fast default.
	ListenAddr netip.Addr
	// AdvertiseAddr is the address consumers reach the port at; Endpoint()
	// returns it with the bound port. Defaults to ListenAddr if set, else
	// 127.0.0.1.
	AdvertiseAddr netip.Addr
	// Gateway is the provider's own tunnel addresses (AddressPool.Gateway());
	// DNS to it on port 53 is forwarded to the host resolver.
	Gateway tunnel.Lease
	// TunnelRanges are the consumer address ranges (AddressPool.Ranges());
	// flows from one consumer to another are refused.
	TunnelRanges []netip.Prefix
	// Policy decides which destinations are reachable; nil means
	// tunnel.DefaultExitPolicy(). While the exit runs it re-reads the
	// host's addresses the policy denies every AddrPollInterval.
	Policy *tunnel.ExitPolicy
	// AddrPollInterval is how often the policy's interface addresses are
	// re-read (ExitPolicy.WatchInterfaceAddrs); 0 means
	// tunnel.DefaultAddrPollInterval.
	AddrPollInterval time.Duration
	// DNSUpstream is the resolver DNS is forwarded to; zero means the first
	// nameserver in /etc/resolv.conf.
	DNSUpstream netip.AddrPort
	// MTU of the tunnel; 0 means tunnel.DefaultMTU.
	MTU int
	// DialTimeout bounds each outbound connection attempt (default 10s).
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP flow after this long without traffic (default 60s).
	UDPIdleTimeout time.Duration
	// MaxFlowsPerPeer caps one consumer's concurrent TCP+UDP flows, so no
	// session can exhaust the node's sockets (default 2048). Flows over the
	// cap are refused (TCP gets a RST).
	MaxFlowsPerPeer int
	// Dialer opens the host-side connections of forwarded flows (TCP and
	// UDP); nil means a net.Dialer. Tests use it to egress from a network
	// namespace; a node could bind to an egress interface.
	Dialer Dialer
	// Log receives operational messages; nil means slog.Default().
	Log *slog.Logger
}

// Dialer opens host-side connections for forwarded flows.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Exit is a userspace provider exit: a wireguard-go device over a
// forwarding gVisor netstack. It implements tunnel.Exit.
type Exit struct {
	cfg      ExitConfig
	log      *slog.Logger
	policy   *tunnel.ExitPolicy
	dev      *device.Device
	bind     *connbind.Bind // the UDP socket plus peers over connections
	tun      *stackTUN
	counter  tunnel.DeviceCounter
	pub      tunnel.PublicKey
	endpoint netip.AddrPort
	dialer   Dialer

	ctx    context.Context // cancelled by Close; parent of every flow
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // every flow goroutine
	peers  map[tunnel.PublicKey]*peer
	bySrc  map[netip.Addr]*peer
}

var _ tunnel.Exit = (*Exit)(nil)

// peer is the exit's per-consumer state: its flows end when ctx is cancelled.
type peer struct {
	cfg    tunnel.PeerConfig
	ctx    context.Context
	cancel context.CancelFunc
	up     *rate.Limiter // consumer -> internet; nil: unlimited
	down   *rate.Limiter // internet -> consumer
	flows  int           // live flows; guarded by Exit.mu
}

// NewExit starts a userspace exit. It returns when the device is up.
func NewExit(cfg ExitConfig) (*Exit, error) {
	if cfg.PrivateKey.IsZero() {
		return nil, errors.New("userspace exit: missing private key")
	}
	if !cfg.Gateway.V4.IsValid() {
		return nil, errors.New("userspace exit: missing gateway address")
	}
	cfg.MTU = cmp.Or(cfg.MTU, tunnel.DefaultMTU)
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, 10*time.Second)
	cfg.UDPIdleTimeout = cmp.Or(cfg.UDPIdleTimeout, 60*time.Second)
	cfg.MaxFlowsPerPeer = defaults.Positive(cfg.MaxFlowsPerPeer, 2048)
	if !cfg.AdvertiseAddr.IsValid() {
		cfg.AdvertiseAddr = netip.MustParseAddr("127.0.0.1")
		if cfg.ListenAddr.IsValid() && !cfg.ListenAddr.IsUnspecified() {
			cfg.AdvertiseAddr = cfg.ListenAddr
		}
	}
	log := cmp.Or(cfg.Log, slog.Default())
	log = log.With("component", "tunnel/userspace/exit")
	policy := cfg.Policy
	if policy == nil {
		var err error
		if policy, err = tunnel.DefaultExitPolicy(); err != nil {
			return nil, err
		}
	}
	if !cfg.DNSUpstream.IsValid() {
		up, err := hostResolver("/etc/resolv.conf")
		if err != nil {
			log.Warn("no host resolver found; DNS through the tunnel will fail", "err", err)
		}
		cfg.DNSUpstream = up
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &net.Dialer{}
	}
	addrs := []netip.Addr{cfg.Gateway.V4}
	if cfg.Gateway.V6.IsValid() {
		addrs = append(addrs, cfg.Gateway.V6)
	}
	st, err := newStackTUN(stackOptions{addrs: addrs, mtu: cfg.MTU, forward: true})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Exit{
		cfg:    cfg,
		log:    log,
		policy: policy,
		tun:    st,
		pub:    cfg.PrivateKey.PublicKey(),
		dialer: cfg.Dialer,
		ctx:    ctx,
		cancel: cancel,
		peers:  map[tunnel.PublicKey]*peer{},
		bySrc:  map[netip.Addr]*peer{},
	}
	tcpFwd := tcp.NewForwarder(st.stack, 0, 1024, e.handleTCP)
	st.stack.SetTransportProtocolHandler(tcp.ProtocolNumber, tcpFwd.HandlePacket)
	udpFwd := udp.NewForwarder(st.stack, e.handleUDP)
	st.stack.SetTransportProtocolHandler(udp.ProtocolNumber, udpFwd.HandlePacket)

	var udp conn.Bind = conn.NewDefaultBind()
	if cfg.ListenAddr.IsValid() && !cfg.ListenAddr.IsUnspecified() {
		udp = newBoundBind(cfg.ListenAddr.Unmap())
	}
	e.bind = connbind.New(udp)
	e.dev = device.NewDevice(st, e.bind, wgLogger(log))
	e.counter = tunnel.DeviceCounter{Dev: e.dev}
	if err := e.dev.IpcSet(tunnel.DeviceUAPI(cfg.PrivateKey, cfg.ListenPort)); err != nil {
		e.dev.Close()
		cancel()
		return nil, fmt.Errorf("userspace exit: configure device: %w", err)
	}
	if err := e.dev.Up(); err != nil {
		e.dev.Close()
		cancel()
		return nil, fmt.Errorf("userspace exit: device up: %w", err)
	}
	port, err := listenPort(e.dev)
	if err != nil {
		e.dev.Close()
		cancel()
		return nil, err
	}
	e.endpoint = netip.AddrPortFrom(cfg.AdvertiseAddr, port)
	// The node's addresses can change while it runs (DHCP, a new
	// interface): the policy follows them. Close waits for the watcher.
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		policy.WatchInterfaceAddrs(ctx, cfg.AddrPollInterval, log)
	}()
	log.Info("userspace exit up", "endpoint", e.endpoint, "public_key", e.pub.String(), "gateway", cfg.Gateway.V4)
	return e, nil
}

// listenPort reads the bound UDP port from the device.
func listenPort(dev *device.Device) (uint16, error) {
	get, err := dev.IpcGet()
	if err != nil {
		return 0, fmt.Errorf("read listen port: %w", err)
	}
	for _, line := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			var p uint16
			if _, err := fmt.Sscan(v, &p); err != nil || p == 0 {
				return 0, fmt.Errorf("read listen port: bad value %q", v)
			}
			return p, nil
		}
	}
	return 0, errors.New("read listen port: not reported")
}

func wgLogger(log *slog.Logger) *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) },
		Errorf:   func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) },
	}
}

// AddPeer admits a consumer.
func (e *Exit) AddPeer(ctx context.Context, cfg tunnel.PeerConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("add peer: %w", tunnel.ErrClosed)
	}
	if _, ok := e.peers[cfg.PublicKey]; ok {
		return fmt.Errorf("add peer %s: already present", cfg.PublicKey)
	}
	for _, pfx := range cfg.AllowedIPs {
		if !pfx.IsSingleIP() {
			return fmt.Errorf("add peer %s: allowed IP %s is not a single address", cfg.PublicKey, pfx)
		}
		if _, taken := e.bySrc[pfx.Addr()]; taken {
			return fmt.Errorf("add peer %s: address %s belongs to another peer", cfg.PublicKey, pfx.Addr())
		}
	}
	pctx, cancel := context.WithCancel(e.ctx)
	p := &peer{cfg: cfg, ctx: pctx, cancel: cancel}
	if cfg.BandwidthLimit > 0 {
		// An eighth of a second of traffic, but at least one copy buffer.
		burst := int(min(cfg.BandwidthLimit/8, 1<<30))
		burst = max(burst, copyBufSize)
		p.up = rate.NewLimiter(rate.Limit(cfg.BandwidthLimit), burst)
		p.down = rate.NewLimiter(rate.Limit(cfg.BandwidthLimit), burst)
	}
	e.peers[cfg.PublicKey] = p
	for _, pfx := range cfg.AllowedIPs {
		e.bySrc[pfx.Addr()] = p
	}
	// Configure the device without holding e.mu: wireguard-go may wait for
	// its receive goroutines, which can be inside the stack asking for e.mu.
	e.mu.Unlock()
	var err error
	if cfg.Conn != nil {
		_, err = e.bind.Add(cfg.PublicKey.Hex(), cfg.Conn)
	}
	if err == nil {
		err = e.dev.IpcSet(tunnel.PeerUAPI(cfg))
		if err != nil && cfg.Conn != nil {
			e.bind.Remove(cfg.PublicKey.Hex())
		}
	}
	e.mu.Lock()
	if err != nil {
		delete(e.peers, cfg.PublicKey)
		for _, pfx := range cfg.AllowedIPs {
			delete(e.bySrc, pfx.Addr())
		}
		cancel()
		return fmt.Errorf("add peer %s: %w", cfg.PublicKey, err)
	}
	return nil
}

// AttachConn implements tunnel.ConnAttacher.
func (e *Exit) AttachConn(pub tunnel.PublicKey, c net.Conn) error {
	e.mu.Lock()
	p, ok := e.peers[pub]
	closed := e.closed
	var cfg tunnel.PeerConfig
	if ok {
		p.cfg.Conn = c
		cfg = p.cfg
	}
	e.mu.Unlock()
	switch {
	case closed:
		c.Close()
		return fmt.Errorf("attach connection to %s: %w", pub, tunnel.ErrClosed)
	case !ok:
		c.Close()
		return fmt.Errorf("attach connection to %s: %w", pub, tunnel.ErrUnknownPeer)
	}
	e.bind.Remove(pub.Hex()) // a connection attached before
	if _, err := e.bind.Add(pub.Hex(), c); err != nil {
		c.Close()
		return fmt.Errorf("attach connection to %s: %w", pub, err)
	}
	if err := e.dev.IpcSet(tunnel.PeerUAPI(cfg)); err != nil {
		e.bind.Remove(pub.Hex())
		return fmt.Errorf("attach connection to %s: %w", pub, err)
	}
	return nil
}

// RemovePeer drops a consumer and ends its flows.
func (e *Exit) RemovePeer(pub tunnel.PublicKey) error {
	e.mu.Lock()
	p, ok := e.peers[pub]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("remove peer %s: %w", pub, tunnel.ErrUnknownPeer)
	}
	delete(e.peers, pub)
	for _, pfx := range p.cfg.AllowedIPs {
		delete(e.bySrc, pfx.Addr())
	}
	e.mu.Unlock()
	p.cancel()
	err := e.dev.IpcSet(tunnel.RemovePeerUAPI(pub))
	e.bind.Remove(pub.Hex()) // closes the peer's connection, if it had one
	if err != nil {
		return fmt.Errorf("remove peer %s: %w", pub, err)
	}
	return nil
}

// PeerStats implements tunnel.Counter.
func (e *Exit) PeerStats(pub tunnel.PublicKey) (tunnel.PeerStats, bool) {
	return e.counter.PeerStats(pub)
}

// Endpoint is the UDP address consumers send to.
func (e *Exit) Endpoint() netip.AddrPort { return e.endpoint }

// PublicKey is the device's public key.
func (e *Exit) PublicKey() tunnel.PublicKey { return e.pub }

// Gateway is the provider's tunnel addresses.
func (e *Exit) Gateway() tunnel.Lease { return e.cfg.Gateway }

// Blocked returns how many flows the exit policy refused.
func (e *Exit) Blocked() uint64 { return e.policy.Blocked() }

// Close stops the device and every flow. It is safe to call twice.
func (e *Exit) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.dev.Close()     // closes the bind and the stack TUN
	e.bind.Shutdown() // and the peers' connections
	e.wg.Wait()
	e.log.Info("userspace exit closed", "endpoint", e.endpoint)
	return nil
}

// peerFor returns the peer owning a tunnel source address and takes a flow
// slot for it: the caller must call e.flowDone(p) when the flow ends. It
// fails for unknown sources, a closed exit, or a peer at its flow cap.
func (e *Exit) peerFor(src netip.Addr) (*peer, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, false
	}
	p, ok := e.bySrc[src]
	if !ok {
		return nil, false
	}
	if p.flows >= e.cfg.MaxFlowsPerPeer {
		e.log.Debug("flow refused: peer at its flow cap", "peer", p.cfg.PublicKey.String(), "cap", e.cfg.MaxFlowsPerPeer)
		return nil, false
	}
	p.flows++
	e.wg.Add(1)
	return p, true
}

// flowDone releases the flow slot peerFor took.
func (e *Exit) flowDone(p *peer) {
	e.mu.Lock()
	p.flows--
	e.mu.Unlock()
	e.wg.Done()
}
