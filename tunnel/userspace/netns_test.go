package userspace

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
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

// serveHTTP serves h over HTTP on addr inside ns until the test ends.
func serveHTTP(t *testing.T, ns *netns.NS, addr string, h http.HandlerFunc) {
	t.Helper()
	ln := ns.Listen("tcp", addr)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
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

	serveHTTP(t, inet, "198.51.100.1:8080", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "public hello from "+r.RemoteAddr)
	})
	// A listener on the provider's own egress address, which must stay unreachable.
	prov.Listen("tcp", "198.51.100.2:8081")

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

// TestExitDeniesAddressAddedAfterStart: an address the provider gains
// while its exit runs (DHCP, a new interface) becomes unreachable for
// consumers: the exit re-reads the provider namespace's addresses. The
// provider itself reaches a server on the new address (control); through
// the tunnel it is refused and counted, while the internet host stays
// reachable. With the addresses read only at start this fails: the new
// address stays reachable through the tunnel.
func TestExitDeniesAddressAddedAfterStart(t *testing.T) {
	prov := netns.New(t, "usaddr")
	inet := netns.New(t, "usainet")
	netns.Link(t, prov, "eth0", "198.51.100.2/24", inet, "eth0", "198.51.100.1/24")
	serve := func(ns *netns.NS, addr string) {
		serveHTTP(t, ns, addr, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello from "+addr)
		})
	}
	serve(inet, "198.51.100.1:8080")

	pol, err := tunnel.NewExitPolicy(tunnel.PolicyConfig{InterfaceAddrs: true, ListAddrs: func() (addrs []netip.Addr, err error) {
		err = prov.Do(func() (err error) { addrs, err = tunnel.HostAddrs(); return err })
		return addrs, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pol.OwnAddrs(), netip.MustParseAddr("198.51.100.2")) {
		t.Fatalf("policy own addresses %v lack the provider namespace's 198.51.100.2", pol.OwnAddrs())
	}
	p := newPair(t, pol, netip.AddrPort{}, 0, func(c *ExitConfig) {
		c.Dialer = nsDialer{prov}
		c.AddrPollInterval = 50 * time.Millisecond
	})
	hc := socksClient(p)
	hc.Timeout = 10 * time.Second
	get := func(url string) (string, error) {
		resp, err := hc.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if body, err := get("http://198.51.100.1:8080/"); err != nil || body != "hello from 198.51.100.1:8080" {
		t.Fatalf("internet host through the tunnel: %q %v", body, err)
	}

	// The provider gains an address after its exit started.
	const added = "198.51.100.50"
	prov.MustRun("ip", "addr", "add", added+"/32", "dev", "eth0")
	serve(prov, added+":8082")
	if err := prov.Do(func() error {
		c, err := net.DialTimeout("tcp", added+":8082", 3*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("control: the provider cannot reach its new address: %v", err)
	}
	before := p.exit.Blocked()
	deadline := time.Now().Add(10 * time.Second)
	reached := 0
	for {
		body, err := get("http://" + added + ":8082/")
		if err != nil && p.exit.Blocked() > before {
			break // refused by the policy
		}
		if err == nil {
			reached++
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provider's new address %s is still not refused through the tunnel (reached %d times; last %q, %v); policy own addresses %v", added, reached, body, err, pol.OwnAddrs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body, err := get("http://198.51.100.1:8080/"); err != nil || body != "hello from 198.51.100.1:8080" {
		t.Fatalf("internet host after the address change: %q %v", body, err)
	}
}
