package natlab

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/servetest"
)

// TestDelay: SetDelay delays every packet between two attached namespaces
// by the delay once each way (with netem, or the delay lines where the
// kernel has none): a UDP round trip between public hosts, from behind a
// NAT and from behind a routed (UPnP) router's NAT, and to a site attached
// after SetDelay, takes at least twice the delay (a lower bound only: the
// delay may not be missing; how much longer a loaded machine takes is not
// asserted). A bulk TCP transfer (offloaded 64 KiB segments on veth)
// arrives whole, and after SetDelay(0) the links still carry traffic.
func TestDelay(t *testing.T) {
	lab := New(t)
	const port = 3478
	srv := lab.PublicHost("dsrv")
	r, err := srv.StartReflector(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	to := netip.AddrPortFrom(srv.Addr, port)
	clients := map[string]*Host{"public": lab.PublicHost("dpub2"), "eim": lab.Site("deim", EndpointIndependent).Host, "upnp": lab.Site("dupnp", UPnP).Host}

	const d = 20 * time.Millisecond
	if err := lab.SetDelay(d); err != nil {
		t.Fatal(err)
	}
	clients["late"] = lab.Site("dlate", Symmetric).Host
	// The best of five round trips, each from a fresh socket: a reply to
	// an earlier probe's retry never ends a later probe.
	rtt := func(h *Host) time.Duration {
		t.Helper()
		best := time.Hour
		for i := range 6 {
			c, err := h.ListenUDP(0)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = Reflect(c, to, 5*time.Second)
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 { // the first resolves ARP
				best = min(best, time.Since(start))
			}
		}
		return best
	}
	check := func(name string, h *Host) {
		t.Helper()
		if got := rtt(h); got < 2*d {
			t.Errorf("%s: round trip %s with a %s one-way delay, want at least %s", name, got, d, 2*d)
		}
	}
	for name, h := range clients {
		check(name, h)
	}

	// Bulk TCP from the server to a public host, through two lines.
	ln, err := srv.Listen(8080)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 8<<20)
	_, _ = rand.Read(payload)
	defer servetest.TCP(ln, func(c net.Conn) { _, _ = c.Write(payload) })()
	c, err := clients["public"].DialTCP(netip.AddrPortFrom(srv.Addr, 8080), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("bulk TCP through the delay: %d of %d bytes, %v", len(got), len(payload), err)
	}

	// A delay set before anything is attached (as TestNATLabPaidSession
	// does with MYST_NATLAB_DELAY) holds for what is attached after.
	first := New(t)
	if err := first.SetDelay(d); err != nil {
		t.Fatal(err)
	}
	srv2 := first.PublicHost("fsrv")
	r2, err := srv2.StartReflector(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	to = netip.AddrPortFrom(srv2.Addr, port)
	check("delay set first", first.Site("fsite", EndpointIndependent).Host)
	to = netip.AddrPortFrom(srv.Addr, port)

	if err := lab.SetDelay(0); err != nil {
		t.Fatal(err)
	}
	for name, h := range clients {
		c, err := h.ListenUDP(0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Reflect(c, to, 5*time.Second); err != nil {
			t.Errorf("%s: after SetDelay(0): %v", name, err)
		}
		c.Close()
	}
}
