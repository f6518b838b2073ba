package p2p

import (
	"net/netip"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestRelayConnLimits: relayed connections are counted against the
// relay's IP address. Through a configured relay a node opens many more
// than libp2p's 8 per address (the NAT lab's consumers were refused with
// "connections per ip limit exceeded" before); any other address keeps
// libp2p's limit.
func TestRelayConnLimits(t *testing.T) {
	relay := ma.StringCast("/ip4/25.0.0.12/tcp/4001")
	id, err := peer.Decode("12D3KooWGd9vrbodEC6tSTq1KSNBww1fv7ZxjEQsUNgdRNEn2XEn")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Bootstrap: []peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{relay}}}}
	if got := relayIPs(cfg); len(got) != 1 || got[0] != netip.MustParseAddr("25.0.0.12") {
		t.Fatalf("relay IPs %v", got)
	}
	opt, err := resourceManager(relayIPs(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var lc libp2p.Config
	if err := lc.Apply(opt); err != nil {
		t.Fatal(err)
	}
	rm := lc.ResourceManager
	defer rm.Close()
	open := func(addr string, n int) int {
		ok := 0
		for range n {
			s, err := rm.OpenConnection(network.DirOutbound, false, ma.StringCast(addr))
			if err == nil {
				ok++
				defer s.Done()
			}
		}
		return ok
	}
	circuit := "/ip4/25.0.0.12/tcp/4001/p2p/12D3KooWGd9vrbodEC6tSTq1KSNBww1fv7ZxjEQsUNgdRNEn2XEn/p2p-circuit"
	if got := open(circuit, 40); got != 40 {
		t.Fatalf("%d of 40 relayed connections through the configured relay opened", got)
	}
	if got := open("/ip4/25.0.0.99/tcp/4001", 20); got != 8 {
		t.Fatalf("%d of 20 connections to another address opened, want libp2p's 8", got)
	}
}
