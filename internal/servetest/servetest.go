// Package servetest holds the small servers tests run beside the code
// under test: a loop that answers every UDP datagram a socket receives,
// the loopback UDP and TCP echoes, a TCP forwarder and a listener that only counts
// what it accepts. Each runs until the test ends (or its listener is
// closed). It imports only the standard library, so every layer's tests
// may use it.
package servetest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// UDP answers every datagram pc receives with reply(data, from), sending
// nothing when reply returns nil, until the test ends: cleanup closes pc
// and waits for the loop. data is only valid during the call.
func UDP(tb testing.TB, pc net.PacketConn, reply func(data []byte, from net.Addr) []byte) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := reply(buf[:n], from); out != nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	tb.Cleanup(func() { pc.Close(); <-done })
}

// ListenUDP listens for UDP on 127.0.0.1 at a free port, failing tb if it
// cannot.
func ListenUDP(tb testing.TB) *net.UDPConn {
	tb.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	return pc
}

// UDPEcho serves UDP on 127.0.0.1 until the test ends and answers every
// datagram with "echo:" followed by the datagram.
func UDPEcho(tb testing.TB) *net.UDPConn {
	tb.Helper()
	pc := ListenUDP(tb)
	UDP(tb, pc, func(data []byte, _ net.Addr) []byte {
		return append([]byte("echo:"), data...)
	})
	return pc
}

// Forward copies every TCP connection ln accepts to and from a new
// connection to target, half-closing each direction as it ends, until ln
// is closed. It blocks; run it in a goroutine.
func Forward(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer u.Close()
			go func() { _, _ = io.Copy(u, c); _ = u.(*net.TCPConn).CloseWrite() }()
			_, _ = io.Copy(c, u)
		}()
	}
}

// TCP runs handle on every connection ln accepts, each in its own
// goroutine, and closes the connection when handle returns. stop closes
// ln and waits for every handler to return.
func TCP(ln net.Listener, handle func(net.Conn)) (stop func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return func() { ln.Close(); wg.Wait() }
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago
// (nothing listens on it when it returns: a dead address, or a port to
// give a server that binds it itself).
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln := ListenTCP(tb)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ListenTCP listens for TCP on 127.0.0.1 at a free port, failing tb if
// it cannot.
func ListenTCP(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// TCPEcho serves TCP on 127.0.0.1 until the test ends and echoes every
// connection back to itself; cleanup closes the listener and waits for
// every connection to end.
func TCPEcho(tb testing.TB) *net.TCPAddr {
	tb.Helper()
	ln := ListenTCP(tb)
	tb.Cleanup(TCP(ln, func(c net.Conn) { _, _ = io.Copy(c, c) }))
	return ln.Addr().(*net.TCPAddr)
}

// CountAccepts accepts connections on ln until it is closed, closing each
// at once, and returns the count so far.
func CountAccepts(ln net.Listener) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	return &n
}
