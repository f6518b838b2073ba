package node

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/nat/netcheck"
	"github.com/openmyst/openmyst/nat/portmap"
	"github.com/openmyst/openmyst/tunnel"
)

// TestChooseEndpoint: the advertised endpoint comes from the router's
// mapping, else from STUN where the NAT maps endpoint-independently, else
// from a public interface; an endpoint-dependent mapping or blocked UDP
// leaves no static endpoint.
func TestChooseEndpoint(t *testing.T) {
	ap := netip.MustParseAddrPort
	pub := netip.MustParseAddr("25.0.0.9")
	host := netip.MustParseAddr("192.168.1.2")
	stun := func(b string, public string) netcheck.Result {
		r := netcheck.Result{Behavior: b}
		if public != "" {
			r.Public = ap(public)
		}
		return r
	}
	for _, tc := range []struct {
		name       string
		in         endpointInputs
		want       string
		wantSource string
	}{
		{"mapped", endpointInputs{mapped: portmap.Mapping{External: ap("25.18.0.3:51820")}, mappedOK: true,
			stun: stun(netcheck.EndpointDependent, "25.18.0.3:40000"), stunOK: true, stunPort: 51820}, "25.18.0.3:51820", EndpointPortMap},
		{"mapped to another port: STUN decides", endpointInputs{mapped: portmap.Mapping{External: ap("25.18.0.3:1234")}, mappedOK: true,
			stun: stun(netcheck.EndpointIndependent, "25.18.0.3:51820"), stunOK: true, stunPort: 51820}, "25.18.0.3:51820", EndpointSTUN},
		{"mapped to a private address (a router behind a CGNAT)", endpointInputs{mapped: portmap.Mapping{External: ap("100.64.1.2:51820")}, mappedOK: true,
			stun: stun(netcheck.EndpointIndependent, "25.0.0.7:51820"), stunOK: true, stunPort: 51820}, "25.0.0.7:51820", EndpointSTUN},
		{"no NAT", endpointInputs{stun: stun(netcheck.None, "25.0.0.9:51820"), stunOK: true, stunPort: 51820}, "25.0.0.9:51820", EndpointSTUN},
		{"endpoint-independent", endpointInputs{stun: stun(netcheck.EndpointIndependent, "25.0.0.7:51820"), stunOK: true, stunPort: 51820}, "25.0.0.7:51820", EndpointSTUN},
		{"endpoint-independent, another port", endpointInputs{stun: stun(netcheck.EndpointIndependent, "25.0.0.7:1025"), stunOK: true, stunPort: 51820}, "25.0.0.7:1025", EndpointSTUN},
		{"endpoint-dependent", endpointInputs{stun: stun(netcheck.EndpointDependent, "25.0.0.8:33333"), stunOK: true, stunPort: 51820, public: pub}, "25.0.0.8:51820", EndpointNone},
		{"one server, port kept", endpointInputs{stun: stun(netcheck.Unknown, "25.0.0.7:51820"), stunOK: true, stunPort: 51820}, "25.0.0.7:51820", EndpointSTUN},
		{"one server, port moved", endpointInputs{stun: stun(netcheck.Unknown, "25.0.0.7:40001"), stunOK: true, stunPort: 51820}, "25.0.0.7:51820", EndpointNone},
		{"UDP blocked", endpointInputs{stun: stun(netcheck.UDPBlocked, ""), stunOK: true, stunPort: 51820, fallback: host}, "192.168.1.2:51820", EndpointNone},
		{"UDP blocked on a public host", endpointInputs{stun: stun(netcheck.UDPBlocked, ""), stunOK: true, stunPort: 51820, public: pub, fallback: pub}, "25.0.0.9:51820", EndpointInterface},
		{"no STUN server, public interface", endpointInputs{public: pub, fallback: pub}, "25.0.0.9:51820", EndpointInterface},
		{"nothing", endpointInputs{fallback: host}, "192.168.1.2:51820", EndpointNone},
		{"STUN sees a private address (no server on the internet)", endpointInputs{stun: stun(netcheck.None, "192.168.1.2:51820"), stunOK: true, stunPort: 51820, fallback: host}, "192.168.1.2:51820", EndpointNone},
		// Refreshes run from another socket: the port found at start
		// stays, the address follows the NAT.
		{"refresh: new address", endpointInputs{stun: stun(netcheck.EndpointIndependent, "25.0.0.99:40000"), stunOK: true, stunPort: 40000,
			prev: AdvertisedEndpoint{Addr: ap("25.0.0.7:1025"), Source: EndpointSTUN}}, "25.0.0.99:1025", EndpointSTUN},
		{"refresh: now endpoint-dependent", endpointInputs{stun: stun(netcheck.EndpointDependent, "25.0.0.99:40000"), stunOK: true, stunPort: 40001,
			prev: AdvertisedEndpoint{Addr: ap("25.0.0.7:51820"), Source: EndpointSTUN}}, "25.0.0.99:51820", EndpointNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.wgPort = 51820
			got := chooseEndpoint(tc.in)
			if got.Addr.String() != tc.want || got.Source != tc.wantSource {
				t.Fatalf("got %s, want %s from %s", got, tc.want, tc.wantSource)
			}
			if got.Source == EndpointNone && !strings.HasPrefix(got.String(), "none static") {
				t.Fatalf("String() = %q", got)
			}
		})
	}
}

// TestAdvertiseOptions: --wg.advertise auto asks the provider to find the
// endpoint; an address or auto only.
func TestAdvertiseOptions(t *testing.T) {
	o := ServeOptions{ExitMode: "userspace", PriceHour: "0", PriceGiB: "0", Advertise: AdvertiseAuto, WGPort: 51820}
	cfg, err := o.Config()
	if err != nil || !cfg.AdvertiseAuto || cfg.AdvertiseAddr.IsValid() {
		t.Fatalf("auto: %+v %v", cfg.AdvertiseAddr, err)
	}
	o.Advertise = "25.0.0.9"
	if cfg, err = o.Config(); err != nil || cfg.AdvertiseAuto || cfg.AdvertiseAddr.String() != "25.0.0.9" {
		t.Fatalf("address: %v %v", cfg.AdvertiseAddr, err)
	}
	o.Advertise = "mine"
	if _, err = o.Config(); err == nil || !strings.Contains(err.Error(), `"auto"`) {
		t.Fatalf("bad address: %v", err)
	}
}

// TestEndpointExit: the wrapped exit answers the endpoint it was last
// given and still attaches connections.
func TestEndpointExit(t *testing.T) {
	var e tunnel.Exit = newEndpointExit(nil, netip.MustParseAddrPort("25.0.0.9:51820"))
	if _, ok := e.(tunnel.ConnAttacher); !ok {
		t.Fatal("the wrapped exit does not attach connections")
	}
	x := e.(*endpointExit)
	next := netip.MustParseAddrPort("25.0.0.10:51820")
	x.ep.Store(&next)
	if e.Endpoint() != next {
		t.Fatalf("endpoint %s, want %s", e.Endpoint(), next)
	}
	if err := x.AttachConn(tunnel.PublicKey{}, nil); err == nil {
		t.Fatal("attached to an exit that cannot")
	}
}
