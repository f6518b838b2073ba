package node

import (
	"strings"
	"testing"
)

// TestRPCControlAddrs: the chain RPC URL becomes the control destinations
// kept outside the tunnel.
func TestRPCControlAddrs(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want []string
		err  bool
	}{
		{url: "http://10.0.0.1:8545", want: []string{"10.0.0.1:8545"}},
		{url: "https://[2001:db8::1]/rpc", want: []string{"[2001:db8::1]:443"}},
		{url: "ws://192.0.2.1", want: []string{"192.0.2.1:80"}},
		{url: "/var/lib/geth/geth.ipc"},
		{url: "ftp://192.0.2.1"},
		{url: "http://10.0.0.1:0", err: true},
		{url: "http://10.0.0.1:99999", err: true},
		// Several (--chain.rpc with failover): every one stays reachable.
		{url: "http://10.0.0.1:8545, https://192.0.2.7", want: []string{"10.0.0.1:8545", "192.0.2.7:443"}},
		{url: "http://10.0.0.1:8545,http://10.0.0.1:0", err: true},
	} {
		got, err := RPCControlAddrs(t.Context(), tc.url)
		if (err != nil) != tc.err {
			t.Errorf("%s: err = %v, want error %v", tc.url, err, tc.err)
			continue
		}
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		if strings.Join(s, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: %v, want %v", tc.url, s, tc.want)
		}
	}
	// A host name is resolved now, before the kill switch is up.
	got, err := RPCControlAddrs(t.Context(), "http://localhost:8545")
	if err != nil || len(got) == 0 || !got[0].Addr().IsLoopback() || got[0].Port() != 8545 {
		t.Fatalf("localhost: %v, %v", got, err)
	}
}
