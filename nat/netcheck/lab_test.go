package netcheck

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/natlab"
)

// TestLab checks the mapping behaviour behind the lab's real nftables
// routers: masquerade keeps one mapping for every destination, a
// fully-random masquerade makes a new one per destination, a router that
// drops UDP lets no answer back.
func TestLab(t *testing.T) {
	lab := natlab.New(t)
	const port = 3478
	var servers []string
	for _, name := range []string{"stuna", "stunb"} {
		h := lab.PublicHost(name)
		conn, err := h.ListenUDP(port)
		if err != nil {
			t.Fatal(err)
		}
		serveSTUN(t, conn, nil)
		servers = append(servers, netip.AddrPortFrom(h.Addr, port).String())
	}
	for _, c := range []struct {
		kind natlab.Kind
		want string
	}{
		{natlab.EndpointIndependent, EndpointIndependent},
		{natlab.Symmetric, EndpointDependent},
		{natlab.UDPBlocked, UDPBlocked},
	} {
		t.Run(c.kind.String(), func(t *testing.T) {
			site := lab.Site("n"+strconv.Itoa(int(c.kind)), c.kind)
			conn, err := site.Host.ListenUDP(0)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// The lab's internet (25.0.0.0/16) is public to addrs.Remote.
			r, err := Check(context.Background(), Config{Servers: servers, Conn: conn, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if r.Behavior != c.want {
				t.Fatalf("behaviour %s, want %s (%+v)", r.Behavior, c.want, r.Answers)
			}
			if c.want != UDPBlocked && r.Public.Addr() != site.WAN {
				t.Fatalf("public address %v, want the site's WAN %v", r.Public, site.WAN)
			}
		})
	}
}
