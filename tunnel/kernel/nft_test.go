package kernel

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/netns"
)

func testRuleset(t *testing.T) exitRuleset {
	t.Helper()
	mustRule := func(s string) tunnel.Rule {
		r, err := tunnel.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	pol, err := tunnel.NewExitPolicy(tunnel.PolicyConfig{
		Allow:    []tunnel.Rule{mustRule("tcp:10.20.0.0/16 port 443")},
		Deny:     []tunnel.Rule{mustRule("tcp:0.0.0.0/0 port 25"), mustRule("udp:2001:db8::/32 port 1000-2000"), mustRule("203.0.113.7"), mustRule("198.51.100.0/24 port 53")},
		OwnAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
	})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		t.Fatal(err)
	}
	v4, v6 := pool.Ranges()
	return exitRuleset{
		Table: "openmyst", Iface: "myst-exit0", Pool4: v4, Pool6: v6, Gateway: pool.Gateway(),
		DNS4: netip.MustParseAddr("192.0.2.53"), DNS6: netip.MustParseAddr("2001:db8::53"),
		Allow: pol.AllowRules(), Deny: pol.DenyRules(), DenyPrefixes: pol.DenyPrefixes(),
	}
}

func TestExitRulesetRender(t *testing.T) {
	rs := testRuleset(t)
	out, err := rs.render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"table inet openmyst {}\ndelete table inet openmyst\n",
		"10.0.0.0/8", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "224.0.0.0/4",
		"192.0.2.10/32", "2001:db8::10/128", "fc00::/7", "fe80::/10",
		`iifname "myst-exit0" jump exit_policy`,
		`ip daddr 10.20.0.0/16 tcp dport 443 accept`,
		`ip daddr 0.0.0.0/0 tcp dport 25 counter drop comment "block:operator tcp:0.0.0.0/0 port 25"`,
		`ip6 daddr 2001:db8::/32 udp dport 1000-2000 counter drop`,
		`ip daddr 203.0.113.7/32 counter drop`,
		`ip daddr 198.51.100.0/24 meta l4proto { tcp, udp } th dport 53 counter drop`,
		`ip daddr @deny4 counter drop comment "block:deny4"`,
		`oifname "myst-exit0" counter drop comment "block:peer-to-peer"`,
		`ip daddr 10.182.0.1 icmp type echo-request accept`,
		`counter drop comment "block:node"`,
		`dnat ip to 192.0.2.53`, `dnat ip6 to 2001:db8::53`,
		`oifname != "myst-exit0" ip saddr 10.182.0.0/16 masquerade`,
		`oifname != "myst-exit0" ip6 saddr fd7e:6d79:7374::/64 masquerade`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ruleset lacks %q", want)
		}
	}
	// Allow rules come before every deny rule.
	if strings.Index(out, "tcp dport 443 accept") > strings.Index(out, "block:operator") {
		t.Error("allow rule rendered after a deny rule")
	}
	if strings.Contains(out, "block:no-ipv6") {
		t.Error("IPv6 dropped although the pool has IPv6")
	}

	rs.Pool6, rs.Gateway.V6, rs.DNS6 = netip.Prefix{}, netip.Addr{}, netip.Addr{}
	out, err = rs.render()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "block:no-ipv6") || strings.Contains(out, "ip6 saddr") {
		t.Error("IPv4-only exit must drop all IPv6 and not masquerade it")
	}
}

func TestExitRulesetRejects(t *testing.T) {
	for name, mutate := range map[string]func(*exitRuleset){
		"table with quote":   func(r *exitRuleset) { r.Table = `x"; flush ruleset; "` },
		"interface too long": func(r *exitRuleset) { r.Iface = "abcdefghijklmnop" },
		"interface quote":    func(r *exitRuleset) { r.Iface = `a"b` },
		"no pool":            func(r *exitRuleset) { r.Pool4 = netip.Prefix{} },
		"v6 pool no gateway": func(r *exitRuleset) { r.Gateway.V6 = netip.Addr{} },
		"dns wrong family":   func(r *exitRuleset) { r.DNS4 = netip.MustParseAddr("::1") },
		"reversed ports": func(r *exitRuleset) {
			r.Deny = append(r.Deny, tunnel.Rule{Prefix: netip.MustParsePrefix("1.2.3.0/24"), PortMin: 9, PortMax: 3})
		},
	} {
		rs := testRuleset(t)
		mutate(&rs)
		if _, err := rs.render(); err == nil {
			t.Errorf("%s: rendered, want error", name)
		}
	}
}

func TestKillSwitchRender(t *testing.T) {
	out, err := killSwitchRuleset{Table: "openmyst_killswitch", Iface: "myst0", Endpoint: netip.MustParseAddrPort("198.51.100.1:51820")}.render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`oifname "myst0" accept`,
		`ip daddr 198.51.100.1 udp dport 51820 accept`,
		`counter reject with icmpx type admin-prohibited`,
		// Inbound: only the tunnel, replies and link housekeeping.
		"chain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tiifname \"lo\" accept\n\t\tiifname \"myst0\" accept\n\t\tct state established,related accept\n",
		`counter drop comment "killswitch-inbound"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kill switch lacks %q", want)
		}
	}
	out, err = killSwitchRuleset{Table: "ks", Iface: "myst0", Endpoint: netip.MustParseAddrPort("[2001:db8::1]:51820")}.render()
	if err != nil || !strings.Contains(out, "ip6 daddr 2001:db8::1 udp dport 51820 accept") {
		t.Errorf("IPv6 endpoint: %v\n%s", err, out)
	}
	if _, err := (killSwitchRuleset{Table: "ks", Iface: "myst0"}).render(); err == nil {
		t.Error("kill switch without endpoint rendered")
	}
	out, err = killSwitchRuleset{Table: "ks", Iface: "myst0", Endpoint: netip.MustParseAddrPort("198.51.100.1:51820"),
		Direct: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:4001"), netip.MustParseAddrPort("[2001:db8::2]:4002")}}.render()
	for _, want := range []string{"ip daddr 198.51.100.1 meta l4proto { tcp, udp } th dport 4001 accept", "ip6 daddr 2001:db8::2 meta l4proto { tcp, udp } th dport 4002 accept"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("direct destinations: %v, lacks %q\n%s", err, want, out)
		}
	}
	if _, err := (killSwitchRuleset{Table: "ks", Iface: "myst0", Endpoint: netip.MustParseAddrPort("198.51.100.1:51820"), Direct: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:0")}}).render(); err == nil {
		t.Error("kill switch with a port-0 direct destination rendered")
	}

	// Over ICE the selected path is admitted, not the static endpoint.
	out, err = killSwitchRuleset{Table: "ks", Iface: "myst0", Endpoint: netip.MustParseAddrPort("198.51.100.1:51820"), ICE: true,
		Path: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.9:40000")}}.render()
	if err != nil || !strings.Contains(out, "ip daddr 203.0.113.9 udp dport 40000 accept") || strings.Contains(out, "51820") {
		t.Errorf("ICE path: %v\n%s", err, out)
	}
	// Relayed through our TURN server (a direct destination): no UDP path.
	out, err = killSwitchRuleset{Table: "ks", Iface: "myst0", ICE: true, Direct: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:3478")}}.render()
	if err != nil || strings.Count(out, " udp dport ") != 4 { // DHCP and DHCPv6, out and in, only
		t.Errorf("ICE through TURN: %v\n%s", err, out)
	}
	if _, err := (killSwitchRuleset{Table: "ks", Iface: "myst0", ICE: true, Path: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.9:0")}}).render(); err == nil {
		t.Error("kill switch with a port-0 path destination rendered")
	}
	// While ICE checks run: UDP from and to the agent's sockets, by
	// socket mark, never by port.
	out, err = killSwitchRuleset{Table: "ks", Iface: "myst0", Hold: true, ICEChecks: true}.render()
	for _, want := range []string{`meta mark 0x6d7901ce meta l4proto udp accept comment "ice-checks"`, `meta l4proto udp socket mark 0x6d7901ce accept comment "ice-checks"`} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("ICE checks: %v, lacks %q\n%s", err, want, out)
		}
	}
	if strings.Contains(out, "sport {") || strings.Contains(out, "dport {") {
		t.Errorf("ICE checks admitted by port:\n%s", out)
	}
	if out, _ := (killSwitchRuleset{Table: "ks", Iface: "myst0", Hold: true}).render(); strings.Contains(out, "mark") {
		t.Errorf("ICE sockets admitted without checks:\n%s", out)
	}
}

// TestRulesetsLoad loads the rendered rulesets into a real kernel (inside
// a namespace) so nft's own parser and the kernel validate them.
func TestRulesetsLoad(t *testing.T) {
	testenv.RequireTools(t, "nft")
	ns := netns.New(t, "nft")
	rs := testRuleset(t)
	out, err := rs.render()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := killSwitchRuleset{Table: "openmyst_killswitch", Iface: "myst0", Endpoint: netip.MustParseAddrPort("198.51.100.1:51820"), Direct: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:4001")}}.render()
	if err != nil {
		t.Fatal(err)
	}
	hold, err := killSwitchRuleset{Table: "openmyst_killswitch", Iface: "myst0", Hold: true, Direct: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:4001")}, ICEChecks: true}.render()
	if err != nil {
		t.Fatal(err)
	}
	for i, script := range []string{out, out, ks, hold, ks, renderPeerLimit("openmyst", tunnel.PublicKey{1}, []netip.Prefix{netip.MustParsePrefix("10.182.0.2/32"), netip.MustParsePrefix("fd7e:6d79:7374::2/128")}, 125000)} {
		if err := ns.Nft(t.Context(), script); err != nil {
			t.Fatalf("script %d: %v\n%s", i, err, script)
		}
	}
	list := ns.MustRun("nft", "-j", "list", "table", "inet", "openmyst")
	n, err := sumBlocked([]byte(list), blockComment)
	if err != nil || n != 0 {
		t.Fatalf("fresh table blocked count = %d, %v", n, err)
	}
	if got := strings.Count(ns.MustRun("nft", "list", "chain", "inet", "openmyst", "peer_limits"), "limit rate over"); got != 4 {
		t.Fatalf("peer limit rules = %d, want 4", got)
	}
	// Replacing the deny sets (the policy's own addresses changed): the
	// new address is in, the dropped one is out, overlap with a default
	// prefix is accepted, and the peer limits are untouched.
	deny := append(tunnel.DefaultDenyPrefixes(), netip.MustParsePrefix("203.0.113.77/32"), netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("2001:db8::77/128"))
	for i := 0; i < 2; i++ { // twice: reloading the same content is fine too
		if err := ns.Nft(t.Context(), renderDenySets("openmyst", deny)); err != nil {
			t.Fatalf("deny set reload: %v", err)
		}
	}
	set4, set6 := ns.MustRun("nft", "list", "set", "inet", "openmyst", "deny4"), ns.MustRun("nft", "list", "set", "inet", "openmyst", "deny6")
	if !strings.Contains(set4, "203.0.113.77") || strings.Contains(set4, "192.0.2.10") || !strings.Contains(set4, "10.0.0.0/8") ||
		!strings.Contains(set6, "2001:db8::77") || strings.Contains(set6, "2001:db8::10") {
		t.Fatalf("deny sets after the reload:\n%s\n%s", set4, set6)
	}
	if got := strings.Count(ns.MustRun("nft", "list", "chain", "inet", "openmyst", "peer_limits"), "limit rate over"); got != 4 {
		t.Fatalf("peer limit rules after the deny set reload = %d, want 4", got)
	}
}

const sampleList = `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
{"table": {"family": "inet", "name": "openmyst", "handle": 1}},
{"rule": {"family": "inet", "table": "openmyst", "chain": "exit_policy", "handle": 9, "comment": "block:deny4", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@deny4"}}, {"counter": {"packets": 7, "bytes": 420}}, {"drop": null}]}},
{"rule": {"family": "inet", "table": "openmyst", "chain": "exit_input", "handle": 12, "comment": "block:node", "expr": [{"counter": {"packets": 5, "bytes": 300}}, {"drop": null}]}},
{"rule": {"family": "inet", "table": "openmyst", "chain": "forward", "handle": 4, "comment": "inbound-new", "expr": [{"counter": {"packets": 100, "bytes": 6000}}, {"drop": null}]}}]}`

func TestSumBlocked(t *testing.T) {
	n, err := sumBlocked([]byte(sampleList), blockComment)
	if err != nil || n != 12 {
		t.Fatalf("sumBlocked = %d, %v; want 12", n, err)
	}
	for _, bad := range []string{``, `{`, `{"nftables": [{"rule": 5}]}`, `{"nftables": [{"rule": {"comment": "block:x", "expr": [{"counter": {"packets": -1}}]}}]}`} {
		if _, err := sumBlocked([]byte(bad), blockComment); err == nil {
			t.Errorf("sumBlocked(%q) accepted", bad)
		}
	}
}

func FuzzSumBlocked(f *testing.F) {
	f.Add([]byte(sampleList))
	f.Add([]byte(`{"nftables": []}`))
	f.Add([]byte(`{"nftables": [{"rule": {"comment": "block:", "expr": [{"counter": {"packets": 18446744073709551615}}]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n1, err1 := sumBlocked(b, blockComment)
		n2, err2 := sumBlocked(b, blockComment)
		if n1 != n2 || (err1 == nil) != (err2 == nil) {
			t.Fatal("sumBlocked is not deterministic")
		}
		if err1 != nil && n1 != 0 {
			t.Fatal("error with a non-zero count")
		}
	})
}

func TestValidNames(t *testing.T) {
	for _, ok := range []string{"myst0", "myst-exit0", "a.b_c"} {
		if err := validIfName(ok); err != nil {
			t.Errorf("validIfName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "0123456789abcdef", "a b", `a"`, "a/b"} {
		if validIfName(bad) == nil {
			t.Errorf("validIfName(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "1abc", "a-b", "a b"} {
		if validTableName(bad) == nil {
			t.Errorf("validTableName(%q) accepted", bad)
		}
	}
}

func TestParseListenPort(t *testing.T) {
	p, err := parseListenPort("private_key=00\nlisten_port=51820\nfwmark=0\n")
	if err != nil || p != 51820 {
		t.Fatalf("parseListenPort = %d, %v", p, err)
	}
	for _, bad := range []string{"", "listen_port=70000\n", "listen_port=x\n"} {
		if _, err := parseListenPort(bad); err == nil {
			t.Errorf("parseListenPort(%q) accepted", bad)
		}
	}
}

func TestOffloadRender(t *testing.T) {
	rs := testRuleset(t)
	rs.Offload = []string{"myst-exit0", "eth0"}
	out, err := rs.render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"flowtable ft {",
		`devices = { "myst-exit0", "eth0" }`,
		`ip saddr != @limited4 ip daddr != @limited4 flow add @ft`,
		`ip6 saddr != @limited6 ip6 daddr != @limited6 flow add @ft`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("offload ruleset lacks %q", want)
		}
	}
	// Offload happens before the exit policy verdicts end evaluation.
	if strings.Index(out, "flow add @ft") > strings.Index(out, "jump exit_policy") {
		t.Error("flow add rendered after the jump to exit_policy")
	}
	rs.Offload = []string{`eth0"`}
	if _, err := rs.render(); err == nil {
		t.Error("bad offload device name rendered")
	}
	lim := renderPeerLimit("openmyst", tunnel.PublicKey{1}, []netip.Prefix{netip.MustParsePrefix("10.182.0.2/32")}, 1000)
	if !strings.Contains(lim, "add element inet openmyst limited4 { 10.182.0.2 }") {
		t.Errorf("peer limit does not exclude the peer from offload:\n%s", lim)
	}
}

func TestKillSwitchPortMapRules(t *testing.T) {
	gw := netip.MustParseAddr("192.168.1.1")
	out, err := killSwitchRuleset{Table: "ks", Iface: "myst0", Hold: true, PortMapGateway: gw}.render()
	for _, want := range []string{
		`meta mark 0x6d7901cf ip daddr 239.255.255.250 udp dport 1900 accept comment "portmap"`,
		`meta mark 0x6d7901cf ip daddr 192.168.1.1 meta l4proto tcp accept comment "portmap"`,
		`ip saddr 192.168.1.1 meta l4proto udp socket mark 0x6d7901cf accept comment "portmap"`,
	} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("port mapping: %v, lacks %q\n%s", err, want, out)
		}
	}
	if out, _ := (killSwitchRuleset{Table: "ks", Iface: "myst0", Hold: true}).render(); strings.Contains(out, "portmap") {
		t.Errorf("port mapping admitted without a gateway:\n%s", out)
	}
	for _, bad := range []string{"2001:db8::1", "0.0.0.0", "239.255.255.250"} {
		if _, err := (killSwitchRuleset{Table: "ks", Iface: "myst0", Hold: true, PortMapGateway: netip.MustParseAddr(bad)}).render(); err == nil {
			t.Errorf("port-mapping gateway %s rendered", bad)
		}
	}
}
