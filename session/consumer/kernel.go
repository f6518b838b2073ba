package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

// ClientTunnel is what a connection needs of its client tunnel: the
// provider peer's byte counters (for invoices) and a way to tear it down.
// *userspace.Client and *kernel.Client implement it.
type ClientTunnel interface {
	Stats() tunnel.PeerStats
	Close() error
}

// TunnelOpener brings the client side of a session's tunnel up. control
// are the addresses of the session's control connection to the provider,
// which must keep working outside the tunnel. Options.Tunnel picks one;
// nil means the userspace tunnel with local proxies.
type TunnelOpener func(ctx context.Context, s tunnel.SessionConfig, control []netip.AddrPort) (ClientTunnel, error)

// ErrNotRoot is returned by a kernel tunnel opener when the process lacks
// the privileges a TUN interface, routes and the kill switch need.
var ErrNotRoot = errors.New("consumer: a kernel tunnel (--tun) needs root (CAP_NET_ADMIN); use the SOCKS5 proxy mode instead")

// KernelConfig configures KernelTunnel; zero values take the tunnel/kernel
// defaults.
type KernelConfig struct {
	// Interface is the TUN name (kernel.DefaultClientInterface if empty).
	Interface string
	// FwMark marks WireGuard's own packets (kernel.DefaultFwMark if 0).
	FwMark uint32
	// NoKillSwitch turns the kill switch off (not recommended).
	NoKillSwitch bool
	// KillSwitchTable is the nftables table of the kill switch.
	KillSwitchTable string
	// ResolvConf is rewritten to the tunnel's DNS while connected and
	// restored on disconnect (usually /etc/resolv.conf; empty leaves DNS
	// alone).
	ResolvConf string
	// Control are control-plane destinations (TCP/UDP address and port)
	// always reached outside the tunnel, on top of each session's own
	// control connection: the consumer's libp2p bootstrap peers and,
	// optionally, its chain RPC. They carry discovery and dialling of a
	// new provider while the tunnel is down and the kill switch up; never
	// user traffic. See docs/session.md, "Kernel mode".
	Control []netip.AddrPort
	// HandshakeTimeout bounds the first WireGuard handshake.
	HandshakeTimeout time.Duration
	// Log receives the tunnel's events (slog.Default() if nil).
	Log *slog.Logger
}

// KernelTunnel returns a TunnelOpener that routes the whole host through a
// kernel-mode WireGuard tunnel (tunnel/kernel) with its kill switch, and
// DNS through the tunnel when cfg.ResolvConf is set. The session's control
// connection stays outside the tunnel (kernel.ClientConfig.Direct). It
// fails with ErrNotRoot when the process is not root.
func KernelTunnel(cfg KernelConfig) TunnelOpener {
	return func(ctx context.Context, s tunnel.SessionConfig, control []netip.AddrPort) (ClientTunnel, error) {
		if os.Geteuid() != 0 {
			return nil, ErrNotRoot
		}
		c, err := kernel.Connect(ctx, cfg.clientConfig(s, control))
		if err != nil {
			return nil, fmt.Errorf("consumer: kernel tunnel: %w", err)
		}
		return c, nil
	}
}

func (cfg KernelConfig) clientConfig(s tunnel.SessionConfig, control []netip.AddrPort) kernel.ClientConfig {
	return kernel.ClientConfig{
		Session: s, Interface: cfg.Interface, FwMark: cfg.FwMark, NoKillSwitch: cfg.NoKillSwitch,
		KillSwitchTable: cfg.KillSwitchTable, ResolvConf: cfg.ResolvConf, Direct: joinAddrs(cfg.Control, control),
		HandshakeTimeout: cfg.HandshakeTimeout, Log: cfg.Log,
	}
}

// joinAddrs returns the addresses of all lists, without duplicates.
func joinAddrs(lists ...[]netip.AddrPort) []netip.AddrPort {
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

// ReconnectingKernel is one kernel-mode tunnel carried across sessions:
// the first session brings it up (kernel.Connect), each later one moves
// it in place (kernel.Client.Reconfigure), so the kill switch stays up
// from the first connect until Close, through every failed session and
// reconnect in between. It belongs to its creator, not to a session: a
// session's Close (consumer.Connection.Disconnect) leaves it up, and
// Close takes it down.
type ReconnectingKernel struct {
	cfg KernelConfig

	mu     sync.Mutex
	c      *kernel.Client
	closed bool
}

// NewReconnectingKernel returns a ReconnectingKernel for cfg; nothing is
// set up before the first session.
func NewReconnectingKernel(cfg KernelConfig) *ReconnectingKernel {
	cfg.Control = joinAddrs(cfg.Control)
	return &ReconnectingKernel{cfg: cfg}
}

// Opener returns the TunnelOpener of every session on this tunnel
// (Options.Tunnel). It fails with ErrNotRoot when the process is not
// root.
func (k *ReconnectingKernel) Opener() TunnelOpener {
	return func(ctx context.Context, s tunnel.SessionConfig, control []netip.AddrPort) (ClientTunnel, error) {
		if os.Geteuid() != 0 {
			return nil, ErrNotRoot
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.closed {
			return nil, fmt.Errorf("consumer: kernel tunnel: %w", tunnel.ErrClosed)
		}
		if k.c == nil {
			c, err := kernel.Connect(ctx, k.cfg.clientConfig(s, control))
			if err != nil {
				return nil, fmt.Errorf("consumer: kernel tunnel: %w", err)
			}
			k.c = c
		} else if err := k.c.Reconfigure(ctx, s, joinAddrs(k.cfg.Control, control)); err != nil {
			return nil, fmt.Errorf("consumer: kernel tunnel: %w", err)
		}
		return kernelSession{c: k.c, peer: s.PeerPublicKey}, nil
	}
}

// Prepare lets the control connection to provider p out while the tunnel
// is up (a reconnect): the kill switch then admits exactly the Control
// destinations and p's advertised TCP/UDP addresses. Before the first
// session there is no kill switch and it does nothing.
func (k *ReconnectingKernel) Prepare(ctx context.Context, p market.Proposal) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return fmt.Errorf("consumer: kernel tunnel: %w", tunnel.ErrClosed)
	}
	if k.c == nil {
		return nil
	}
	if err := k.c.SetDirect(ctx, joinAddrs(k.cfg.Control, ProposalControlAddrs(p))); err != nil {
		return fmt.Errorf("consumer: open the control path to %s: %w", p.ProviderID.Hex(), err)
	}
	return nil
}

// Connected reports whether the tunnel (and its kill switch) is up.
func (k *ReconnectingKernel) Connected() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c != nil
}

// Close takes the tunnel down: routes, DNS and, last, the kill switch.
// Closing twice returns nil.
func (k *ReconnectingKernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	if k.c == nil {
		return nil
	}
	err := k.c.Close()
	k.c = nil
	return err
}

// kernelSession is one session's view of a ReconnectingKernel: the
// counters of its provider peer. Its Close leaves the tunnel up.
type kernelSession struct {
	c    *kernel.Client
	peer tunnel.PublicKey
}

func (s kernelSession) Stats() tunnel.PeerStats {
	st, _ := s.c.PeerStats(s.peer)
	return st
}

func (kernelSession) Close() error { return nil }

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
	return joinAddrs(out)
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
	return joinAddrs(out)
}

// controlAddrs returns the remote IP address and port of a libp2p
// stream's connection (nil for anything else, e.g. a test pipe or a
// relayed connection).
func controlAddrs(s any) []netip.AddrPort {
	ns, ok := s.(interface{ Conn() network.Conn })
	if !ok || ns.Conn() == nil {
		return nil
	}
	na, err := manet.ToNetAddr(ns.Conn().RemoteMultiaddr())
	if err != nil {
		return nil
	}
	var ap netip.AddrPort
	switch a := na.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return nil
	}
	if !ap.IsValid() {
		return nil
	}
	return []netip.AddrPort{netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
}
