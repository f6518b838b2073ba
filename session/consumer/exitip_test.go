package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/relay"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/userspace"
)

// egressDialer opens an exit's UDP flows from a given loopback address:
// a multi-homed provider whose traffic leaves from another address than
// the one its tunnel is at.
type egressDialer struct{ from netip.Addr }

func (d egressDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if network != "udp" {
		return nil, fmt.Errorf("egressDialer: %s unsupported", network)
	}
	nd := net.Dialer{LocalAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(d.from, 0))}
	return nd.DialContext(ctx, network, address)
}

// TestExitSeenBySTUN: with a STUN server configured (the network's
// relay role, real pion/turn), a session asks it through the tunnel
// where its traffic comes from and records the answer: the exit's
// egress. An exit whose egress is the address its tunnel is at is
// confirmed; one whose egress differs from its claim is flagged; one
// that claims its egress (not its tunnel's address) is confirmed. The
// address seen is the exit's egress, not the address the consumer's own
// direct request shows, so the request went through the tunnel.
func TestExitSeenBySTUN(t *testing.T) {
	stunAddr := stunTestServer(t)
	// What the server sees of a request the consumer sends directly.
	direct, err := net.Dial("udp4", stunAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	own, err := ice.MappedAddress(context.Background(), direct)
	direct.Close()
	if err != nil {
		t.Fatal(err)
	}
	other := netip.MustParseAddr("127.0.0.2")
	if own.Addr() == other {
		t.Fatalf("the consumer's own address is %v; the test needs it to differ from %v", own, other)
	}
	allow, err := tunnel.ParseRule(fmt.Sprintf("udp:127.0.0.0/8 port %d", stunAddr.Port()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		egress    netip.Addr // invalid: the exit's default (its own address)
		mode      string
		wantSeen  netip.Addr
		wantCheck string
	}{
		{"egress is the tunnel's address", netip.Addr{}, "none", netip.MustParseAddr("127.0.0.1"), IPConfirmedSTUN},
		{"multi-homed exit claims its tunnel's address", other, "none", other, IPDiffersSTUN},
		{"multi-homed exit claims its egress", other, "claims 127.0.0.2", other, IPConfirmedSTUN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, exit := stunTestExit(t, allow, tc.egress)
			m := stunTestManager(t, stunAddr, userspaceProxy)
			st := openStatic(t, m, pool, exit, tc.mode, func(c *Connection) Status {
				deadline := time.Now().Add(15 * time.Second)
				for time.Now().Before(deadline) {
					if st := c.Status(); st.PublicIPSeen.IsValid() {
						return st
					}
					time.Sleep(20 * time.Millisecond)
				}
				return c.Status()
			})
			if st.PublicIPSeen != tc.wantSeen || st.PublicIPCheck != tc.wantCheck {
				t.Errorf("seen %v (%s), want %v (%s); claimed %v", st.PublicIPSeen, st.PublicIPCheck, tc.wantSeen, tc.wantCheck, st.PublicIP)
			}
			if tc.egress.IsValid() && st.PublicIPSeen == own.Addr() {
				t.Errorf("the STUN server saw %v, the consumer's own address: the request did not go through the tunnel", st.PublicIPSeen)
			}
		})
	}
}

// TestExitSeenBySTUNThroughTunnelOpener: a connection whose tunnel comes
// from Options.Tunnel (a kernel tunnel in node) is probed the same way
// when that tunnel can open connections inside itself (TunnelDialer):
// here a userspace tunnel standing in for the kernel one.
func TestExitSeenBySTUNThroughTunnelOpener(t *testing.T) {
	stunAddr := stunTestServer(t)
	allow, err := tunnel.ParseRule(fmt.Sprintf("udp:127.0.0.0/8 port %d", stunAddr.Port()))
	if err != nil {
		t.Fatal(err)
	}
	egress := netip.MustParseAddr("127.0.0.2")
	pool, exit := stunTestExit(t, allow, egress)
	m := stunTestManager(t, stunAddr, nil)
	opener := func(ctx context.Context, s tunnel.SessionConfig, r TunnelRoute) (tunnel.Client, error) {
		pt, err := userspaceProxy(ctx, s, ProxyOptions{HandshakeTimeout: 5 * time.Second, Conn: r.Conn})
		if err != nil {
			return nil, err
		}
		if _, ok := pt.(TunnelDialer); !ok {
			_ = pt.Close()
			return nil, errors.New("the userspace tunnel cannot dial inside itself")
		}
		return pt, nil
	}
	var st Status
	openSessionWith(t, m, pool, exit, "none", sessionproto.ProtocolID, opener, func(c *Connection, _ *sessionproto.SessionRequest) {
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if st = c.Status(); st.PublicIPSeen.IsValid() {
				return
			}
		}
	})
	if st.PublicIPSeen != egress || st.PublicIPCheck != IPDiffersSTUN {
		t.Errorf("seen %v (%s), want the exit's egress %v (%s)", st.PublicIPSeen, st.PublicIPCheck, egress, IPDiffersSTUN)
	}
}

// TestExitWithoutSTUN: without a STUN server the provider's claim keeps
// the tunnel-peer check and nothing is seen.
func TestExitWithoutSTUN(t *testing.T) {
	k, pool, exit := iceTestExit(t)
	cfg := testICE()
	m := testManager(t, k, Config{ICE: &cfg, Proxy: userspaceProxy})
	st := openStatic(t, m, pool, exit, "none", func(c *Connection) Status { return c.Status() })
	if st.PublicIPSeen.IsValid() || st.PublicIPCheck != IPMatchesPeer {
		t.Errorf("seen %v (%s), want nothing (%s)", st.PublicIPSeen, st.PublicIPCheck, IPMatchesPeer)
	}
}

// TestProbeExitFailureKeepsCheck: STUN servers that cannot be reached
// through the tunnel leave the earlier check; the first answer wins.
func TestProbeExitFailureKeepsCheck(t *testing.T) {
	claim := netip.MustParseAddr("192.0.2.1")
	c := &Connection{m: &Manager{log: slog.New(slog.DiscardHandler)}, exitIP: claim, ipCheck: IPMatchesPeer}
	var tried []string
	refuse := func(_ context.Context, _, address string) (net.Conn, error) {
		tried = append(tried, address)
		return nil, errors.New("blocked by the exit")
	}
	c.probeExit(context.Background(), refuse, []string{"a:1", "b:2"})
	if c.ipCheck != IPMatchesPeer || c.seenIP.IsValid() || len(tried) != 2 {
		t.Errorf("after failures: check %s, seen %v, tried %v", c.ipCheck, c.seenIP, tried)
	}
}

// stunTestServer starts the relay role's STUN server on loopback for the
// test and returns its UDP address.
func stunTestServer(t *testing.T) netip.AddrPort {
	t.Helper()
	srv, err := relay.Start(relay.Config{
		UDP: "127.0.0.1:0", PublicIP: netip.MustParseAddr("127.0.0.1"), RelayBind: netip.MustParseAddr("127.0.0.1"),
		Secret: []byte("0123456789abcdef0123456789abcdef"), AllowPrivatePeers: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv.Addrs().UDP
}

// stunTestManager is a consumer whose network's STUN server is stunAddr,
// with proxy as its Config.Proxy.
func stunTestManager(t *testing.T, stunAddr netip.AddrPort, proxy ProxyOpener) *Manager {
	t.Helper()
	k := keytest.Key(t)
	cfg := testICE()
	cfg.Servers = []ice.Server{{URL: "stun:" + stunAddr.String()}}
	m := testManager(t, k, Config{ICE: &cfg, Proxy: proxy})
	return m
}

// stunTestExit is iceTestExit with an exit policy that allows rule and,
// when egress is valid, UDP flows leaving from egress.
func stunTestExit(t *testing.T, rule tunnel.Rule, egress netip.Addr) (*tunnel.AddressPool, *userspace.Exit) {
	t.Helper()
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := tunnel.NewExitPolicy(tunnel.PolicyConfig{Allow: []tunnel.Rule{rule}})
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := tunnel.GenerateKey()
	v4, v6 := pool.Ranges()
	ec := userspace.ExitConfig{
		PrivateKey: ek, ListenAddr: netip.MustParseAddr("127.0.0.1"), Gateway: pool.Gateway(), TunnelRanges: []netip.Prefix{v4, v6},
		DNSUpstream: netip.MustParseAddrPort("127.0.0.1:9"), Policy: policy, Log: slog.New(slog.DiscardHandler),
	}
	if egress.IsValid() {
		ec.Dialer = egressDialer{from: egress}
	}
	exit, err := userspace.NewExit(ec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exit.Close() })
	return pool, exit
}

// openSession opens a session negotiating proto with iceProvider in
// mode, lets check inspect it, and disconnects.
func openSession(t *testing.T, m *Manager, pool *tunnel.AddressPool, exit *userspace.Exit, mode string, proto protocol.ID, check func(*Connection, *sessionproto.SessionRequest)) {
	t.Helper()
	openSessionWith(t, m, pool, exit, mode, proto, nil, check)
}

// openSessionWith is openSession whose connection brings its tunnel up
// with tun (Options.Tunnel; nil: the Manager's proxy).
func openSessionWith(t *testing.T, m *Manager, pool *tunnel.AddressPool, exit *userspace.Exit, mode string, proto protocol.ID, tun TunnelOpener, check func(*Connection, *sessionproto.SessionRequest)) {
	t.Helper()
	lease, err := pool.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release(lease)
	a, b := net.Pipe()
	seen := make(chan *sessionproto.SessionRequest, 1)
	done := make(chan struct{})
	go func() { defer close(done); iceProvider(t, b, exit, lease, mode, seen) }()
	c, err := m.open(context.Background(), protoPipe{a, proto}, proposal("DE", 20), Options{
		SOCKSListen: "127.0.0.1:0", Tunnel: tun,
		PayLoop: func(ctx context.Context, _ *sessionproto.Reader, _ *sessionproto.Writer) error {
			<-ctx.Done()
			return nil
		},
	}, time.Now(), peer.AddrInfo{})
	if err != nil {
		a.Close()
		<-done
		t.Fatal(err)
	}
	req := <-seen
	check(c, req)
	if err := c.Disconnect(context.Background()); err != nil {
		t.Error(err)
	}
	<-done
	_ = exit.RemovePeer(tunnel.PublicKey(req.WGPublicKey))
}

// openStatic is openSession on protocol 1.0 (the static path),
// returning what inspect says of the connection.
func openStatic(t *testing.T, m *Manager, pool *tunnel.AddressPool, exit *userspace.Exit, mode string, inspect func(*Connection) Status) Status {
	t.Helper()
	var st Status
	openSession(t, m, pool, exit, mode, sessionproto.ProtocolID, func(c *Connection, _ *sessionproto.SessionRequest) { st = inspect(c) })
	return st
}
