package consumer

import (
	"context"
	"testing"
	"time"

	"github.com/openmyst/openmyst/session/provider"
)

// BenchmarkResume measures, over a circuit relay on loopback, how long a
// session takes to resume after its control connection is closed (from
// the close to the resumed stream) against opening a new session on the
// same provider (Connect: stream, request, WireGuard handshake), both in
// the same run; x_connect is their ratio. Each iteration opens a
// session, resumes it once and disconnects.
//
//	go test -run '^$' -bench Resume -benchtime 20x ./session/consumer/
func BenchmarkResume(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	k, pool, exit := iceTestExit(b)
	rp, ph := startRelayedProvider(b, ctx, time.Hour, provider.Config{
		Exit: exit, Pool: pool,
		Payment: provider.Payment{Interval: time.Minute, Grace: time.Minute, Keepalive: time.Second, ReadTimeout: 5 * time.Second},
	})
	ch, _, m := relayedConsumer(b, k, 10*time.Second)
	var connect, resume time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		c, err := m.Connect(ctx, rp.proposal, Options{})
		if err != nil {
			b.Fatal(err)
		}
		connect += time.Since(start)
		start = time.Now()
		if err := ph.Network().ClosePeer(ch.ID()); err != nil {
			b.Fatal(err)
		}
		for c.Resumes() == 0 {
			select {
			case <-c.Done():
				b.Fatalf("the session ended instead of resuming: %v", c.Err())
			case <-time.After(100 * time.Microsecond):
			}
		}
		resume += time.Since(start)
		if err := c.Disconnect(ctx); err != nil {
			b.Fatal(err)
		}
		<-rp.ended
	}
	b.StopTimer()
	b.ReportMetric(float64(connect.Milliseconds())/float64(b.N), "connect_ms")
	b.ReportMetric(float64(resume.Microseconds())/1000/float64(b.N), "resume_ms")
	b.ReportMetric(float64(resume)/float64(connect), "x_connect")
}
