package node

import (
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"github.com/openmyst/openmyst/p2p"
)

// TestHostIPs: a host listening on loopback reports 127.0.0.1 once, and
// never the unspecified address.
func TestHostIPs(t *testing.T) {
	n, err := p2p.New(p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, DHTMode: p2p.DHTClient, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ips := HostIPs(n.Host)
	if !slices.Equal(ips, []netip.Addr{netip.MustParseAddr("127.0.0.1")}) {
		t.Fatalf("HostIPs = %v, want [127.0.0.1]", ips)
	}
}
