package consumer

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/market"
)

func TestControlAddrsOfNonLibp2pStream(t *testing.T) {
	if got := controlAddrs(struct{}{}); got != nil {
		t.Fatalf("controlAddrs(non-stream) = %v, want nil", got)
	}
}

func TestControlAddrsOfMultiaddrs(t *testing.T) {
	got := MultiaddrControlAddrs([]string{
		"/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWAj4mZnrM1kJ9Xa1EcY1Zy3Zt5wJXQd5mA4XmZ2mHcdMp",
		"/ip4/10.0.0.1/tcp/4001",             // duplicate
		"/ip6/2001:db8::1/udp/4001/quic-v1",  // UDP
		"/dns4/example.org/tcp/4001",         // needs DNS: not a literal
		"/ip4/10.0.0.3/tcp/4001/p2p-circuit", // relayed
		"/ip4/10.0.0.4/tcp/0",                // no port
		"not a multiaddr",
	})
	want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:4001"), netip.MustParseAddrPort("[2001:db8::1]:4001")}
	if !slices.Equal(got, want) {
		t.Fatalf("MultiaddrControlAddrs = %v, want %v", got, want)
	}
	p := market.Proposal{Addrs: []string{"/ip4/192.0.2.7/tcp/5000", "/ip4/192.0.2.7/udp/5000/quic-v1"}}
	want = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:5000")}
	if got := ProposalControlAddrs(p); len(got) != 1 || got[0] != want[0] {
		// TCP and UDP on the same port are one AddrPort: the kill switch
		// rule admits both protocols.
		t.Fatalf("ProposalControlAddrs = %v, want %v", got, want)
	}
}

func TestJoinAddrsUnmapsAndDrops(t *testing.T) {
	got := JoinAddrs(
		[]netip.AddrPort{netip.MustParseAddrPort("[::ffff:10.0.0.1]:80"), {}},
		[]netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.1:0")},
	)
	if len(got) != 1 || got[0] != netip.MustParseAddrPort("10.0.0.1:80") {
		t.Fatalf("JoinAddrs = %v", got)
	}
}

// TestResumeAddrs: what a resume may dial, as a kill switch admits it:
// a circuit address is its relay's transport address, loopback and
// link-local addresses are left out (the kill switch never needs them),
// duplicates go, and the list is bounded however many addresses the
// provider's peer names.
func TestResumeAddrs(t *testing.T) {
	const relay = "12D3KooWAj4mZnrM1kJ9Xa1EcY1Zy3Zt5wJXQd5mA4XmZ2mHcdMp"
	var in []ma.Multiaddr
	for _, s := range []string{
		"/ip4/25.0.0.7/tcp/4001/p2p/" + relay + "/p2p-circuit",
		"/ip4/192.0.2.7/tcp/5000",
		"/ip4/192.0.2.7/udp/5000/quic-v1", // same address and port
		"/ip4/127.0.0.1/tcp/4001",
		"/ip6/fe80::1/tcp/4001",
		"/ip4/0.0.0.0/tcp/4001",
		"/ip6/2001:db8::1/tcp/4002",
	} {
		in = append(in, ma.StringCast(s))
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("25.0.0.7:4001"), netip.MustParseAddrPort("192.0.2.7:5000"),
		netip.MustParseAddrPort("[2001:db8::1]:4002")}
	if got := ResumeAddrs(in); !slices.Equal(got, want) {
		t.Fatalf("ResumeAddrs = %v, want %v", got, want)
	}
	var many []ma.Multiaddr
	for i := range 3 * MaxResumeAddrs {
		many = append(many, ma.StringCast(fmt.Sprintf("/ip4/192.0.2.%d/tcp/4001", i+1)))
	}
	if got := ResumeAddrs(many); len(got) != MaxResumeAddrs || got[0] != netip.MustParseAddrPort("192.0.2.1:4001") {
		t.Fatalf("ResumeAddrs of %d addresses = %v, want the first %d", len(many), got, MaxResumeAddrs)
	}
}
