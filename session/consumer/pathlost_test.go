package consumer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/tunnel"
)

// killableProvider answers one session request on conn with the real
// userspace exit, over ICE when withICE, and kills the session's path
// when kill is closed: it closes its ICE agent (the pair goes silent, as
// when a TURN allocation or NAT mapping dies), or without ICE removes
// the consumer's peer from the exit (datagrams are dropped: a stalled
// tunnel).
func killableProvider(t *testing.T, conn net.Conn, exit interface {
	AddPeer(context.Context, tunnel.PeerConfig) error
	RemovePeer(tunnel.PublicKey) error
	PublicKey() tunnel.PublicKey
	Endpoint() netip.AddrPort
	AttachConn(tunnel.PublicKey, net.Conn) error
}, lease tunnel.Lease, withICE bool, kill <-chan struct{}) {
	defer conn.Close()
	ctx := context.Background()
	r, w := sessionproto.NewReader(conn, 5*time.Second), sessionproto.NewWriter(conn, 5*time.Second)
	msg, err := r.ReadMessage(ctx)
	if err != nil {
		return
	}
	req := msg.(*sessionproto.SessionRequest)
	pub := tunnel.PublicKey(req.WGPublicKey)
	if err := exit.AddPeer(ctx, tunnel.PeerConfig{PublicKey: pub, AllowedIPs: lease.Prefixes()}); err != nil {
		t.Error(err)
		return
	}
	defer func() { _ = exit.RemovePeer(pub) }()
	resp := &sessionproto.SessionResponse{
		SessionID: sessionproto.SessionID{2}, ProviderWGKey: sessionproto.Key(exit.PublicKey()), Endpoint: exit.Endpoint().String(),
		ConsumerAddrs: lease.Prefixes(), ProviderAddr: lease.V4, DNS: []netip.Addr{},
	}
	agent, ok := respondICE(t, ctx, w, req, resp, exit, withICE, true)
	if !ok {
		return
	}
	if agent != nil {
		defer agent.Close()
	}
	go func() {
		<-kill
		if agent != nil {
			_ = agent.Close()
		} else {
			_ = exit.RemovePeer(pub)
		}
	}()
	for {
		if _, err := r.ReadMessage(ctx); err != nil {
			return
		}
	}
}

// TestPathLost: when the session's path dies mid-session — the ICE pair
// goes silent, or (without ICE) the tunnel keeps sending and receives
// nothing — the session ends by itself with session.ErrPathLost within a
// few of the configured timeouts (ice.Config.LostAfter, Config.DeadAfter),
// and not while the path works.
func TestPathLost(t *testing.T) {
	const lostAfter = 400 * time.Millisecond
	const deadAfter = 800 * time.Millisecond
	k, pool, exit := iceTestExit(t)
	cfg := testICE()
	cfg.LostAfter = lostAfter
	m := testManager(t, k, Config{ICE: &cfg, Proxy: userspaceProxy, DeadAfter: deadAfter})
	for _, tc := range []struct {
		name    string
		withICE bool
		path    string
		bound   time.Duration
	}{
		{"ICE pair goes silent", true, ice.PathDirect, 6 * lostAfter},
		{"tunnel sends and receives nothing", false, PathStatic, 4 * deadAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lease, err := pool.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Release(lease)
			a, b := net.Pipe()
			kill := make(chan struct{})
			done := make(chan struct{})
			go func() { defer close(done); killableProvider(t, b, exit, lease, tc.withICE, kill) }()
			defer func() { <-done }()
			defer a.Close()
			proto := protocol.ID(sessionproto.ProtocolID)
			if tc.withICE {
				proto = sessionproto.ProtocolICE
			}
			c, err := m.open(context.Background(), protoPipe{a, proto}, proposal("DE", 20), Options{
				PayLoop: func(ctx context.Context, _ *sessionproto.Reader, _ *sessionproto.Writer) error {
					<-ctx.Done()
					return nil
				},
			}, time.Now(), peer.AddrInfo{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Disconnect(context.Background()) }()
			if c.Path() != tc.path {
				t.Fatalf("path %q, want %q", c.Path(), tc.path)
			}
			// Traffic into the tunnel all along, answered while the path
			// works, as an application's: connection attempts to a closed
			// port of the provider's gateway (its refusals come back).
			gw := netip.AddrPortFrom(pool.Gateway().V4, 9).String()
			stop := make(chan struct{})
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				tick := time.NewTicker(deadAfter / 10)
				defer tick.Stop()
				for {
					dctx, cancel := context.WithTimeout(context.Background(), deadAfter/10)
					if tc, err := c.DialContext(dctx, "tcp", gw); err == nil {
						tc.Close()
					}
					cancel()
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			}()
			defer func() { close(stop); <-sent }()
			// A working path keeps the session for several timeouts.
			select {
			case <-c.Done():
				t.Fatalf("the session ended while its path worked: %v", c.Err())
			case <-time.After(3 * max(lostAfter, deadAfter)):
			}
			start := time.Now()
			close(kill)
			select {
			case <-c.Done():
			case <-time.After(tc.bound):
				t.Fatalf("the session still runs %v after its path died", tc.bound)
			}
			if err := c.Err(); !errors.Is(err, session.ErrPathLost) {
				t.Fatalf("session ended with %v, want %v", err, session.ErrPathLost)
			}
			if st := c.Status(); st.Running || st.Err == "" {
				t.Fatalf("status %+v, want ended with the reason", st)
			}
			t.Logf("ended %v after the path died: %v", time.Since(start).Round(time.Millisecond), c.Err())
		})
	}
}
