package ice

import (
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/openmyst/openmyst/relay"
)

// loopbackTURN starts a TURN relay on loopback (the caller closes it) and
// returns it with the servers that reach it over UDP, with credentials.
func loopbackTURN(t *testing.T) (*relay.Server, []Server) {
	t.Helper()
	secret := []byte("a test secret of 32 bytes length")
	srv, err := relay.Start(relay.Config{UDP: "127.0.0.1:0", PublicIP: netip.MustParseAddr("127.0.0.1"),
		RelayBind: netip.MustParseAddr("127.0.0.1"), Secret: secret, AllowPrivatePeers: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	user, pass, err := relay.Credentials(secret, "test", time.Minute)
	if err != nil {
		_ = srv.Close()
		t.Fatal(err)
	}
	servers, err := ParseServers(nil, []string{fmt.Sprintf("turn:%s?transport=udp", srv.Addrs().UDP)}, user, pass)
	if err != nil {
		_ = srv.Close()
		t.Fatal(err)
	}
	return srv, servers
}

// TestLostWhenTheTURNAllocationCloses: two agents that can only meet
// through a TURN relay (relayed candidates only) on loopback; when the
// relay goes away mid-session, its allocations with it, both sides'
// Lost is closed within a few LostAfter, and not before while the relay
// runs.
func TestLostWhenTheTURNAllocationCloses(t *testing.T) {
	const lostAfter = 500 * time.Millisecond
	srv, servers := loopbackTURN(t)
	closed := false
	defer func() {
		if !closed {
			_ = srv.Close()
		}
	}()
	cfg := Config{Servers: servers, RelayOnly: true, Policy: CandidatePolicy{AllowPrivate: true}, Loopback: true,
		Timeout: 10 * time.Second, LostAfter: lostAfter, Logger: slog.New(slog.DiscardHandler)}
	a, b, _, _ := connectLoopback(t, cfg)
	if p := a.Path(); p.Kind != PathRelay {
		t.Fatalf("path %+v, want through the relay", p)
	}
	select {
	case <-a.Lost():
		t.Fatal("a working relayed path was declared lost")
	case <-b.Lost():
		t.Fatal("a working relayed path was declared lost (controlled side)")
	case <-time.After(4 * lostAfter):
	}
	start := time.Now()
	closed = true
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, side := range []*Agent{a, b} {
		select {
		case <-side.Lost():
		case <-time.After(6*lostAfter - time.Since(start)):
			t.Fatalf("the path was not declared lost within %v of the TURN allocations closing", 6*lostAfter)
		}
	}
	t.Logf("both sides lost the path %v after the relay closed (LostAfter %v)", time.Since(start).Round(time.Millisecond), lostAfter)
}
