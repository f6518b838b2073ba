package paystream

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmyst/openmyst/p2p/sessionproto"
)

// countingConn counts the bytes written through it.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// TestControlTrafficPerMinute measures the payment control traffic of a
// session (both directions, framed, before stream encryption) at the
// production timing (30 s invoices, 10 s keepalives) with time scaled
// down 100x, and checks it against the 4 KB per session-minute target.
func TestControlTrafficPerMinute(t *testing.T) {
	const scale = 100 // 1 s of session time = 10 ms of test time
	s := newSession(t, price, price, 35*time.Second/scale, time.Second)
	var provBytes, consBytes atomic.Int64
	s.provW = sessionproto.NewWriter(countingConn{s.provConn, &provBytes}, time.Second)
	s.consW = sessionproto.NewWriter(countingConn{s.consConn, &consBytes}, time.Second)
	s.tracker = rebuildTracker(t, s, 30*time.Second/scale)
	s.opt.Keepalive = 10 * time.Second / scale

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consCtx, disconnect := context.WithCancel(ctx)
	s.traffic(t)
	wait := s.run(t, ctx, consCtx, cancel)
	const minutes = 3
	time.Sleep(minutes * time.Minute / scale)
	disconnect()
	provErr, consErr := wait()
	if consErr != nil {
		t.Fatalf("consumer: %v", consErr)
	}
	t.Logf("provider ended with: %v", provErr)

	total := provBytes.Load() + consBytes.Load()
	perMinute := total / minutes
	t.Logf("%d invoices; %d B provider->consumer, %d B consumer->provider over %d scaled minutes: %d B per session-minute",
		s.tracker.Stats().Invoices, provBytes.Load(), consBytes.Load(), minutes, perMinute)
	if perMinute >= 4096 {
		t.Fatalf("%d B of payment control traffic per session-minute, target < 4096", perMinute)
	}
	if s.tracker.Stats().Invoices < minutes {
		t.Fatalf("only %d invoices in %d scaled minutes", s.tracker.Stats().Invoices, minutes)
	}
}
