package probe

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// BenchmarkCheck measures one whole peer check — request, the checker's
// fresh host, its new connection, the 1 KiB echo, the signed answer and
// its verification — against the baseline of the same echo over the
// connection the two nodes already share, in the same run. "x_echo" is
// the ratio: what the honesty of a fresh connection costs.
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	c := newHost(b)
	checker, err := New(Config{Host: c, AllowPrivate: true, PerPeer: time.Nanosecond, PerPeerBurst: 1 << 20, MaxConcurrent: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer checker.Close()
	h := newHost(b)
	req, err := New(Config{Host: h, MinInterval: time.Nanosecond, EchoPerSecond: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer req.Close()
	if err := h.Connect(ctx, c.Peerstore().PeerInfo(c.ID())); err != nil {
		b.Fatal(err)
	}
	for len(req.Checkers()) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	const echoProto = "/openmyst/probe/bench-echo"
	c.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, s)
	})
	payload := make([]byte, EchoSize)
	echo := func() {
		s, err := h.NewStream(ctx, c.ID(), echoProto)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write(payload); err != nil {
			b.Fatal(err)
		}
		_ = s.CloseWrite()
		if _, err := io.ReadFull(s, make([]byte, EchoSize)); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	const baseN = 50
	start := time.Now()
	for range baseN {
		echo()
	}
	base := time.Since(start) / baseN
	b.ResetTimer()
	for b.Loop() {
		rep, err := req.CheckSelf(ctx, 1)
		if err != nil || rep.Reachable != 1 {
			b.Fatalf("%+v %v", rep, err)
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(base.Microseconds()), "echo_us")
	b.ReportMetric(float64(per)/float64(base), "x_echo")
}
