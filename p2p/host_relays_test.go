package p2p

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestStaticRelays: a NATed node's static relays are its Relays, then its
// bootstrap peers, each peer once.
func TestStaticRelays(t *testing.T) {
	ids := []peer.ID{"relay", "boot-relay", "boot"}
	got := StaticRelays(Config{
		Relays:    []peer.AddrInfo{{ID: ids[0]}, {ID: ids[1]}},
		Bootstrap: []peer.AddrInfo{{ID: ids[1]}, {ID: ids[2]}},
	})
	if len(got) != 3 || got[0].ID != ids[0] || got[1].ID != ids[1] || got[2].ID != ids[2] {
		t.Fatalf("static relays %v, want %v", got, ids)
	}
	if got := StaticRelays(Config{}); len(got) != 0 {
		t.Fatalf("no peers: %v", got)
	}
}
