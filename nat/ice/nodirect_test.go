package ice

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/openmyst/openmyst/nat/punch"
)

func TestNoDirectPath(t *testing.T) {
	const (
		host  = "1 1 udp 2130706431 25.0.0.5 5000 typ host"
		srflx = "2 1 udp 1694498815 25.0.3.2 41000 typ srflx raddr 0.0.0.0 rport 0"
		relay = "3 1 udp 16777215 25.0.0.1 50000 typ relay raddr 25.0.3.2 rport 41001"
	)
	hard, easy := &punch.Info{Mapping: punch.Hard, Addr: "25.0.3.2:41002"}, &punch.Info{Mapping: punch.Easy, Addr: "25.0.4.2:41002"}
	offer := func(p *punch.Info, cands ...string) Offer { return Offer{Candidates: cands, Punch: p} }
	for _, tc := range []struct {
		name string
		x, y Offer
		want bool
	}{
		{"both public", offer(nil, host, relay), offer(nil, host, relay), false},
		{"one side relay only (UDP blocked)", offer(nil, relay), offer(easy, srflx, relay), true},
		{"relay only against public", offer(nil, host, relay), offer(nil, relay), true},
		{"hard and hard, no host", offer(hard, srflx, relay), offer(hard, srflx, relay), true},
		{"hard and easy: punching", offer(hard, srflx, relay), offer(easy, srflx, relay), false},
		{"hard and hard, a forwarded host port", offer(hard, srflx, relay), offer(hard, host, srflx, relay), false},
		{"hard and an unknown mapping", offer(hard, srflx, relay), offer(nil, srflx, relay), false},
		{"easy and easy", offer(easy, srflx, relay), offer(easy, srflx, relay), false},
		{"no candidates", offer(nil), offer(nil, relay), true},
		{"a candidate that does not parse", offer(nil, "garbage", relay), offer(nil, srflx), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The test is symmetric: both sides of a session decide alike.
			if got, back := noDirectPath(tc.x, tc.y), noDirectPath(tc.y, tc.x); got != tc.want || back != tc.want {
				t.Fatalf("noDirectPath = %v (reversed %v), want %v", got, back, tc.want)
			}
		})
	}
}

// TestRelayOnlyConnectsWithoutTheWait: two agents that can only meet
// through a TURN relay (relayed candidates only, on loopback) select a
// relayed pair as soon as one works both ways, on both sides, instead of
// the controlling side waiting RelayWait for direct pairs that cannot
// exist; data crosses the path both ways. (Without noDirectPath the
// checks take at least RelayWait: pion accepts no relayed pair before.)
func TestRelayOnlyConnectsWithoutTheWait(t *testing.T) {
	srv, servers := loopbackTURN(t)
	t.Cleanup(func() { _ = srv.Close() }) // after the agents' (LIFO)
	cfg := Config{Servers: servers, RelayOnly: true, Policy: CandidatePolicy{AllowPrivate: true}, Loopback: true,
		Timeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	a, b, oa, ob := gatherPair(t, cfg)
	ctx := context.Background()
	start := time.Now()
	type result struct {
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	cbc := make(chan []byte, 1)
	go func() {
		cb, err := b.Connect(ctx, oa)
		took := time.Since(start)
		if err == nil {
			buf := make([]byte, 16)
			n, _ := cb.Read(buf)
			cbc <- buf[:n]
			_, err = cb.Write([]byte("pong"))
		}
		done <- result{took, err}
	}()
	ca, err := a.Connect(ctx, ob)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if _, err := ca.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := string(<-cbc); got != "ping" {
		t.Fatalf("controlled side read %q", got)
	}
	buf := make([]byte, 16)
	_ = ca.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := ca.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("controlling side read %q, %v", buf[:n], err)
	}
	for _, side := range []*Agent{a, b} {
		if p := side.Path(); p.Kind != PathRelay {
			t.Fatalf("path %+v, want through the relay", p)
		}
	}
	t.Logf("controlling side connected in %v, controlled side in %v (RelayWait %v)", took.Round(time.Millisecond), r.took.Round(time.Millisecond), RelayWait)
	if took >= RelayWait || r.took >= RelayWait {
		t.Fatalf("connected after %v and %v: the relayed pair waited RelayWait (%v) for direct pairs that cannot exist", took, r.took, RelayWait)
	}
}
