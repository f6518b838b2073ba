package node

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/nat/portmap"
	"github.com/openmyst/openmyst/tunnel"
)

// TestPortMapsFeedPolicyAndMux: a mapping (and a renewal that moved the
// router's address) reaches the exit policy's denied addresses and the
// ICE mux's announced address; a mapping of the mux's port to another
// external port stops the announcement (the candidate would name a port
// nothing forwards).
func TestPortMapsFeedPolicyAndMux(t *testing.T) {
	policy, err := tunnel.NewExitPolicy(tunnel.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	mux, err := ice.ListenMux(netip.MustParseAddrPort("127.0.0.1:0"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	port := mux.Port()
	pm := &portMaps{log: slog.New(slog.DiscardHandler), current: map[uint16]portmap.Mapping{}}
	adv := netip.MustParseAddr("25.0.0.9")
	pm.attach(policy, mux, []netip.Addr{adv})
	web := func(a string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(a), 80) }
	if !policy.Allowed(web("25.18.0.1"), tunnel.ProtoTCP) || policy.Allowed(web(adv.String()), tunnel.ProtoTCP) {
		t.Fatal("before any mapping: want only the advertised address denied")
	}
	if mux.External().IsValid() {
		t.Fatalf("mux announced %v before any mapping", mux.External())
	}
	mapping := func(ext string, extPort uint16) portmap.Mapping {
		return portmap.Mapping{Method: portmap.MethodUPnP, Protocol: portmap.UDP,
			Internal: netip.AddrPortFrom(netip.MustParseAddr("192.168.1.2"), port), External: netip.AddrPortFrom(netip.MustParseAddr(ext), extPort)}
	}
	pm.update(port, mapping("25.18.0.1", port))
	if policy.Allowed(web("25.18.0.1"), tunnel.ProtoTCP) || policy.Allowed(web(adv.String()), tunnel.ProtoTCP) {
		t.Fatal("the mapped and the advertised address must be denied on the exit")
	}
	if got, want := mux.External(), netip.AddrPortFrom(netip.MustParseAddr("25.18.0.1"), port); got != want {
		t.Fatalf("mux announces %v, want %v", got, want)
	}
	// The router's address changed at a renewal.
	pm.update(port, mapping("25.18.0.7", port))
	if !policy.Allowed(web("25.18.0.1"), tunnel.ProtoTCP) || policy.Allowed(web("25.18.0.7"), tunnel.ProtoTCP) {
		t.Fatal("after the renewal: want the new mapped address denied and the old one allowed")
	}
	if got := mux.External().Addr(); got != netip.MustParseAddr("25.18.0.7") {
		t.Fatalf("mux announces %v after the renewal", got)
	}
	if m, ok := pm.mapping(port); !ok || m.External.Addr() != netip.MustParseAddr("25.18.0.7") || len(pm.list()) != 1 {
		t.Fatalf("mapping %v %v, list %v", m, ok, pm.list())
	}
	// Another external port: nothing to announce.
	pm.update(port, mapping("25.18.0.8", port+1))
	if got := mux.External(); got.IsValid() {
		t.Fatalf("mux announces %v for a mapping to another port", got)
	}
}

// TestReachableAdvertise: only addresses a consumer elsewhere can reach
// count as an operator's public address.
func TestReachableAdvertise(t *testing.T) {
	for a, want := range map[string]bool{"127.0.0.1": false, "192.168.1.2": false, "10.0.0.1": false, "169.254.169.254": false,
		"0.0.0.0": false, "25.0.0.9": true, "203.0.114.5": true, "::1": false, "2001:4860::1": true} {
		if got := reachableAdvertise(netip.MustParseAddr(a)); got != want {
			t.Errorf("reachableAdvertise(%s) = %v, want %v", a, got, want)
		}
	}
}
