package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/kernel"
	"github.com/openmyst/openmyst/tunnel/userspace"
)

// UserspaceProxy is the consumer's default tunnel (consumer.Config.Proxy):
// tunnel/userspace with local SOCKS5/HTTP proxies, no privileges needed.
func UserspaceProxy(ctx context.Context, s tunnel.SessionConfig, o consumer.ProxyOptions) (consumer.ProxyTunnel, error) {
	return userspace.Connect(ctx, userspace.ClientConfig{
		Session: s, SOCKSListen: o.SOCKSListen, HTTPListen: o.HTTPListen, HandshakeTimeout: o.HandshakeTimeout, Log: o.Log,
		Conn: o.Conn,
	})
}

// ErrNotRoot is returned by a kernel tunnel opener when the process lacks
// the privileges a TUN interface, routes and the kill switch need.
var ErrNotRoot = errors.New("node: a kernel tunnel (--tun) needs root (CAP_NET_ADMIN); use the SOCKS5 proxy mode instead")

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
	// PortMapGateway, when valid, is the home router the daemon's port
	// mapping asks: the kill switch admits the port-mapping client's
	// sockets (marked kernel.PortMapMark) to it
	// (kernel.ClientConfig.PortMapGateway).
	PortMapGateway netip.Addr
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
func KernelTunnel(cfg KernelConfig) consumer.TunnelOpener {
	return func(ctx context.Context, s tunnel.SessionConfig, r consumer.TunnelRoute) (tunnel.Client, error) {
		if kernel.CheckNetAdmin() != nil {
			closeConn(r)
			return nil, ErrNotRoot
		}
		c, err := kernel.Connect(ctx, cfg.clientConfig(s, r))
		if err != nil {
			return nil, fmt.Errorf("node: kernel tunnel: %w", err)
		}
		return c, nil
	}
}

func (cfg KernelConfig) clientConfig(s tunnel.SessionConfig, r consumer.TunnelRoute) kernel.ClientConfig {
	return kernel.ClientConfig{
		Session: s, Interface: cfg.Interface, FwMark: cfg.FwMark, NoKillSwitch: cfg.NoKillSwitch,
		KillSwitchTable: cfg.KillSwitchTable, ResolvConf: cfg.ResolvConf, Direct: consumer.JoinAddrs(cfg.Control, r.Control),
		Conn: r.Conn, Path: r.Path, PortMapGateway: cfg.PortMapGateway, HandshakeTimeout: cfg.HandshakeTimeout, Log: cfg.Log,
	}
}

// closeConn closes a route's ICE connection the opener could not use.
func closeConn(r consumer.TunnelRoute) {
	if r.Conn != nil {
		_ = r.Conn.Close()
	}
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
	cfg.Control = consumer.JoinAddrs(cfg.Control)
	return &ReconnectingKernel{cfg: cfg}
}

// Opener returns the TunnelOpener of every session on this tunnel
// (consumer.Options.Tunnel). It fails with ErrNotRoot when the process is not
// root.
func (k *ReconnectingKernel) Opener() consumer.TunnelOpener {
	return func(ctx context.Context, s tunnel.SessionConfig, r consumer.TunnelRoute) (tunnel.Client, error) {
		if kernel.CheckNetAdmin() != nil {
			closeConn(r)
			return nil, ErrNotRoot
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.closed {
			closeConn(r)
			return nil, fmt.Errorf("node: kernel tunnel: %w", tunnel.ErrClosed)
		}
		if k.c == nil {
			c, err := kernel.Connect(ctx, k.cfg.clientConfig(s, r))
			if err != nil {
				return nil, fmt.Errorf("node: kernel tunnel: %w", err)
			}
			k.c = c
		} else if err := k.c.Reconfigure(ctx, s, kernel.Route{Direct: consumer.JoinAddrs(k.cfg.Control, r.Control), Conn: r.Conn, Path: r.Path}); err != nil {
			return nil, fmt.Errorf("node: kernel tunnel: %w", err)
		}
		return kernelSession{c: k.c, peer: s.PeerPublicKey}, nil
	}
}

// Prepare lets the control connection to provider p out while the tunnel
// is up (a reconnect): the kill switch then admits exactly the Control
// destinations and p's advertised TCP/UDP addresses. Before the first
// session there is no kill switch and it does nothing.
func (k *ReconnectingKernel) Prepare(ctx context.Context, p market.Proposal) error {
	if err := k.setDirect(ctx, consumer.ProposalControlAddrs(p)); err != nil {
		return fmt.Errorf("node: open the control path to %s: %w", p.ProviderID.Hex(), err)
	}
	return nil
}

// SetControl makes the kill switch admit (and routes outside the
// tunnel) exactly the Control destinations and addrs, in one
// transaction: the running session's control connection moved or is
// about to (a resume, consumer.Options.ControlPath). Before the first
// session it does nothing.
func (k *ReconnectingKernel) SetControl(ctx context.Context, addrs []netip.AddrPort) error {
	if err := k.setDirect(ctx, addrs); err != nil {
		return fmt.Errorf("node: the session's control path: %w", err)
	}
	return nil
}

// setDirect makes the tunnel's direct destinations the Control ones and
// extra (nothing before the first session).
func (k *ReconnectingKernel) setDirect(ctx context.Context, extra []netip.AddrPort) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return fmt.Errorf("kernel tunnel: %w", tunnel.ErrClosed)
	}
	if k.c == nil {
		return nil
	}
	return k.c.SetDirect(ctx, consumer.JoinAddrs(k.cfg.Control, extra))
}

// AdmitChecks lets ICE connectivity checks out to a provider's
// candidates, and UDP from and to the agent's sockets (marked
// kernel.SocketMark), while the
// tunnel is up (a reconnect; kernel.Client.AdmitChecks), until the
// session's tunnel replaces them. Before the first session it does
// nothing (false): the caller's held kill switch is in force.
func (k *ReconnectingKernel) AdmitChecks(ctx context.Context, c consumer.ICECheck) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return false, fmt.Errorf("node: kernel tunnel: %w", tunnel.ErrClosed)
	}
	if k.c == nil {
		return false, nil
	}
	if err := k.c.AdmitChecks(ctx, c.Candidates); err != nil {
		return true, fmt.Errorf("node: let ICE checks out: %w", err)
	}
	return true, nil
}

// ICEExclude are the interfaces a session on this tunnel gathers no ICE
// candidates on: its own TUN.
func (k *ReconnectingKernel) ICEExclude() []string {
	if k.cfg.Interface == "" {
		return []string{kernel.DefaultClientInterface}
	}
	return []string{k.cfg.Interface}
}

// Connected reports whether the tunnel (and its kill switch) is up.
func (k *ReconnectingKernel) Connected() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c != nil
}

// Exemptions returns what the kill switch admits outside the tunnel (see
// kernel.Client.Exemptions); ok is false before the first session.
func (k *ReconnectingKernel) Exemptions() (udp, direct []netip.AddrPort, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c == nil {
		return nil, nil, false
	}
	udp, direct = k.c.Exemptions()
	return udp, direct, true
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

// DialContext opens a connection inside the tunnel
// (kernel.Client.DialContext): the session asks the network's STUN
// server through it where the exit's traffic comes from
// (consumer.TunnelDialer).
func (s kernelSession) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return s.c.DialContext(ctx, network, address)
}
