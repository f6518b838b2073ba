package network

import (
	"slices"
	"testing"

	"github.com/openmyst/openmyst/chain"
)

// TestFlagValuesPortMap: a network turns port mapping on outside dev
// chains (like --p2p.public-addrs-only) and leaves it off on a devnet.
func TestFlagValuesPortMap(t *testing.T) {
	for _, tc := range []struct {
		def, want string
	}{{validDev, "false"}, {validProd, "true"}} {
		n, err := Decode([]byte(tc.def))
		if err != nil {
			t.Fatal(err)
		}
		v := FlagValues(n, true, false)
		if v[PortMapFlag] != tc.want || v[PublicAddrsOnlyFlag] != tc.want {
			t.Fatalf("network %s: --%s=%q --%s=%q, want %s", n.Name, PortMapFlag, v[PortMapFlag], PublicAddrsOnlyFlag, v[PublicAddrsOnlyFlag], tc.want)
		}
	}
}

// TestFlagValuesRPC: --chain.rpc gets every RPC URL of the network, in
// order, as the comma-separated list chain.DialRPC fails over between.
func TestFlagValuesRPC(t *testing.T) {
	n, err := Decode([]byte(validProd))
	if err != nil {
		t.Fatal(err)
	}
	got := chain.SplitRPCURLs(FlagValues(n, true, false)["chain.rpc"])
	if !slices.Equal(got, n.RPC) || len(got) != 2 {
		t.Fatalf("--chain.rpc lists %q, want %q", got, n.RPC)
	}
}
