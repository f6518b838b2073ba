package consumer

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/userspace"
)

// protoPipe is one end of a pipe that says which session protocol it
// negotiated, as a libp2p stream does.
type protoPipe struct {
	net.Conn
	proto protocol.ID
}

func (p protoPipe) Protocol() protocol.ID { return p.proto }

// iceProvider answers one session request on conn with a real userspace
// exit: it admits the consumer and answers with the exit's endpoint and,
// per mode, no offer, an offer nobody answers, or a real ICE agent whose
// connection it attaches to the admitted peer ("ice"; "ice-unanswered":
// the consumer is expected not to run the checks).
func iceProvider(t *testing.T, conn net.Conn, exit *userspace.Exit, lease tunnel.Lease, mode string, seen chan<- *sessionproto.SessionRequest) {
	defer conn.Close()
	ctx := context.Background()
	r, w := sessionproto.NewReader(conn, 5*time.Second), sessionproto.NewWriter(conn, 5*time.Second)
	msg, err := r.ReadMessage(ctx)
	if err != nil {
		seen <- nil
		return
	}
	req := msg.(*sessionproto.SessionRequest)
	seen <- req
	if err := exit.AddPeer(ctx, tunnel.PeerConfig{PublicKey: tunnel.PublicKey(req.WGPublicKey), AllowedIPs: lease.Prefixes()}); err != nil {
		t.Error(err)
		return
	}
	resp := &sessionproto.SessionResponse{
		SessionID: sessionproto.SessionID{1}, ProviderWGKey: sessionproto.Key(exit.PublicKey()), Endpoint: exit.Endpoint().String(),
		ConsumerAddrs: lease.Prefixes(), ProviderAddr: lease.V4, DNS: []netip.Addr{}, ExitIP: exit.Endpoint().Addr(),
	}
	switch mode {
	case "claims 127.0.0.2":
		// A multi-homed provider that names its egress address, not the
		// address its tunnel is at.
		resp.ExitIP = netip.MustParseAddr("127.0.0.2")
	case "lying":
		// Claims an exit address that is not where its tunnel is.
		resp.ExitIP = netip.MustParseAddr("203.0.113.7")
	case "metadata offer":
		// A candidate the consumer's policy refuses: it must send nothing
		// there and fall back.
		resp.ICE = json.RawMessage(`{"ufrag":"abcdEFGH","pwd":"0123456789abcdefghijklmn","candidates":["1 1 udp 2130706431 169.254.169.254 80 typ host"]}`)
	case "dead offer":
		// A candidate on a loopback port nobody listens on.
		resp.ICE = json.RawMessage(`{"ufrag":"abcdEFGH","pwd":"0123456789abcdefghijklmn","candidates":["1 1 udp 2130706431 127.0.0.1 9 typ host"]}`)
	}
	agent, ok := respondICE(t, ctx, w, req, resp, exit, mode == "ice" || mode == "ice-unanswered", mode != "ice-unanswered")
	if !ok {
		return
	}
	if agent != nil {
		defer agent.Close()
	}
	for {
		if _, err := r.ReadMessage(ctx); err != nil {
			return
		}
	}
}

// userspaceProxy is node.UserspaceProxy (node injects it in production).
func userspaceProxy(ctx context.Context, s tunnel.SessionConfig, o ProxyOptions) (ProxyTunnel, error) {
	return userspace.Connect(ctx, userspace.ClientConfig{
		Session: s, SOCKSListen: o.SOCKSListen, HTTPListen: o.HTTPListen, HandshakeTimeout: o.HandshakeTimeout, Log: o.Log, Conn: o.Conn,
	})
}

// iceTestExit returns a consumer key, an address pool and a userspace
// exit on loopback, closed when the test ends.
func iceTestExit(t testing.TB) (*ecdsa.PrivateKey, *tunnel.AddressPool, *userspace.Exit) {
	t.Helper()
	k := keytest.Key(t)
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := tunnel.GenerateKey()
	v4, v6 := pool.Ranges()
	exit, err := userspace.NewExit(userspace.ExitConfig{
		PrivateKey: ek, ListenAddr: netip.MustParseAddr("127.0.0.1"), Gateway: pool.Gateway(), TunnelRanges: []netip.Prefix{v4, v6},
		DNSUpstream: netip.MustParseAddrPort("127.0.0.1:9"), Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exit.Close() })
	return k, pool, exit
}

func testICE() ice.Config {
	return ice.Config{Policy: ice.CandidatePolicy{AllowPrivate: true}, Loopback: true, Timeout: time.Second, Logger: slog.New(slog.DiscardHandler)}
}

// testManager returns a Manager for the consumer key k on chain 1337
// with hermes 0x4e and a discarding log; cfg sets the rest (Host
// defaults to fakeHost{}, Channel to ledger{}).
func testManager(t testing.TB, k *ecdsa.PrivateKey, cfg Config) *Manager {
	t.Helper()
	cfg.Signer, cfg.ChainID, cfg.Hermes = identity.NewKeySigner(k), big.NewInt(1337), common.HexToAddress("0x4e")
	cfg.Log = slog.New(slog.DiscardHandler)
	if cfg.Host == nil {
		cfg.Host = fakeHost{}
	}
	if cfg.Channel == nil {
		cfg.Channel = ledger{}
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// answerICE starts a fake provider's controlled ICE agent and gathers
// the offer it answers with; the caller closes the agent.
func answerICE(ctx context.Context) (*ice.Agent, json.RawMessage, error) {
	agent, err := ice.NewAgent(testICE(), false)
	if err != nil {
		return nil, nil, err
	}
	offer, err := agent.Gather(ctx)
	if err != nil {
		_ = agent.Close()
		return nil, nil, err
	}
	raw, err := json.Marshal(offer)
	if err != nil {
		_ = agent.Close()
		return nil, nil, err
	}
	return agent, raw, nil
}

// connectICE runs a fake provider's checks against the consumer's offer.
func connectICE(ctx context.Context, agent *ice.Agent, consumerOffer json.RawMessage) (net.Conn, error) {
	remote, _, err := ice.DecodeOffer(consumerOffer, testICE().Policy)
	if err != nil {
		return nil, err
	}
	return agent.Connect(ctx, remote)
}

// respondICE writes a fake provider's session response. withICE, it
// first puts a real ICE agent's answer into resp, and after writing runs
// the checks against the consumer's offer in req and attaches the pair to
// the consumer's peer on exit. It reports failures with t.Error (a failed
// write, and failed checks unless checksExpected, silently) and returns
// false then; otherwise the agent (nil without ICE), which the caller
// closes when it stops serving.
func respondICE(t *testing.T, ctx context.Context, w *sessionproto.Writer, req *sessionproto.SessionRequest, resp *sessionproto.SessionResponse,
	exit interface {
		AttachConn(tunnel.PublicKey, net.Conn) error
	}, withICE, checksExpected bool) (*ice.Agent, bool) {
	var agent *ice.Agent
	if withICE {
		var err error
		if agent, resp.ICE, err = answerICE(ctx); err != nil {
			t.Error(err)
			return nil, false
		}
	}
	fail := func(err error) (*ice.Agent, bool) {
		if err != nil {
			t.Error(err)
		}
		if agent != nil {
			_ = agent.Close()
		}
		return nil, false
	}
	if err := w.WriteMessage(ctx, resp); err != nil {
		return fail(nil)
	}
	if agent == nil {
		return nil, true
	}
	c, err := connectICE(ctx, agent, req.ICE)
	if err != nil {
		if !checksExpected {
			err = nil
		}
		return fail(err)
	}
	if err := exit.AttachConn(tunnel.PublicKey(req.WGPublicKey), c); err != nil {
		return fail(err)
	}
	return agent, true
}

// TestICEAndFallback: a consumer with ICE runs the tunnel over the ICE
// pair when the provider answers with an offer, and falls back to the
// provider's UDP endpoint when the provider speaks protocol 1.0 (then the
// request carries no offer), answers without an offer, or offers
// candidates that never answer (within the ICE timeout).
func TestICEAndFallback(t *testing.T) {
	k, pool, exit := iceTestExit(t)
	cfg := testICE()
	m := testManager(t, k, Config{ICE: &cfg, Proxy: userspaceProxy})
	for _, tc := range []struct {
		name, mode string
		proto      protocol.ID
		offered    bool
		path       string
		ipCheck    string
	}{
		{"ICE", "ice", sessionproto.ProtocolICE, true, ice.PathDirect, IPMatchesPeer},
		{"provider speaks 1.0", "none", sessionproto.ProtocolID, false, PathStatic, IPMatchesPeer},
		{"provider without ICE", "none", sessionproto.ProtocolICE, true, PathStatic, IPMatchesPeer},
		{"ICE checks fail", "dead offer", sessionproto.ProtocolICE, true, PathStatic, IPMatchesPeer},
		{"provider offers a refused candidate", "metadata offer", sessionproto.ProtocolICE, true, PathStatic, IPMatchesPeer},
		{"provider lies about its exit address", "lying", sessionproto.ProtocolICE, true, PathStatic, IPDiffersPeer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			openSession(t, m, pool, exit, tc.mode, tc.proto, func(c *Connection, req *sessionproto.SessionRequest) {
				if (len(req.ICE) > 0) != tc.offered {
					t.Errorf("request carries an offer: %v, want %v", len(req.ICE) > 0, tc.offered)
				}
				if err := req.VerifySignature(); err != nil {
					t.Errorf("request signature: %v", err)
				}
				if c.Path() != tc.path || c.Status().Path != tc.path {
					t.Errorf("path %q, want %q", c.Path(), tc.path)
				}
				if st := c.Status(); st.PublicIPCheck != tc.ipCheck || (tc.mode != "lying" && st.PublicIP != exit.Endpoint().Addr()) {
					t.Errorf("public ip %v (%s), want the exit's %v (%s)", st.PublicIP, st.PublicIPCheck, exit.Endpoint().Addr(), tc.ipCheck)
				}
				// The tunnel is up either way: a handshake over the path (the
				// responder counts it at the initiator's first packet after).
				if err := tunnel.WaitHandshake(context.Background(), exit, tunnel.PublicKey(req.WGPublicKey), 5*time.Second); err != nil {
					t.Errorf("provider: %v", err)
				}
			})
		})
	}
}

// TestICEForATunnel: a connection with its own tunnel (Options.Tunnel,
// the kernel tunnel in production) runs ICE only with Options.ICEChecks;
// the hook sees the provider's candidates and the agent's local ports
// before the checks, and the opener gets the ICE connection and the UDP
// destination of the selected pair. A failing hook, or no hook, leaves
// the tunnel on the provider's endpoint.
func TestICEForATunnel(t *testing.T) {
	k, pool, exit := iceTestExit(t)
	cfg := testICE()
	m := testManager(t, k, Config{ICE: &cfg})
	for _, tc := range []struct {
		name, mode string
		hook       bool
		hookErr    error
		gatherErr  error
		path       string
	}{
		{"with the hook", "ice", true, nil, nil, ice.PathDirect},
		{"without the hook", "none", false, nil, nil, PathStatic},
		{"the hook fails", "ice-unanswered", true, errors.New("no kill switch"), nil, PathStatic},
		{"the gather hook fails", "none", true, nil, errors.New("no kill switch"), PathStatic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lease, err := pool.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Release(lease)
			var checks []ICECheck
			var calls []string
			var route TunnelRoute
			o := Options{
				Tunnel: func(ctx context.Context, s tunnel.SessionConfig, r TunnelRoute) (tunnel.Client, error) {
					route = r
					return userspace.Connect(ctx, userspace.ClientConfig{Session: s, HandshakeTimeout: 5 * time.Second, Conn: r.Conn, Log: slog.New(slog.DiscardHandler)})
				},
				PayLoop: func(ctx context.Context, _ *sessionproto.Reader, _ *sessionproto.Writer) error {
					<-ctx.Done()
					return nil
				},
			}
			if tc.hook {
				o.ICEGather = func(context.Context) error { calls = append(calls, "gather"); return tc.gatherErr }
				o.ICEChecks = func(_ context.Context, c ICECheck) error {
					calls = append(calls, "checks")
					checks = append(checks, c)
					return tc.hookErr
				}
			}
			a, b := net.Pipe()
			seen := make(chan *sessionproto.SessionRequest, 1)
			done := make(chan struct{})
			go func() { defer close(done); iceProvider(t, b, exit, lease, tc.mode, seen) }()
			c, err := m.open(context.Background(), protoPipe{a, sessionproto.ProtocolICE}, proposal("DE", 20), o, time.Now(), peer.AddrInfo{})
			if err != nil {
				a.Close()
				<-done
				t.Fatal(err)
			}
			req := <-seen
			if offered := tc.hook && tc.gatherErr == nil; (len(req.ICE) > 0) != offered {
				t.Errorf("request carries an offer: %v, want %v", len(req.ICE) > 0, offered)
			}
			want := map[bool]string{true: "[gather checks]", false: "[]"}[tc.hook]
			if tc.gatherErr != nil {
				want = "[gather]"
			}
			if fmt.Sprint(calls) != want {
				t.Errorf("hook calls %v, want %s", calls, want)
			}
			if c.Path() != tc.path {
				t.Errorf("path %q, want %q", c.Path(), tc.path)
			}
			if tc.hook && tc.gatherErr == nil {
				if len(checks) != 1 || len(checks[0].Candidates) == 0 {
					t.Errorf("hook calls %+v: want one with the provider's candidates", checks)
				}
				for _, cand := range checks[0].Candidates {
					if !cand.Addr().IsLoopback() || cand == exit.Endpoint() {
						t.Errorf("candidate %v: not one of the provider's ICE candidates", cand)
					}
				}
			}
			switch {
			case tc.path == ice.PathDirect && (route.Conn == nil || len(route.Path) != 1 || route.Path[0] == exit.Endpoint()):
				t.Errorf("route %+v: want the ICE connection and its pair's remote address", route)
			case tc.path == PathStatic && (route.Conn != nil || len(route.Path) != 0):
				t.Errorf("route %+v: want the static endpoint", route)
			}
			if err := tunnel.WaitHandshake(context.Background(), exit, tunnel.PublicKey(req.WGPublicKey), 5*time.Second); err != nil {
				t.Errorf("provider: %v", err)
			}
			if err := c.Disconnect(context.Background()); err != nil {
				t.Error(err)
			}
			<-done
			_ = exit.RemovePeer(tunnel.PublicKey(req.WGPublicKey))
		})
	}
}
