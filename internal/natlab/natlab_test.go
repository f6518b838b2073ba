package natlab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/servetest"
)

// TestNATKinds checks that every kind of router in the lab translates and
// filters as its documentation says: the mapping a host gets towards
// several destinations from one socket, and whether an unsolicited packet
// from a third host reaches it.
func TestNATKinds(t *testing.T) {
	lab := New(t)
	const port = 3478
	var refl []netip.AddrPort
	for _, name := range []string{"ra", "rb", "rc"} {
		h := lab.PublicHost(name)
		r, err := h.StartReflector(port)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		refl = append(refl, netip.AddrPortFrom(h.Addr, port))
	}
	stranger := lab.PublicHost("stranger")

	for _, kind := range Kinds {
		t.Run(kind.String(), func(t *testing.T) {
			const hostPort = 51820
			site := lab.Site("s"+kind.String()[:3], kind, WithForward(hostPort))
			conn, err := site.Host.ListenUDP(hostPort)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()

			var seen []netip.AddrPort
			for _, to := range refl {
				wait := 2 * time.Second
				if kind == UDPBlocked {
					wait = 600 * time.Millisecond
				}
				ap, err := Reflect(conn, to, wait)
				if kind == UDPBlocked {
					if !errors.Is(err, ErrNoReply) {
						t.Fatalf("UDP went through a UDP-blocking router: %v %v", ap, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("reflect via %s: %v", to, err)
				}
				if ap.Addr() != site.WAN {
					t.Fatalf("reflector saw %v, want the site's WAN address %v", ap.Addr(), site.WAN)
				}
				seen = append(seen, ap)
			}
			switch kind {
			case UDPBlocked:
				// Only TCP leaves the site.
				th := lab.PublicHost("tcp")
				ln, err := th.Listen(8080)
				if err != nil {
					t.Fatal(err)
				}
				defer servetest.TCP(ln, func(c net.Conn) { _, _ = c.Write([]byte("ok")) })()
				c, err := site.Host.DialTCP(netip.AddrPortFrom(th.Addr, 8080), 2*time.Second)
				if err != nil {
					t.Fatalf("TCP out of a UDP-blocking site: %v", err)
				}
				defer c.Close()
				buf := make([]byte, 2)
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
					t.Fatalf("TCP read: %q %v", buf, err)
				}
				return
			case Symmetric:
				if seen[0] == seen[1] && seen[1] == seen[2] {
					t.Fatalf("symmetric NAT gave one mapping to three destinations: %v", seen)
				}
				return
			default:
				for _, ap := range seen[1:] {
					if ap != seen[0] {
						t.Fatalf("endpoint-independent mapping changed with the destination: %v", seen)
					}
				}
			}

			// Unsolicited inbound from a host the site never talked to.
			sc, err := stranger.ListenUDP(0)
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			if _, err := sc.WriteToUDPAddrPort([]byte("hello"), seen[0]); err != nil {
				t.Fatal(err)
			}
			got := recvWithin(conn, 500*time.Millisecond)
			wantIn := kind == Public || kind == FullCone || kind == Forwarded
			if got != wantIn {
				t.Fatalf("unsolicited inbound to %v reached the host: %v, want %v", seen[0], got, wantIn)
			}
		})
	}
}

func recvWithin(c *net.UDPConn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	_ = c.SetReadDeadline(time.Time{})
	return err == nil && string(buf[:n]) == "hello"
}

// TestGatewayMACStays: hosts and sites joining the internet bridge do not
// change the MAC address behind InternetGateway (a bridge without a set
// address takes its lowest port's, which left every router's ARP entry
// for the gateway stale and its relay unreachable for seconds).
func TestGatewayMACStays(t *testing.T) {
	lab := New(t)
	mac := func() string {
		t.Helper()
		return strings.TrimSpace(lab.Internet().MustRun("cat", "/sys/class/net/br0/address"))
	}
	want := mac()
	for i, kind := range []Kind{Public, EndpointIndependent, Symmetric, FullCone, Public, DoubleNAT, Public, Symmetric} {
		if kind == Public {
			lab.PublicHost(fmt.Sprintf("mh%d", i))
		} else {
			lab.Site(fmt.Sprintf("ms%d", i), kind)
		}
		if got := mac(); got != want {
			t.Fatalf("after attaching %d hosts/sites the gateway's MAC is %s, was %s", i+1, got, want)
		}
	}
}
