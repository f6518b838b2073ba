package netns

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestHubLabRoutes: the consumer reaches the internet host through the
// hub, and the internet host sees the consumer's own address.
func TestHubLabRoutes(t *testing.T) {
	l := NewHubLab(t, "hl")
	ln := l.Inet.Listen("tcp", InetAddr+":0")
	from := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			from <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	c, err := l.Cons.Dialer(5*time.Second)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("consumer to internet: %v", err)
	}
	c.Close()
	select {
	case f := <-from:
		if !strings.HasPrefix(f, ConsAddr+":") {
			t.Fatalf("internet host saw %s, want the consumer's %s", f, ConsAddr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("internet host accepted nothing")
	}
}
