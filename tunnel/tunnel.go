package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Mode selects how a tunnel meets the host.
type Mode string

// Exit and client modes.
const (
	// ModeKernel uses a TUN interface, routes and firewall rules (root).
	ModeKernel Mode = "kernel"
	// ModeUserspace uses gVisor netstack and host sockets (no privileges).
	ModeUserspace Mode = "userspace"
)

// ParseMode parses "kernel" or "userspace".
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeKernel, ModeUserspace:
		return Mode(s), nil
	}
	return "", fmt.Errorf("tunnel mode %q: want %q or %q", s, ModeKernel, ModeUserspace)
}

// DefaultMTU is the tunnel MTU both sides use unless configured: 1420 fits
// WireGuard's 60-byte IPv6 overhead into a 1480-byte path.
const DefaultMTU = 1420

// DefaultKeepalive is the persistent keepalive a consumer sets so home NATs
// keep the mapping open and the handshake starts immediately.
const DefaultKeepalive = 25 * time.Second

// DefaultHandshakeTimeout bounds how long a consumer waits for the first
// handshake before giving up with ErrHandshakeTimeout. WireGuard resends a
// handshake initiation that got no response after REKEY_TIMEOUT (5 s plus
// up to 334 ms of jitter), so the wait covers three initiations: two lost
// packets (or a provider that added the peer just after the first one
// arrived, or answered with a cookie under load) still connect.
const DefaultHandshakeTimeout = 15 * time.Second

// ErrHandshakeTimeout is returned (wrapped) when no WireGuard handshake
// completed in time: the provider is unreachable, does not know our key, or
// a firewall drops UDP.
var ErrHandshakeTimeout = errors.New("wireguard handshake timed out")

// ErrUnknownPeer is returned (wrapped) for operations on a peer the device
// does not have.
var ErrUnknownPeer = errors.New("unknown wireguard peer")

// ErrClosed is returned (wrapped) by operations on a closed exit or client.
var ErrClosed = errors.New("tunnel closed")

// PeerConfig is one consumer as the provider's device sees it.
type PeerConfig struct {
	// PublicKey is the consumer's WireGuard key for this session.
	PublicKey PublicKey
	// AllowedIPs are the consumer's tunnel addresses (Lease.Prefixes()).
	AllowedIPs []netip.Prefix
	// Endpoint is optional; a provider learns it from the first handshake.
	Endpoint netip.AddrPort
	// PersistentKeepalive is 0 (off) on the provider normally.
	PersistentKeepalive time.Duration
	// BandwidthLimit caps this peer's exit traffic in bytes per second in
	// each direction; 0 means unlimited.
	BandwidthLimit uint64
	// Conn, if set, carries this peer's datagrams instead of the device's
	// UDP socket: an ICE connection through NATs or a relay (nat/ice). It
	// must keep datagram boundaries. The device owns it from AddPeer on
	// and closes it when the peer is removed; Endpoint is then ignored.
	Conn net.Conn
}

// Validate checks the fields a device needs.
func (p PeerConfig) Validate() error {
	if p.PublicKey.IsZero() {
		return fmt.Errorf("peer config: missing public key")
	}
	if len(p.AllowedIPs) == 0 {
		return fmt.Errorf("peer config %s: no allowed IPs", p.PublicKey)
	}
	for _, pfx := range p.AllowedIPs {
		if !pfx.IsValid() {
			return fmt.Errorf("peer config %s: invalid allowed IP", p.PublicKey)
		}
	}
	if p.PersistentKeepalive < 0 || p.PersistentKeepalive > 65535*time.Second {
		return fmt.Errorf("peer config %s: keepalive %v out of range", p.PublicKey, p.PersistentKeepalive)
	}
	return nil
}

// PeerStats are the counters of one WireGuard peer (see the package doc for
// exactly what is counted).
type PeerStats struct {
	RxBytes       uint64    // bytes received from the peer
	TxBytes       uint64    // bytes sent to the peer
	LastHandshake time.Time // zero if no handshake completed yet
}

// RejectAfter is WireGuard's Reject-After-Time: a session key older than
// this is never used, so a peer whose last handshake is older has no
// working tunnel (with traffic or keepalives, handshakes repeat every two
// minutes).
const RejectAfter = 180 * time.Second

// Alive reports whether the peer completed a handshake recently enough
// for its tunnel to carry traffic at now.
func (s PeerStats) Alive(now time.Time) bool {
	return !s.LastHandshake.IsZero() && now.Sub(s.LastHandshake) < RejectAfter
}

// Counter reads per-peer statistics; the session layer bills from it.
type Counter interface {
	// PeerStats returns the counters of pub, and false if there is no such peer.
	PeerStats(pub PublicKey) (PeerStats, bool)
}

// Exit is a provider's running WireGuard service in either mode: one
// device, consumers added and removed per session.
type Exit interface {
	Counter
	// AddPeer admits a consumer. The peer is usable when AddPeer returns.
	AddPeer(ctx context.Context, cfg PeerConfig) error
	// RemovePeer drops a consumer and its flows. Unknown keys give ErrUnknownPeer.
	RemovePeer(pub PublicKey) error
	// Endpoint is the UDP address consumers send to.
	Endpoint() netip.AddrPort
	// PublicKey is the device's key, handed to consumers.
	PublicKey() PublicKey
	// Gateway is the provider's tunnel addresses; DNS is served there.
	Gateway() Lease
	// Blocked returns how many flows the exit policy refused.
	Blocked() uint64
	// Close stops the device and every flow and removes what it installed.
	Close() error
}

// ConnAttacher is an Exit that can move an admitted peer onto a
// connection of its own after AddPeer: the provider admits a consumer
// before ICE has selected a path (the consumer needs the provider's answer
// to start its checks), then attaches the ICE connection. Both exit modes
// implement it.
type ConnAttacher interface {
	// AttachConn carries pub's datagrams over c from now on, instead of
	// the device's UDP socket (or a connection attached before, which it
	// closes). The exit owns c from the call on, closes it when the peer
	// is removed, and on error. c must keep datagram boundaries.
	AttachConn(pub PublicKey, c net.Conn) error
}

// Client is a consumer's connected tunnel in either mode.
type Client interface {
	// Stats returns the counters of the single provider peer.
	Stats() PeerStats
	// Close tears the tunnel down and restores what it changed on the host.
	Close() error
}

// WaitHandshake polls c until pub has completed a handshake, ctx ends, or
// timeout passes (then ErrHandshakeTimeout).
func WaitHandshake(ctx context.Context, c Counter, pub PublicKey, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, ok := c.PeerStats(pub); ok && !st.LastHandshake.IsZero() {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w: no handshake with %s within %v", ErrHandshakeTimeout, pub, timeout)
			}
			return fmt.Errorf("wait for handshake with %s: %w", pub, ctx.Err())
		case <-tick.C:
		}
	}
}
