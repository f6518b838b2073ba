package consumer

import (
	"net/netip"
	"slices"
	"testing"

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
