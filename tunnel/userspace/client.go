package userspace

import (
	"context"
	"errors"
	"fmt"
	"github.com/openmyst/openmyst/tunnel/connbind"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/proxy"
)

// ClientConfig configures a userspace consumer tunnel.
type ClientConfig struct {
	// Session is the tunnel to bring up (as exported to wg-quick).
	Session tunnel.SessionConfig
	// SOCKSListen is the loopback address of the SOCKS5 proxy, e.g.
	// "127.0.0.1:1080" or "127.0.0.1:0"; empty disables it.
	SOCKSListen string
	// HTTPListen is the loopback address of the HTTP proxy; empty disables it.
	HTTPListen string
	// HandshakeTimeout bounds the wait for the first handshake (default
	// tunnel.DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// Log receives operational messages; nil means slog.Default().
	Log *slog.Logger
	// Conn, if set, carries the tunnel's datagrams instead of UDP to
	// Session.Endpoint: an ICE connection through NATs or a relay
	// (nat/ice). It must keep datagram boundaries. The client owns it and
	// closes it on Close (or when Connect fails).
	Conn net.Conn
}

// Client is a connected userspace consumer tunnel with its local proxies.
// It implements tunnel.Client.
type Client struct {
	log      *slog.Logger
	dev      *device.Device
	bind     *connbind.Bind
	tun      *stackTUN
	peer     tunnel.PublicKey
	counter  tunnel.DeviceCounter
	resolver *net.Resolver
	dns      []netip.Addr

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	socksAddr net.Addr
	httpAddr  net.Addr
	closeOnce sync.Once
}

var _ tunnel.Client = (*Client)(nil)

// Connect brings the tunnel up, waits for the handshake (failing with
// tunnel.ErrHandshakeTimeout) and starts the proxies.
func Connect(ctx context.Context, cfg ClientConfig) (*Client, error) {
	sc := cfg.Session
	if sc.MTU == 0 {
		sc.MTU = tunnel.DefaultMTU
	}
	if sc.PersistentKeepalive == 0 {
		sc.PersistentKeepalive = tunnel.DefaultKeepalive
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("userspace client: %w", err)
	}
	for _, l := range []string{cfg.SOCKSListen, cfg.HTTPListen} {
		if l == "" {
			continue
		}
		if err := checkLoopback(l); err != nil {
			return nil, err
		}
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = tunnel.DefaultHandshakeTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "tunnel/userspace/client")
	var addrs []netip.Addr
	for _, p := range sc.Addresses {
		addrs = append(addrs, p.Addr())
	}
	st, err := newStackTUN(stackOptions{addrs: addrs, mtu: sc.MTU})
	if err != nil {
		if cfg.Conn != nil {
			cfg.Conn.Close()
		}
		return nil, err
	}
	c := &Client{log: log, tun: st, peer: sc.PeerPublicKey, dns: sc.DNS}
	c.resolver = &net.Resolver{PreferGo: true, Dial: c.dialDNS}
	c.bind = connbind.New(conn.NewDefaultBind())
	c.dev = device.NewDevice(st, c.bind, wgLogger(log))
	c.counter = tunnel.DeviceCounter{Dev: c.dev}
	fail := func(err error) (*Client, error) {
		c.dev.Close()
		c.bind.Shutdown()
		return nil, err
	}
	if cfg.Conn != nil {
		if _, err := c.bind.Add(sc.PeerPublicKey.Hex(), cfg.Conn); err != nil {
			cfg.Conn.Close()
			return fail(fmt.Errorf("userspace client: %w", err))
		}
	}
	uapi := tunnel.DeviceUAPI(sc.PrivateKey, 0) + tunnel.PeerUAPI(tunnel.PeerConfig{
		PublicKey:           sc.PeerPublicKey,
		AllowedIPs:          sc.AllowedIPs,
		Endpoint:            sc.Endpoint,
		PersistentKeepalive: sc.PersistentKeepalive,
		Conn:                cfg.Conn,
	})
	if err := c.dev.IpcSet(uapi); err != nil {
		return fail(fmt.Errorf("userspace client: configure device: %w", err))
	}
	if err := c.dev.Up(); err != nil {
		return fail(fmt.Errorf("userspace client: device up: %w", err))
	}
	if err := tunnel.WaitHandshake(ctx, c.counter, sc.PeerPublicKey, cfg.HandshakeTimeout); err != nil {
		return fail(fmt.Errorf("userspace client to %s: %w", sc.Endpoint, err))
	}
	sctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if c.socksAddr, err = c.listenProxy(sctx, cfg.SOCKSListen, "socks5", "socks5", proxy.NewSOCKS5(c, log).Serve); err != nil {
		c.Close()
		return nil, err
	}
	if c.httpAddr, err = c.listenProxy(sctx, cfg.HTTPListen, "http", "http proxy", proxy.NewHTTP(c, log).Serve); err != nil {
		c.Close()
		return nil, err
	}
	log.Info("userspace tunnel connected", "endpoint", sc.Endpoint, "socks5", c.socksAddr, "http", c.httpAddr)
	return c, nil
}

func checkLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("userspace client: proxy address %q: %w", hostport, err)
	}
	if host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		return fmt.Errorf("userspace client: proxy address %q must be loopback", hostport)
	}
	return nil
}

// listenProxy listens on addr (none when empty: a nil address) and serves
// a proxy there until ctx ends; name names it in logs, what in errors.
func (c *Client) listenProxy(ctx context.Context, addr, name, what string, serve func(context.Context, net.Listener) error) (net.Addr, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("userspace client: %s listen: %w", what, err)
	}
	c.serve(ctx, name, func() error { return serve(ctx, ln) })
	return ln.Addr(), nil
}

func (c *Client) serve(ctx context.Context, name string, run func() error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := run(); err != nil && ctx.Err() == nil {
			c.log.Error("proxy stopped", "proxy", name, "err", err)
		}
	}()
}

// SOCKSAddr is the SOCKS5 proxy's listening address (nil if disabled).
func (c *Client) SOCKSAddr() net.Addr { return c.socksAddr }

// HTTPAddr is the HTTP proxy's listening address (nil if disabled).
func (c *Client) HTTPAddr() net.Addr { return c.httpAddr }

// Stats returns the provider peer's counters.
func (c *Client) Stats() tunnel.PeerStats {
	st, _ := c.counter.PeerStats(c.peer)
	return st
}

// Close stops the proxies and the tunnel. It is safe to call twice.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		if c.cancel != nil {
			c.cancel()
		}
		c.wg.Wait()
		c.dev.Close()
		c.bind.Shutdown()
	})
	return nil
}

func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := ipv4.ProtocolNumber
	if ap.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port()}, proto
}

// dialAddr opens a TCP or UDP connection to an address through the tunnel.
func (c *Client) dialAddr(ctx context.Context, network string, ap netip.AddrPort) (net.Conn, error) {
	fa, proto := fullAddr(ap)
	switch network {
	case "tcp", "tcp4", "tcp6":
		return gonet.DialContextTCP(ctx, c.tun.stack, fa, proto)
	case "udp", "udp4", "udp6":
		return gonet.DialUDP(c.tun.stack, nil, &fa, proto)
	}
	return nil, fmt.Errorf("dial %s: unsupported network", network)
}

// dialDNS is the resolver's dialer: it ignores the host's resolver address
// and talks to the tunnel's DNS servers.
func (c *Client) dialDNS(ctx context.Context, network, _ string) (net.Conn, error) {
	if len(c.dns) == 0 {
		return nil, errors.New("no DNS server configured for the tunnel")
	}
	return c.dialAddr(ctx, network, netip.AddrPortFrom(c.dns[0], 53))
}

// DialContext opens a connection through the tunnel; names are resolved by
// the tunnel's DNS server. It implements proxy.Network.
func (c *Client) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port", address)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip.Unmap()}
	} else {
		ips, err = c.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", address, err)
		}
	}
	var firstErr error
	for _, ip := range ips {
		conn, err := c.dialAddr(ctx, network, netip.AddrPortFrom(ip.Unmap(), uint16(pn)))
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("no addresses")
	}
	return nil, fmt.Errorf("dial %s through tunnel: %w", address, firstErr)
}

// ListenPacket opens an unconnected UDP socket in the tunnel. It
// implements proxy.Network.
func (c *Client) ListenPacket(_ context.Context, network string) (net.PacketConn, error) {
	proto := ipv4.ProtocolNumber
	if network == "udp6" {
		proto = ipv6.ProtocolNumber
	}
	return gonet.DialUDP(c.tun.stack, nil, nil, proto)
}

// LookupNetIP resolves host with the tunnel's DNS server. It implements
// proxy.Network.
//
// Names are looked up as fully qualified (a trailing dot is added), so the
// host's resolv.conf search domains, which may name private networks, are
// never sent to the provider.
func (c *Client) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	if !strings.HasSuffix(host, ".") {
		host += "."
	}
	return c.resolver.LookupNetIP(ctx, network, host)
}
