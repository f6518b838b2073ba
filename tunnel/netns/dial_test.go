package netns

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/servetest"
)

// TestDialerAndListen: a listener made by Listen inside b is reached by a
// dial made inside a, and not by one made inside b's unlinked twin (whose
// namespace has no route to it).
func TestDialerAndListen(t *testing.T) {
	a, b, lone := New(t, "da"), New(t, "db"), New(t, "dl")
	Link(t, a, "va", "192.0.2.1/24", b, "vb", "192.0.2.2/24")
	ln := b.Listen("tcp", "192.0.2.2:0")
	defer servetest.TCP(ln, func(c net.Conn) { _, _ = c.Write([]byte("hello")) })()
	ctx := context.Background()
	c, err := a.Dialer(5*time.Second)(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial from a: %v", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != "hello" {
		t.Fatalf("read %q %v, want hello", got, err)
	}
	if c, err := lone.Dialer(time.Second)(ctx, "tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("a namespace without a link reached the listener")
	}
}
