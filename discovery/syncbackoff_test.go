package discovery

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/internal/clocktest"
	"github.com/openmyst/openmyst/internal/testenv"
)

// TestSyncConnectedBacksOffFailingPeer: a connected peer that refuses
// the sync (here it resets every sync stream, as a rate-limited or
// broken peer does) is asked again only after a backoff that doubles
// with each failure, and a sync that succeeds starts the count again.
// Before, every SyncConnected call (WaitProposals polls it every ~100
// ms) asked it again.
func TestSyncConnectedBacksOffFailingPeer(t *testing.T) {
	ctx := t.Context()
	a := startNode(t, ctx, nil, netOpts{})
	defer a.close()
	b := startNode(t, ctx, []peer.AddrInfo{a.node.AddrInfo()}, netOpts{})
	defer b.close()
	var asked atomic.Int64
	refuse := func(st network.Stream) { asked.Add(1); _ = st.Reset() }
	a.node.Host.SetStreamHandler(SyncProtocol, refuse)
	clk := clocktest.New(time.Now())
	b.svc.now = clk.Now

	sync := func(want int64, what string) {
		t.Helper()
		b.svc.SyncConnected(ctx, 3)
		if n := asked.Load(); n != want {
			t.Fatalf("%s: the refusing peer was asked %d times, want %d", what, n, want)
		}
	}
	sync(1, "first sync")
	for i := 0; i < 5; i++ {
		sync(1, "syncs right after the failure")
	}
	// Failure 1 waits syncRetry.Delay(1) = 1 s, jittered into [0.5 s, 1.5 s).
	clk.Add(1500 * time.Millisecond)
	sync(2, "after the first backoff")
	// Failure 2 waits [1 s, 3 s), failure 3 [2 s, 6 s).
	clk.Add(900 * time.Millisecond)
	sync(2, "within the second backoff")
	clk.Add(2100 * time.Millisecond)
	sync(3, "after the second backoff")
	clk.Add(1900 * time.Millisecond)
	sync(3, "within the third backoff")

	// A successful sync forgets the failures: the next failure waits the
	// first delay again, not the fourth ([4 s, 12 s)).
	clk.Add(4100 * time.Millisecond)
	a.node.Host.SetStreamHandler(SyncProtocol, a.svc.serveSync)
	b.svc.SyncConnected(ctx, 3)
	if !b.svc.syncWait.ready(a.node.ID(), clk.Now()) {
		t.Fatal("the peer is still backed off after a successful sync")
	}
	a.node.Host.SetStreamHandler(SyncProtocol, refuse)
	sync(4, "a failure after the success")
	clk.Add(1500 * time.Millisecond)
	sync(5, "after the first backoff again")
}

// TestSyncBackoffBounded: the failures of at most maxSyncBackoff peers
// are remembered; the least recently failed is forgotten first.
func TestSyncBackoffBounded(t *testing.T) {
	s := newSyncBackoff(syncRetry, 2)
	now := time.Now()
	ids := []peer.ID{"p1", "p2", "p3"}
	for _, p := range ids {
		s.failed(p, now)
	}
	if s.lru.Len() != 2 || !s.ready(ids[0], now) || s.ready(ids[1], now) || s.ready(ids[2], now) {
		t.Fatalf("%d remembered; ready: %v %v %v", s.lru.Len(), s.ready(ids[0], now), s.ready(ids[1], now), s.ready(ids[2], now))
	}
}

// TestSyncConnectedCallerDeadlineIsNotAFailure: a sync cut by the
// caller's own deadline (a short poll on a loaded machine) leaves the
// peer ready for the next call. Before, each such deadline counted as the
// peer's failure, so under load every peer was soon skipped for up to a
// minute and a late joiner stopped catching up (quality TestThirtyNodes
// missed its 60 s window).
func TestSyncConnectedCallerDeadlineIsNotAFailure(t *testing.T) {
	ctx := t.Context()
	a := startNode(t, ctx, nil, netOpts{})
	defer a.close()
	b := startNode(t, ctx, []peer.AddrInfo{a.node.AddrInfo()}, netOpts{})
	defer b.close()
	stop := make(chan struct{})
	var asked atomic.Int64
	a.node.Host.SetStreamHandler(SyncProtocol, func(st network.Stream) {
		asked.Add(1)
		<-stop
		_ = st.Reset()
	})
	defer close(stop)
	for call := 1; call <= 3; call++ {
		sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		b.svc.SyncConnected(sctx, 3)
		cancel()
		if !b.svc.syncWait.ready(a.node.ID(), b.svc.now()) {
			t.Fatalf("call %d: the slow peer is backed off for the caller's deadline (asked %d times)", call, asked.Load())
		}
	}
	testenv.WaitFor(t, 10*time.Second, "the slow peer asked", func() bool { return asked.Load() >= 1 })
}

// deadlineOnly is a context whose deadline has passed while its Err is
// still nil: the moment between a stream's read deadline firing and the
// context's own timer marking it done.
type deadlineOnly struct{ context.Context }

func (deadlineOnly) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// TestCallerDoneAtDeadline: a passed deadline is the caller's, even
// before ctx.Err() says so (it failed in CI: the sync's stream timed out
// at the caller's deadline a moment before ctx was done, and the peer was
// backed off).
func TestCallerDoneAtDeadline(t *testing.T) {
	if !callerDone(deadlineOnly{context.Background()}) {
		t.Fatal("a passed deadline with a nil Err is not the caller's")
	}
	if callerDone(context.Background()) {
		t.Fatal("a context without deadline or end is done")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if !callerDone(ctx) {
		t.Fatal("a canceled context is not done")
	}
}

// TestSyncRetryBoundedBySyncLimit: a refusing peer is asked again at
// least once per syncEvery (jitter included), the period in which its
// sync limit grants a new sync.
func TestSyncRetryBoundedBySyncLimit(t *testing.T) {
	for n := 1; n <= 30; n++ {
		if d := syncRetry.Delay(n); d > syncEvery*3/2 {
			t.Fatalf("failure %d waits %v, more than 1.5 x syncEvery (%v)", n, d, syncEvery)
		}
	}
}
