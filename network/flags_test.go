package network

import "testing"

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
