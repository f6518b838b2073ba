package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/natlab"
	"github.com/openmyst/openmyst/relay"
	"github.com/openmyst/openmyst/tunnel"
)

// TestLabAdvertiseRefresh: behind an endpoint-independent NAT a provider
// finds its endpoint with one relay's two STUN ports (the router's address and the
// WireGuard port), behind a symmetric NAT it finds none; when the
// router's public address changes (a new lease) the refresh advertises
// the new address (session answers through the exit's Endpoint, the
// exit policy denies it) and tells the operator.
func TestLabAdvertiseRefresh(t *testing.T) {
	lab := natlab.New(t)
	stunHost := lab.PublicHost("astun")
	// One relay: its UDP port and its alternate STUN port are the two
	// destinations.
	var s *relay.Server
	if err := stunHost.NS.Do(func() (err error) {
		s, err = relay.Start(relay.Config{UDP: ":3478", STUNAlt: ":3479", PublicIP: stunHost.Addr, Secret: []byte(labRelaySecret), Logger: slog.New(slog.DiscardHandler)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	servers := []string{fmt.Sprintf("%s:3478", stunHost.Addr), fmt.Sprintf("%s:3479", stunHost.Addr)}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	find := func(site *natlab.Site) (f *endpointFinder, ep AdvertisedEndpoint) {
		f = &endpointFinder{wgPort: 51820, servers: servers}
		if err := site.Host.NS.Do(func() error { ep = f.find(ctx); return nil }); err != nil {
			t.Fatal(err)
		}
		return f, ep
	}

	sym := lab.Site("asym", natlab.Symmetric)
	if _, ep := find(sym); ep.Source != EndpointNone || ep.Addr.Addr() != sym.WAN {
		t.Fatalf("behind a symmetric NAT: %s, want none static at %s", ep, sym.WAN)
	}

	site := lab.Site("aeim", natlab.EndpointIndependent)
	f, ep := find(site)
	if want := netip.AddrPortFrom(site.WAN, 51820); ep.Source != EndpointSTUN || ep.Addr != want {
		t.Fatalf("behind an endpoint-independent NAT: %s, want %s from STUN", ep, want)
	}
	policy, err := tunnel.NewExitPolicy(tunnel.PolicyConfig{ExtraDenied: []netip.Addr{ep.Addr.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	progress := make(chan string, 4)
	p := &Provider{finder: f, epExit: newEndpointExit(nil, ep.Addr), ExitPolicy: policy, log: slog.New(slog.DiscardHandler),
		cfg: ProviderConfig{Progress: func(s string) { progress <- s }}}
	p.Exit = p.epExit
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = site.Host.NS.Do(func() error { p.refreshEndpoint(rctx, 100*time.Millisecond); return nil })
	}()
	defer func() { stop(); <-done }()

	// The router's new public address; masquerade forgets the old
	// mappings with the old address.
	next := netip.MustParseAddr("25.0.200.7")
	site.Router.MustRun("sysctl", "-qw", "net.ipv4.conf.wan0.promote_secondaries=1")
	site.Router.MustRun("ip", "addr", "add", next.String()+"/16", "dev", "wan0")
	site.Router.MustRun("ip", "addr", "del", site.WAN.String()+"/16", "dev", "wan0")
	site.Router.MustRun("ip", "route", "replace", "default", "via", natlab.InternetGateway.String())
	want := netip.AddrPortFrom(next, 51820)
	select {
	case line := <-progress:
		if line != "wireguard endpoint: "+want.String()+" (stun, endpoint-independent)" {
			t.Fatalf("told %q, want the new endpoint %s", line, want)
		}
	case <-ctx.Done():
		t.Fatalf("the new address was never advertised (still %s)", p.Exit.Endpoint())
	}
	if p.Exit.Endpoint() != want || p.AdvertisedEndpoint().Addr != want {
		t.Fatalf("sessions are told %s, want %s", p.Exit.Endpoint(), want)
	}
	if !slices.Contains(policy.OwnAddrs(), next) {
		t.Fatalf("the exit policy does not deny the new address: %v", policy.OwnAddrs())
	}
}
