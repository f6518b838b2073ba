package netcheck

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/natlab"
	"github.com/openmyst/openmyst/relay"
)

// labCase is a lab site's NAT kind and the behaviour a check must find.
type labCase struct {
	kind natlab.Kind
	want string
}

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
	checkLab(t, lab, servers, []labCase{
		{natlab.EndpointIndependent, EndpointIndependent},
		{natlab.Symmetric, EndpointDependent},
		{natlab.UDPBlocked, UDPBlocked},
	})
}

// TestLabOneRelay: a single relay's two STUN ports (its UDP port and its
// alternate STUN port, relay.Config.STUNAlt) are two destinations enough
// to tell the mapping: a fully-random masquerade gives the second port
// another mapping, masquerade (also behind a carrier-grade NAT) the
// same one.
func TestLabOneRelay(t *testing.T) {
	lab := natlab.New(t)
	h := lab.PublicHost("relay")
	var r *relay.Server
	if err := h.NS.Do(func() (err error) {
		r, err = relay.Start(relay.Config{UDP: h.Addr.String() + ":3478", STUNAlt: h.Addr.String() + ":3479",
			PublicIP: h.Addr, Secret: []byte("natlab-relay-secret-0123456789ab"), Logger: slog.New(slog.DiscardHandler)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	servers := []string{r.Addrs().UDP.String(), r.Addrs().STUNAlt.String()}
	checkLab(t, lab, servers, []labCase{
		{natlab.EndpointIndependent, EndpointIndependent},
		{natlab.DoubleNAT, EndpointIndependent},
		{natlab.Symmetric, EndpointDependent},
	})
}

// checkLab runs a check from a site of each case's kind against servers.
func checkLab(t *testing.T, lab *natlab.Lab, servers []string, cases []labCase) {
	t.Helper()
	for _, c := range cases {
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
