package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	manet "github.com/multiformats/go-multiaddr/net"

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
		c, err := kernel.Connect(ctx, kernel.ClientConfig{
			Session: s, Interface: cfg.Interface, FwMark: cfg.FwMark, NoKillSwitch: cfg.NoKillSwitch,
			KillSwitchTable: cfg.KillSwitchTable, ResolvConf: cfg.ResolvConf, Direct: control,
			HandshakeTimeout: cfg.HandshakeTimeout, Log: cfg.Log,
		})
		if err != nil {
			return nil, fmt.Errorf("consumer: kernel tunnel: %w", err)
		}
		return c, nil
	}
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
