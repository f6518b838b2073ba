package network

import (
	"slices"
	"testing"

	"github.com/spf13/pflag"

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

// TestRPCFlag: --chain.rpc repeats and takes comma-separated lists; the
// first use replaces the default; a config file's array (pflag.SliceValue)
// and the network's value (FlagValues) set the same list.
func TestRPCFlag(t *testing.T) {
	var rpc string
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.Var(RPCFlag(&rpc, "http://127.0.0.1:8545"), "chain.rpc", "")
	if rpc != "http://127.0.0.1:8545" {
		t.Fatalf("default %q", rpc)
	}
	if err := fs.Parse([]string{"--chain.rpc", "https://a", "--chain.rpc=https://b, https://c"}); err != nil {
		t.Fatal(err)
	}
	if rpc != "https://a,https://b,https://c" {
		t.Fatalf("repeated flag: %q", rpc)
	}
	sv := fs.Lookup("chain.rpc").Value.(pflag.SliceValue)
	if err := sv.Replace([]string{"https://x", "https://y"}); err != nil || rpc != "https://x,https://y" || len(sv.GetSlice()) != 2 {
		t.Fatalf("replace: %q %v", rpc, err)
	}
	for _, bad := range []string{"", " , ", "https://a b"} {
		if err := fs.Set("chain.rpc", bad); err == nil {
			t.Errorf("Set(%q) accepted: %q", bad, rpc)
		}
	}
}
