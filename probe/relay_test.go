package probe

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

// A node that advertises only a circuit address (behind NAT, with a relay
// reservation) is reached through the relay: path "relay". (On loopback
// autorelay does not reserve, the relay having no public address, so the
// test reserves and advertises the circuit itself.)
func TestReachableThroughRelay(t *testing.T) {
	relay := newHost(t, libp2p.EnableRelayService(relayv2.WithInfiniteLimits()), libp2p.ForceReachabilityPublic())
	ri := peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}
	circuit := ma.Join(relay.Addrs()[0], ma.StringCast("/p2p/"+relay.ID().String()+"/p2p-circuit"))
	h := newHost(t, libp2p.EnableRelay(), libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return []ma.Multiaddr{circuit} }))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Connect(ctx, ri); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, h, ri); err != nil {
		t.Fatal(err)
	}
	cs := checkers(t, 2, Config{AllowPrivate: true})
	// Checkers dial circuits only through relays they know at that
	// address (on a network: the bootstrap/relay nodes they are connected
	// to).
	for _, c := range cs {
		if err := c.Connect(ctx, ri); err != nil {
			t.Fatal(err)
		}
	}
	req := newService(t, h, Config{})
	connectCheckers(t, req, cs...)
	rep, err := req.CheckSelf(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reachable != 2 {
		t.Fatalf("reachable from %d of 2: %+v", rep.Reachable, rep.Results)
	}
	for _, r := range rep.Results {
		if r.Path != PathRelay {
			t.Errorf("path %q, want relay: %+v", r.Path, r)
		}
	}
}
