package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/servetest"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln := servetest.ListenTCP(t)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	t.Cleanup(func() {
		c.Close()
		if s != nil {
			s.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// spliced starts Splice between two loopback pairs and returns their
// outer ends and a channel closed when Splice returns.
func spliced(t *testing.T, ctx context.Context, toB CopyFunc) (x, y *net.TCPConn, done chan struct{}) {
	t.Helper()
	done = make(chan struct{})
	t.Cleanup(func() { <-done }) // runs last: after the pairs are closed
	x, a := tcpPair(t)
	b, y := tcpPair(t)
	go func() { defer close(done); Splice(ctx, a, b, toB, nil) }()
	return x, y, done
}

func TestSpliceHalfCloses(t *testing.T) {
	x, y, done := spliced(t, context.Background(), nil)
	x.SetDeadline(time.Now().Add(10 * time.Second))
	y.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := x.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	x.CloseWrite()
	got, err := io.ReadAll(y) // EOF only once Splice half-closed b
	if err != nil || string(got) != "ping" {
		t.Fatalf("y read %q, %v; want ping, EOF", got, err)
	}
	// The other direction still carries data after the half-close.
	if _, err := y.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	y.CloseWrite()
	if got, err = io.ReadAll(x); err != nil || string(got) != "pong" {
		t.Fatalf("x read %q, %v; want pong, EOF", got, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Splice did not return after both directions ended")
	}
}

func TestSpliceCopyFailureClosesBoth(t *testing.T) {
	failed := func(io.Writer, io.Reader) error { return errors.New("boom") }
	x, y, done := spliced(t, context.Background(), failed)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Splice did not return after a copy failed")
	}
	for _, c := range []*net.TCPConn{x, y} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("an outer end still open after a copy failed")
		}
	}
}

func TestSpliceContextEndClosesBoth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	x, _, done := spliced(t, ctx, nil)
	x.CloseWrite() // half-closed, the far side silent: only ctx ends it
	select {
	case <-done:
		t.Fatal("Splice returned while the far side was still open")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Splice did not return when ctx ended")
	}
}
