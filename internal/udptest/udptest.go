// Package udptest serves UDP in tests: a loop that answers every datagram
// a socket receives until the test ends, and the echo server several
// tunnel and proxy tests send their datagrams to. It imports only the
// standard library, so every layer's tests may use it.
package udptest

import (
	"net"
	"testing"
)

// Serve answers every datagram pc receives with reply(data, from), sending
// nothing when reply returns nil, until the test ends: cleanup closes pc
// and waits for the loop. data is only valid during the call.
func Serve(tb testing.TB, pc net.PacketConn, reply func(data []byte, from net.Addr) []byte) {
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

// Listen listens for UDP on 127.0.0.1 at a free port, failing tb if it
// cannot.
func Listen(tb testing.TB) *net.UDPConn {
	tb.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	return pc
}

// Echo serves UDP on 127.0.0.1 until the test ends and answers every
// datagram with "echo:" followed by the datagram.
func Echo(tb testing.TB) *net.UDPConn {
	tb.Helper()
	pc := Listen(tb)
	Serve(tb, pc, func(data []byte, _ net.Addr) []byte {
		return append([]byte("echo:"), data...)
	})
	return pc
}
