package p2p

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/internal/servetest"
)

// TestBootstrapRetriesStalledHandshake: the bootstrap peer's first
// connection stalls past the dial timeout (as when a bootstrap node
// busy with many joiners does not finish the handshake in time, seen in
// the 30-node quality test: "failed to negotiate security protocol:
// context deadline exceeded"); Bootstrap dials again instead of failing
// the node's start.
func TestBootstrapRetriesStalledHandshake(t *testing.T) {
	boot := loopbackNode(t, nil, DHTServer)
	var target string
	for _, a := range boot.Host.Addrs() {
		if v, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			ip, _ := a.ValueForProtocol(ma.P_IP4)
			target = net.JoinHostPort(ip, v)
			break
		}
	}
	if target == "" {
		t.Fatal("bootstrap node has no TCP address")
	}
	// A proxy to the bootstrap node that holds its first connection
	// without a byte (a handshake that never finishes) and forwards the
	// later ones.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.Map
	var accepted atomic.Int32
	stop := servetest.TCP(ln, func(c net.Conn) {
		conns.Store(c, true)
		if accepted.Add(1) == 1 {
			_, _ = io.Copy(io.Discard, c) // stalled: held open, never answered
			return
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		conns.Store(up, true)
		defer up.Close()
		done := make(chan struct{})
		go func() { defer close(done); _, _ = io.Copy(up, c); _ = up.Close() }()
		_, _ = io.Copy(c, up)
		_ = c.Close()
		<-done
	})
	t.Cleanup(func() {
		_ = ln.Close()
		conns.Range(func(k, _ any) bool { _ = k.(net.Conn).Close(); return true })
		stop()
	})
	proxy, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/" + portOf(t, ln.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	n := loopbackNode(t, []peer.AddrInfo{{ID: boot.ID(), Addrs: []ma.Multiaddr{proxy}}}, DHTServer)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap after one stalled handshake: %v", err)
	}
	if accepted.Load() < 2 {
		t.Fatalf("the proxy saw %d connections, want a retry after the stalled one", accepted.Load())
	}
}

func portOf(t *testing.T, a net.Addr) string {
	t.Helper()
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}
