package natlab

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/testenv"
)

// TestUPnPRouter shows that the lab's UPnP router is a working IGD: a
// mapping made with miniupnpc's reference client opens the router's WAN
// port to the host, and removing it closes the port again.
func TestUPnPRouter(t *testing.T) {
	if err := testenv.ToolsError("upnpc"); err != nil {
		testenv.SkipOrFail(t, "the UPnP lab test needs Debian's miniupnpc: %v", err)
	}
	lab := New(t)
	site := lab.Site("up", UPnP)
	site.StartUPnP(t)
	stranger := lab.PublicHost("stranger")

	const port = 51820
	conn, err := site.Host.ListenUDP(port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wan := netip.AddrPortFrom(site.WAN, port)
	// Each probe comes from a fresh socket: a packet refused before the
	// mapping leaves a conntrack entry that a real router would keep
	// using for that exact flow.
	reaches := func() bool {
		sc, err := stranger.ListenUDP(0)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		if _, err := sc.WriteToUDPAddrPort([]byte("hello"), wan); err != nil {
			t.Fatal(err)
		}
		return recvWithin(conn, 300*time.Millisecond)
	}
	if reaches() {
		t.Fatal("the router's port was open before any mapping")
	}

	out := site.Host.NS.MustRun("upnpc", "-e", "natlab", "-a", site.Host.Addr.String(), "51820", "51820", "UDP", "60")
	if !strings.Contains(out, "ExternalIPAddress = "+site.WAN.String()) {
		t.Fatalf("the IGD does not report the router's WAN address %v:\n%s", site.WAN, out)
	}
	if !reaches() {
		t.Fatalf("mapped %v, but a packet to it did not reach the host:\n%s", wan, out)
	}
	site.Host.NS.MustRun("upnpc", "-d", "51820", "UDP")
	if reaches() {
		t.Fatal("the port stayed open after the mapping was removed")
	}
}
