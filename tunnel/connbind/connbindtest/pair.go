// Package connbindtest has test helpers for code that carries WireGuard
// over connections (tunnel/connbind).
package connbindtest

import (
	"net"
	"testing"
)

// UDPPair returns two connected UDP sockets on loopback: datagram
// connections like ICE's, each the other's peer. They are closed when the
// test ends.
func UDPPair(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	la, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	lb, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		la.Close()
		tb.Fatal(err)
	}
	a, b := la.LocalAddr().(*net.UDPAddr), lb.LocalAddr().(*net.UDPAddr)
	la.Close()
	lb.Close()
	ca, err := net.DialUDP("udp4", a, b)
	if err != nil {
		tb.Fatal(err)
	}
	cb, err := net.DialUDP("udp4", b, a)
	if err != nil {
		ca.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}
