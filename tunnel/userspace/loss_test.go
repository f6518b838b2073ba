package userspace

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/openmyst/openmyst/tunnel/connbind/connbindtest"
)

// lossyConn drops every datagram written while on with probability
// loss (a seeded generator: the same pattern each run), as a congested
// or wireless path does.
type lossyConn struct {
	net.Conn
	on      atomic.Bool
	loss    float64
	mu      sync.Mutex
	rng     *rand.Rand
	dropped atomic.Int64
}

func (c *lossyConn) Write(b []byte) (int, error) {
	if c.on.Load() {
		c.mu.Lock()
		drop := c.rng.Float64() < c.loss
		c.mu.Unlock()
		if drop {
			c.dropped.Add(1)
			return len(b), nil
		}
	}
	return c.Conn.Write(b)
}

// minSendWindow samples the congestion window of every TCP endpoint of
// the exit's netstack until stop is closed and returns the smallest seen
// on an endpoint with data queued to send (-1 if none was sampled).
func minSendWindow(e *Exit, stop <-chan struct{}) int {
	low := -1
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		for _, te := range e.tun.stack.RegisteredEndpoints() {
			ep, ok := te.(*tcp.Endpoint)
			if !ok || ep.State() != uint32(tcp.StateEstablished) {
				continue
			}
			var info tcpip.TCPInfoOption
			if err := ep.GetSockOpt(&info); err != nil {
				continue
			}
			if low < 0 || int(info.SndCwnd) < low {
				low = int(info.SndCwnd)
			}
		}
		select {
		case <-stop:
			return low
		case <-t.C:
		}
	}
}

// TestDownloadSurvivesPacketLoss downloads through a tunnel whose exit
// loses 5% of the datagrams it sends. TCP in the exit's netstack must
// recover every loss: gVisor's CUBIC (before google/gvisor#13958) let
// ACKs in congestion avoidance shrink the window, down to 0 after a few
// losses; with nothing in flight no timer fires again and the download
// stalled for good while the session went on (and was paid for).
func TestDownloadSurvivesPacketLoss(t *testing.T) {
	body := randomBody(4 << 20)
	srv := bodyServer(t, body)
	exitEnd, clientEnd := connbindtest.UDPPair(t)
	lossy := &lossyConn{Conn: exitEnd, loss: 0.05, rng: rand.New(rand.NewPCG(1, 2))}
	p := newPairOver(t, lossy, clientEnd, allowServer(t, srv), netip.AddrPort{}, 0)
	lossy.on.Store(true) // after the handshake: loss slows it down only

	stop := make(chan struct{})
	low := make(chan int, 1)
	go func() { low <- minSendWindow(p.exit, stop) }()
	var n atomic.Int64
	done := make(chan error, 1)
	var got []byte
	go func() {
		resp, err := socksClient(p).Get(srv.URL)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		got, err = io.ReadAll(io.TeeReader(resp.Body, writerFunc(func(b []byte) { n.Add(int64(len(b))) })))
		done <- err
	}()
	// A download that receives nothing for this long has stalled: TCP
	// retransmits a lost segment within its RTO (200 ms to seconds).
	const stalled = 20 * time.Second
	last, lastAt := int64(-1), time.Now()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-time.After(time.Second):
			if cur := n.Load(); cur != last {
				last, lastAt = cur, time.Now()
			} else if time.Since(lastAt) > stalled {
				close(stop)
				t.Fatalf("download stalled at %d of %d bytes (%d datagrams dropped); smallest congestion window seen: %d",
					cur, len(body), lossy.dropped.Load(), <-low)
			}
		}
	}
	close(stop)
	minCwnd := <-low
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("download: %d of %d bytes, %v", len(got), len(body), err)
	}
	if lossy.dropped.Load() == 0 {
		t.Fatal("no datagram was dropped: the test tested nothing")
	}
	if minCwnd == 0 {
		t.Fatalf("the exit's congestion window fell to 0 (%d datagrams dropped)", lossy.dropped.Load())
	}
	t.Logf("%d datagrams dropped; smallest congestion window %d", lossy.dropped.Load(), minCwnd)
}

type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }
