package p2p

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestPublicAddrs(t *testing.T) {
	const relay = "/ip4/25.0.0.1/tcp/4001/p2p/12D3KooWGRUVh2JvvH2B5Dg2H7DHhr8f5YgPQhrLMXi9TjBdPjYp"
	in := []string{
		"/ip4/127.0.0.1/tcp/4001",
		"/ip4/192.168.1.2/udp/4001/quic-v1",
		"/ip4/10.0.0.2/tcp/4001",
		"/ip4/169.254.1.1/tcp/4001",
		"/ip4/198.18.0.5/tcp/4001",
		"/ip6/::1/tcp/4001",
		"/ip6/fe80::1/tcp/4001",
		"/ip6/fd00::1/tcp/4001",
		"/ip4/25.0.0.9/tcp/4001",
		"/ip4/25.0.0.9/udp/4001/quic-v1",
		"/ip6/2a00:1450::1/tcp/4001",
		relay + "/p2p-circuit",
		"/ip4/192.168.1.1/tcp/4001/p2p/12D3KooWGRUVh2JvvH2B5Dg2H7DHhr8f5YgPQhrLMXi9TjBdPjYp/p2p-circuit",
	}
	want := map[string]bool{
		"/ip4/25.0.0.9/tcp/4001":         true,
		"/ip4/25.0.0.9/udp/4001/quic-v1": true,
		"/ip6/2a00:1450::1/tcp/4001":     true,
		relay + "/p2p-circuit":           true,
	}
	var addrs []ma.Multiaddr
	for _, s := range in {
		addrs = append(addrs, ma.StringCast(s))
	}
	got := PublicAddrs(addrs)
	if len(got) != len(want) {
		t.Fatalf("kept %v, want %d addresses", got, len(want))
	}
	for _, a := range got {
		if !want[a.String()] {
			t.Errorf("kept %s", a)
		}
	}
}
