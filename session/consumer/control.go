package consumer

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/tunnel"
)

// TunnelOpener brings the client side of a session's tunnel up, its
// datagrams traveling as r says. Options.Tunnel picks one; nil means
// Config.Proxy's tunnel with local proxies. The concrete tunnels
// (tunnel/userspace, tunnel/kernel) are injected by package node.
type TunnelOpener func(ctx context.Context, s tunnel.SessionConfig, r TunnelRoute) (tunnel.Client, error)

// TunnelRoute is what a TunnelOpener needs besides the session: how the
// tunnel's datagrams travel and what must keep working outside it.
type TunnelRoute struct {
	// Control are the addresses of the session's control connection to
	// the provider, which must keep working outside the tunnel.
	Control []netip.AddrPort
	// Conn, when set, carries the tunnel's datagrams instead of UDP to
	// the session's endpoint: the session's ICE connection (nat/ice). The
	// opener owns it from the call on, and closes it on failure.
	Conn net.Conn
	// Path are the UDP destinations Conn sends to from this host (the
	// selected pair's remote address; none when this side's TURN server
	// relays it): what a kill switch admits for the datagrams, instead of
	// the endpoint.
	Path []netip.AddrPort
	// Relayed: this side's TURN allocation carries Conn's datagrams (they
	// go to its TURN server, nothing to Path).
	Relayed bool
}

// ProxyTunnel is a client tunnel that also serves the local SOCKS5/HTTP
// proxies and dials through the tunnel (tunnel/userspace's Client).
type ProxyTunnel interface {
	tunnel.Client
	// SOCKSAddr is the local SOCKS5 proxy address (nil if disabled).
	SOCKSAddr() net.Addr
	// HTTPAddr is the local HTTP proxy address (nil if disabled).
	HTTPAddr() net.Addr
	// DialContext opens a connection through the tunnel.
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// ProxyOptions are what a ProxyOpener needs besides the session.
type ProxyOptions struct {
	// SOCKSListen and HTTPListen are Options' proxy addresses.
	SOCKSListen, HTTPListen string
	// HandshakeTimeout is Config.HandshakeTimeout.
	HandshakeTimeout time.Duration
	// Log is the manager's logger.
	Log *slog.Logger
	// Conn, when set, carries the tunnel's datagrams instead of UDP to
	// the session's endpoint: the session's ICE connection (nat/ice). The
	// opener owns it from the call on, and closes it on failure.
	Conn net.Conn
}

// ProxyOpener brings the client side of a session's tunnel up with local
// proxies (Config.Proxy; node injects tunnel/userspace).
type ProxyOpener func(ctx context.Context, s tunnel.SessionConfig, o ProxyOptions) (ProxyTunnel, error)

// JoinAddrs returns the addresses of all lists, without duplicates.
func JoinAddrs(lists ...[]netip.AddrPort) []netip.AddrPort {
	seen := map[netip.AddrPort]bool{}
	var out []netip.AddrPort
	for _, l := range lists {
		for _, a := range l {
			a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
			if a.IsValid() && a.Port() != 0 && !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// ProposalControlAddrs returns the TCP and UDP addresses (IP and port) a
// proposal advertises for its libp2p host; relayed and DNS addresses are
// skipped.
func ProposalControlAddrs(p market.Proposal) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range p.Addrs {
		if ap, ok := multiaddrAddrPort(s); ok {
			out = append(out, ap)
		}
	}
	return JoinAddrs(out)
}

// multiaddrAddrPort extracts IP and TCP/UDP port from a multiaddr string
// such as /ip4/1.2.3.4/tcp/4001/p2p/Qm...; relayed addresses fail.
func multiaddrAddrPort(s string) (netip.AddrPort, bool) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return netip.AddrPort{}, false
	}
	if _, err := m.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return netip.AddrPort{}, false
	}
	host, err := m.ValueForProtocol(ma.P_IP4)
	if err != nil {
		if host, err = m.ValueForProtocol(ma.P_IP6); err != nil {
			return netip.AddrPort{}, false
		}
	}
	port, err := m.ValueForProtocol(ma.P_TCP)
	if err != nil {
		if port, err = m.ValueForProtocol(ma.P_UDP); err != nil {
			return netip.AddrPort{}, false
		}
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// MultiaddrControlAddrs returns the TCP/UDP addresses of multiaddr
// strings (e.g. bootstrap peers) for KernelConfig.Control.
func MultiaddrControlAddrs(addrs []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range addrs {
		if ap, ok := multiaddrAddrPort(s); ok {
			out = append(out, ap)
		}
	}
	return JoinAddrs(out)
}

// controlAddrs returns the remote IP address and port of a libp2p
// stream's connection, for a relayed (circuit) connection the relay's
// (nil for anything else, e.g. a test pipe).
func controlAddrs(s any) []netip.AddrPort {
	ns, ok := s.(interface{ Conn() network.Conn })
	if !ok || ns.Conn() == nil {
		return nil
	}
	if ap, ok := dialAddrPort(ns.Conn().RemoteMultiaddr()); ok {
		return []netip.AddrPort{ap}
	}
	return nil
}

// dialAddrPort is the TCP/UDP address this host sends to for a libp2p
// multiaddr: its own IP and port, or for a circuit address
// (/ip4/R/tcp/P/p2p/RELAY/p2p-circuit...) the relay's R:P.
func dialAddrPort(m ma.Multiaddr) (netip.AddrPort, bool) {
	if m == nil {
		return netip.AddrPort{}, false
	}
	if relay, _ := ma.SplitFunc(m, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT }); relay != nil {
		m = relay
	}
	na, err := manet.ToNetAddr(m)
	if err != nil {
		// A multiaddr with a trailing /p2p/ID is not a net address.
		if head, _ := ma.SplitFunc(m, func(c ma.Component) bool { return c.Protocol().Code == ma.P_P2P }); head != nil {
			na, err = manet.ToNetAddr(head)
		}
		if err != nil {
			return netip.AddrPort{}, false
		}
	}
	var ap netip.AddrPort
	switch a := na.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return netip.AddrPort{}, false
	}
	if !ap.IsValid() || ap.Port() == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// MaxResumeAddrs bounds ResumeAddrs: the provider's peer names its own
// addresses, and each one is a destination a kill switch admits while a
// session resumes.
const MaxResumeAddrs = 16

// ResumeAddrs returns the TCP/UDP destinations a resume may dial for the
// provider's peer at addrs (the addresses it advertises and those
// libp2p learned, in that order): their own, or a relay's for a circuit
// address; never loopback (a kill switch admits it anyway), unspecified,
// multicast or link-local ones; at most MaxResumeAddrs, without
// duplicates.
func ResumeAddrs(addrs []ma.Multiaddr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, m := range addrs {
		ap, ok := dialAddrPort(m)
		if a := ap.Addr(); ok && !a.IsLoopback() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLinkLocalUnicast() {
			out = append(out, ap)
		}
	}
	out = JoinAddrs(out)
	return out[:min(len(out), MaxResumeAddrs)]
}
