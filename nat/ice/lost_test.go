package ice

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"
)

// gatherPair makes a controlling agent a and a controlled agent b with
// cfg, closed when t ends, and gathers their offers.
func gatherPair(t *testing.T, cfg Config) (a, b *Agent, oa, ob Offer) {
	t.Helper()
	var err error
	if a, err = NewAgent(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if b, err = NewAgent(cfg, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	if oa, err = a.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	if ob, err = b.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	return a, b, oa, ob
}

// connectLoopback connects a controlling and a controlled agent on
// loopback and returns them with their connections.
func connectLoopback(t *testing.T, cfg Config) (a, b *Agent, ca, cb net.Conn) {
	t.Helper()
	a, b, oa, ob := gatherPair(t, cfg)
	ctx := context.Background()
	var err error
	errc := make(chan error, 1)
	go func() {
		var err error
		cb, err = b.Connect(ctx, oa)
		errc <- err
	}()
	if ca, err = a.Connect(ctx, ob); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return a, b, ca, cb
}

// TestLostWhenThePeerGoesSilent: a connected path that carries no data
// stays up on the ICE keepalives alone for several LostAfter; when the
// peer's side of the path dies (its agent closed: nothing arrives any
// more) Lost is closed within a few LostAfter. Closing an agent itself
// is no loss.
func TestLostWhenThePeerGoesSilent(t *testing.T) {
	lostAfter := 500 * time.Millisecond
	cfg := Config{Loopback: true, Policy: CandidatePolicy{AllowPrivate: true}, Timeout: 5 * time.Second,
		LostAfter: lostAfter, Logger: slog.New(slog.DiscardHandler)}
	a, b, ca, cb := connectLoopback(t, cfg)
	if _, err := ca.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := cb.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	select {
	case <-a.Lost():
		t.Fatal("an idle but working path was declared lost")
	case <-b.Lost():
		t.Fatal("an idle but working path was declared lost (controlled side)")
	case <-time.After(4 * lostAfter):
	}
	start := time.Now()
	_ = b.Close()
	select {
	case <-a.Lost():
		t.Logf("lost %v after the peer went silent (LostAfter %v)", time.Since(start).Round(time.Millisecond), lostAfter)
	case <-time.After(6 * lostAfter):
		t.Fatalf("the path was not declared lost within %v of the peer going silent", 6*lostAfter)
	}
	select {
	case <-b.Lost():
		t.Fatal("closing an agent declared its own path lost")
	default:
	}
}
