package tequilapi

import (
	"bytes"
	"strings"
	"testing"
)

func TestConnectionStatusPrint(t *testing.T) {
	st := ConnectionStatus{Provider: "0xabc", Country: "DE", Path: "static", Running: true, State: "held", Spent: "1000000000000000000",
		RatePerHour: "x", Mode: ModeTun, PublicIP: "198.51.100.4", PublicIPCheck: "matches_tunnel_peer", Interface: "myst0", DNS: DNSCustom, DNSServers: []string{"192.0.2.77"},
		KillSwitch: &KillSwitchStatus{Setting: KillSwitchAlways, Active: true, Exemptions: []string{"udp 10.99.0.1:51820"}}}
	var b bytes.Buffer
	if err := st.Print(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"held", "mode", "tun (myst0", "custom 192.0.2.77", "always, active true, exempt: udp 10.99.0.1:51820", "1 MYST", "x per hour", "198.51.100.4 (matches_tunnel_peer)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
	if c := st.Connected(); !strings.Contains(c, "whole device through myst0, kill switch always, DNS custom") {
		t.Errorf("connected line %q", c)
	}
	if strings.Contains(b.String(), "seen by stun") {
		t.Errorf("a status without a STUN answer shows one:\n%s", b.String())
	}
	st.PublicIPSeen, st.PublicIPCheck = "198.51.100.9", "differs_from_stun"
	b.Reset()
	if err := st.Print(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"198.51.100.4 (differs_from_stun)", "seen by stun  198.51.100.9"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
	st.Mode, st.SOCKS = ModeProxy, "127.0.0.1:1080"
	if c := st.Connected(); !strings.Contains(c, "SOCKS5 proxy on 127.0.0.1:1080") {
		t.Errorf("proxy connected line %q", c)
	}
}
