package userspace

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// nsDialer creates every host-side socket inside a network namespace.
type nsDialer struct{ ns *netns.NS }

func (d nsDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := d.ns.Do(func() error {
		var dd net.Dialer
		var err error
		c, err = dd.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// TestPublicDestinationInNamespace checks the default policy end to end:
// the exit egresses from a "provider" namespace linked to an "internet"
// namespace whose server has a public-range address (198.51.100.1,
// TEST-NET-2, not in any deny list). With no operator allow rule the
// server is reachable, while the provider's own egress address is not.
// Needs root; skips with the reason otherwise (CI runs it).
func TestPublicDestinationInNamespace(t *testing.T) {
	prov := netns.New(t, "usprov")
	inet := netns.New(t, "usinet")
	netns.Link(t, prov, "eth0", "198.51.100.2/24", inet, "eth0", "198.51.100.1/24")

	var ln net.Listener
	if err := inet.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "198.51.100.1:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "public hello from "+r.RemoteAddr)
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	// A listener on the provider's own egress address, which must stay unreachable.
	var own net.Listener
	if err := prov.Do(func() error {
		var err error
		own, err = net.Listen("tcp", "198.51.100.2:8081")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer own.Close()

	pol, err := tunnel.NewExitPolicy(tunnel.PolicyConfig{OwnAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.2")}})
	if err != nil {
		t.Fatal(err)
	}
	p := newPair(t, pol, netip.AddrPort{}, 0, func(c *ExitConfig) { c.Dialer = nsDialer{prov} })
	hc := socksClient(p)
	hc.Timeout = 10 * time.Second
	resp, err := hc.Get("http://198.51.100.1:8080/")
	if err != nil {
		t.Fatalf("public destination: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "public hello from 198.51.100.2:"; len(b) < len(want) || string(b[:len(want)]) != want {
		t.Fatalf("body %q", b)
	}
	if resp, err := hc.Get("http://198.51.100.2:8081/"); err == nil {
		resp.Body.Close()
		t.Fatal("provider's own address reached through the tunnel")
	}
	if p.exit.Blocked() != 1 {
		t.Fatalf("blocked %d, want 1", p.exit.Blocked())
	}
}
