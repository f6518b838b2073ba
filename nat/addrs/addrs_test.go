package addrs

import (
	"net/netip"
	"testing"
)

func TestRemote(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		private bool
		want    bool
	}{
		{"25.0.0.7", false, true}, {"2001:db8::1", false, true},
		{"127.0.0.1", false, false}, {"127.0.0.1", true, true}, {"::1", true, true},
		{"::ffff:127.0.0.1", false, false},
		{"10.1.2.3", false, false}, {"192.168.1.1", false, false}, {"fd00::1", false, false}, {"10.1.2.3", true, true},
		{"169.254.169.254", true, false}, {"fe80::1", true, false},
		{"0.0.0.0", true, false}, {"::", true, false},
		{"224.0.0.1", true, false}, {"ff02::1", true, false}, {"255.255.255.255", true, false},
	} {
		if got := Remote(netip.MustParseAddr(tc.addr), tc.private); got != tc.want {
			t.Errorf("Remote(%s, private=%v) = %v, want %v", tc.addr, tc.private, got, tc.want)
		}
	}
}

func TestPublic(t *testing.T) {
	for a, want := range map[string]bool{
		"25.0.0.7": true, "2001:db8::1": true, "100.63.255.255": true, "100.128.0.1": true,
		"100.64.0.1": false, "100.127.255.254": false, "::ffff:100.64.1.2": false,
		"10.1.2.3": false, "127.0.0.1": false, "169.254.169.254": false, "0.0.0.0": false,
	} {
		if got := Public(netip.MustParseAddr(a)); got != want {
			t.Errorf("Public(%s) = %v, want %v", a, got, want)
		}
	}
}
