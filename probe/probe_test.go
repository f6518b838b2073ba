package probe

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// newHost starts a loopback libp2p host closed with the test; opts are
// extra libp2p options.
func newHost(t testing.TB, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// newService starts a probe service on h, closed with the test.
func newService(t *testing.T, h host.Host, cfg Config) *Service {
	t.Helper()
	cfg.Host = h
	if cfg.MinInterval == 0 {
		cfg.MinInterval = time.Nanosecond
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// network starts n checkers (loopback allowed: the devnet setting) and
// connects requester to each, waiting until identify has told the
// requester they serve ProtocolCheck.
func connectCheckers(t *testing.T, req *Service, checkers ...host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range checkers {
		if err := req.cfg.Host.Connect(ctx, peer.AddrInfo{ID: c.ID(), Addrs: c.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	for len(req.Checkers()) < len(checkers) {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d checkers identified", len(req.Checkers()), len(checkers))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The checkers learn the requester's addresses from identify too:
	// the service waits for it, so the tests do not.
}

func checkers(t *testing.T, n int, cfg Config) []host.Host {
	var hs []host.Host
	for range n {
		h := newHost(t)
		newService(t, h, cfg)
		hs = append(hs, h)
	}
	return hs
}

func TestReachableFromAll(t *testing.T) {
	cs := checkers(t, 3, Config{AllowPrivate: true})
	req := newService(t, newHost(t), Config{})
	connectCheckers(t, req, cs...)
	rep, err := req.CheckSelf(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Asked != 3 || rep.Reachable != 3 {
		t.Fatalf("reachable from %d of %d, want 3 of 3: %+v", rep.Reachable, rep.Asked, rep.Results)
	}
	for _, r := range rep.Results {
		if r.Path != PathDirect || r.Signed == nil || !strings.HasPrefix(r.Addr, "/ip4/127.0.0.1/tcp/") {
			t.Errorf("result %+v", r)
		}
		pub, err := r.Peer.ExtractPublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Signed.Result.Verify(pub, r.Signed.Sig); err != nil {
			t.Errorf("kept signature does not verify: %v", err)
		}
	}
	if last, ok := req.Last(); !ok || last.Reachable != 3 {
		t.Errorf("Last = %+v, %v", last, ok)
	}
}

// A node whose advertised address is dead (its real listener is never
// advertised) is reachable from none, although it is connected to every
// checker: the checks use fresh connections.
func TestUnreachableAdvertisedAddress(t *testing.T) {
	cs := checkers(t, 3, Config{AllowPrivate: true, Timeout: 3 * time.Second})
	dead := ma.StringCast("/ip4/127.0.0.1/tcp/1")
	h := newHost(t, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return []ma.Multiaddr{dead} }))
	req := newService(t, h, Config{})
	connectCheckers(t, req, cs...)
	rep, err := req.CheckSelf(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Asked != 3 || rep.Reachable != 0 {
		t.Fatalf("reachable from %d of %d, want 0 of 3: %+v", rep.Reachable, rep.Asked, rep.Results)
	}
	for _, r := range rep.Results {
		if r.Signed == nil || !strings.Contains(r.Error, "connect") {
			t.Errorf("result %+v: want a signed connect failure", r)
		}
	}
}

// Outside a devnet a checker dials no loopback or private address.
func TestCheckerRefusesPrivateAddresses(t *testing.T) {
	cs := checkers(t, 1, Config{AllowPrivate: false})
	req := newService(t, newHost(t), Config{})
	connectCheckers(t, req, cs...)
	wantUnreachable(t, req, "no dialable advertised address")
}

func TestRateLimits(t *testing.T) {
	cs := checkers(t, 1, Config{AllowPrivate: true, PerPeer: time.Hour, PerPeerBurst: 2})
	req := newService(t, newHost(t), Config{})
	connectCheckers(t, req, cs...)
	for i, want := range []string{"", "", "refused: rate limited"} {
		rep, err := req.CheckSelf(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Results[0].Error; got != want {
			t.Errorf("check %d: error %q, want %q", i, got, want)
		}
	}
	// The requester's own checks are spaced too.
	slow := newService(t, newHost(t), Config{MinInterval: time.Hour})
	connectCheckers(t, slow, cs...)
	if _, err := slow.CheckSelf(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := slow.CheckSelf(context.Background(), 1); err != ErrTooSoon {
		t.Fatalf("second check: %v, want ErrTooSoon", err)
	}
}

func TestNoPeers(t *testing.T) {
	req := newService(t, newHost(t), Config{MinInterval: time.Hour})
	if _, err := req.CheckSelf(context.Background(), 3); err != ErrNoPeers {
		t.Fatalf("got %v, want ErrNoPeers", err)
	}
	// A run that asked nobody does not hold up the next one.
	connectCheckers(t, req, checkers(t, 1, Config{AllowPrivate: true})...)
	if rep, err := req.CheckSelf(context.Background(), 3); err != nil || rep.Reachable != 1 {
		t.Fatalf("check after peers arrived: %+v, %v", rep, err)
	}
}

// A checker that claims a connection it never made is not counted.
func TestLyingChecker(t *testing.T) {
	liar := newHost(t)
	liar.SetStreamHandler(ProtocolCheck, func(st network.Stream) {
		defer st.Close()
		b, _ := readAll(st, MaxRequestSize)
		rq, err := DecodeRequest(b)
		if err != nil {
			st.Reset()
			return
		}
		r := Result{V: Version, Requester: st.Conn().RemotePeer().String(), Checker: liar.ID().String(), Nonce: rq.Nonce,
			Reachable: true, Path: PathDirect, Addr: "/ip4/198.51.100.1/tcp/4001", RTTMillis: 1, At: time.Now().Unix()}
		sig, _ := r.Sign(liar.Peerstore().PrivKey(liar.ID()))
		out, _ := Response{Result: &r, Sig: sig}.Encode()
		st.Write(out)
	})
	req := newService(t, newHost(t), Config{})
	connectCheckers(t, req, liar)
	wantUnreachable(t, req, "echo never arrived")
}

// Bad requests get no answer, and echoes of unknown checks none either.
func TestBadInput(t *testing.T) {
	c := newHost(t)
	newService(t, c, Config{AllowPrivate: true})
	stranger := newHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stranger.Connect(ctx, peer.AddrInfo{ID: c.ID(), Addrs: c.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"garbage", `{"v":1,"nonce":"00"}`, strings.Repeat("x", MaxRequestSize+1)} {
		st, err := stranger.NewStream(ctx, c.ID(), ProtocolCheck)
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte(body))
		st.CloseWrite()
		b, err := io.ReadAll(st)
		if err == nil && len(b) > 0 {
			t.Errorf("request %.20q answered: %s", body, b)
		}
		st.Close()
	}
	// The bad requests used up the stranger's allowance: a good one now
	// is refused (bad input is rate-limited too).
	st, err := stranger.NewStream(ctx, c.ID(), ProtocolCheck)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := Request{V: Version, Nonce: testNonce}.Encode()
	st.Write(good)
	st.CloseWrite()
	b, err := io.ReadAll(st)
	st.Close()
	if resp, derr := DecodeResponse(b); err != nil || derr != nil || resp.Refused != "rate limited" {
		t.Fatalf("good request after bad ones: %q %v %v", b, err, derr)
	}
	// An echo for a nonce the node never issued is reset, not echoed.
	st, err = stranger.NewStream(ctx, c.ID(), ProtocolEcho)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, NonceSize+EchoSize)
	st.Write(msg)
	if n, err := io.ReadFull(st, make([]byte, EchoSize)); err == nil {
		t.Errorf("unknown echo answered with %d bytes", n)
	}
	st.Close()
}

// A requester cannot aim a check at somebody else: a direct address at
// another IP than the one the request came from, or a circuit through a
// relay the checker does not know, is not dialled.
func TestCheckerDialsOnlyTheRequestersOwnAddresses(t *testing.T) {
	unknownRelay := newHost(t) // never introduced to the checker
	for name, adv := range map[string]ma.Multiaddr{
		"other ip":      ma.StringCast("/ip4/127.0.0.2/tcp/4001"),
		"unknown relay": ma.Join(unknownRelay.Addrs()[0], ma.StringCast("/p2p/"+unknownRelay.ID().String()+"/p2p-circuit")),
	} {
		t.Run(name, func(t *testing.T) {
			cs := checkers(t, 1, Config{AllowPrivate: true})
			h := newHost(t, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return []ma.Multiaddr{adv} }))
			req := newService(t, h, Config{})
			connectCheckers(t, req, cs...)
			wantUnreachable(t, req, "no dialable advertised address")
		})
	}
}

// wantUnreachable runs req's check with one checker and wants it to fail
// with an error containing why.
func wantUnreachable(t *testing.T, req *Service, why string) {
	t.Helper()
	rep, err := req.CheckSelf(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reachable != 0 || !strings.Contains(rep.Results[0].Error, why) {
		t.Fatalf("got %+v, want a failure with %q", rep.Results, why)
	}
}
