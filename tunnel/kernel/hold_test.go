package kernel

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestHoldKillSwitchRender(t *testing.T) {
	out, err := killSwitchRuleset{Table: "ks", Iface: "myst0", Hold: true,
		Direct: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:4001")}}.render()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "udp dport 51820") || strings.Contains(out, "invalid") {
		t.Errorf("held kill switch admits an endpoint:\n%s", out)
	}
	for _, want := range []string{
		`oifname "myst0" accept`,
		"ip daddr 198.51.100.7 meta l4proto { tcp, udp } th dport 4001 accept",
		"counter reject with icmpx type admin-prohibited",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("held kill switch lacks %q:\n%s", want, out)
		}
	}
	if _, err := (killSwitchRuleset{Table: "ks", Iface: "myst0", Hold: true,
		Direct: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:0")}}).render(); err == nil {
		t.Error("held kill switch with a port-0 destination rendered")
	}
}

func TestCheckCapEff(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   error
		fails  bool
	}{
		{"Name:\tx\nCapEff:\t000001ffffffffff\n", nil, false},
		{"CapEff:\t0000000000001000\n", nil, false},
		{"CapEff:\t0000000000000000\n", ErrNoNetAdmin, true},
		{"CapEff:\t0000000000000fff\n", ErrNoNetAdmin, true},
		{"CapEff:\tzz\n", nil, true},
		{"Name:\tx\n", nil, true},
	} {
		err := checkCapEff(tc.status)
		if (err != nil) != tc.fails || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("checkCapEff(%q) = %v, want %v (fails %v)", tc.status, err, tc.want, tc.fails)
		}
	}
}
