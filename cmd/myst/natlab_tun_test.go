package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/openmyst/openmyst/internal/natlab"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// natLabTunLeaks is the nftables table, on a consumer site's router,
// that counts what the consumer host sends outside its tunnel.
const natLabTunLeaks = "omt_tun_leak"

// TestNATLabTun runs the whole-device VPN in the NAT lab with `myst`
// processes: `myst daemon` (root) behind one NAT asked by `myst connect
// --tun` for a `myst service` behind another, on the lab's hub (see
// TestNATLabPaidSession). Pairs:
//
//   - a symmetric consumer and an endpoint-independent provider, and an
//     endpoint-independent consumer and a symmetric provider: ICE's
//     checks alone cannot find a direct pair (each side's router filters
//     by address and port, and the symmetric side's ports are
//     unpredictable), so the path is direct only when the session punches
//     (nat/punch) under the kill switch, its punch sockets admitted by
//     their socket mark.
//   - a consumer behind a UPnP router (miniupnpd) with `myst daemon
//     --portmap` and a symmetric provider, with one STUN destination
//     (no punching): direct only when the daemon maps its ICE port in
//     tun mode too (NAT-PMP through the kill switch, which admits the
//     router's NAT-PMP port); the mapping is on the router while
//     connected and gone after the disconnect.
//   - the same behind a router that speaks UPnP IGD only (miniupnpd
//     with NAT-PMP/PCP off): the mapping is made through UPnP, whose
//     SSDP search and HTTP to the router the kill switch admits from
//     the port-mapping client's marked sockets (kernel.PortMapMark).
//
// The two port-mapping consumers connect with the kill switch always;
// mid-connection their daemon is killed with -9 and restarted, and the
// resumed connection maps the ICE port again and is direct again
// (resumeNATLabTun).
//
// Each pair connects over the expected path, fetches a page through the
// tunnel (bytes compared), and while probes in the consumer's namespace
// try to leak (TCP to the web server and to a non-exempt port of the
// hub, DNS to the hub), nftables counters on the consumer's router count
// every packet the consumer host sends that is neither for the hub (its
// control destinations) nor for the provider's site (the session's
// path and control connection; TCP to the private libp2p address its
// dev-chain proposal advertises, which the held kill switch admits as it
// admits a proposal's addresses), every DNS packet and every packet to the
// hub's probe port: zero from the moment the kill switch is up until the
// disconnect (through a crash and resume), after which the kill switch is
// gone.
func TestNATLabTun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet, myst services and tun-mode myst daemons in the NAT lab")
	}
	testenv.RequireNetns(t)
	testenv.RequireTUN(t)
	testenv.RequireTools(t, "nft")
	start := time.Now()
	lab := natlab.New(t)
	hubHost := lab.PublicHost("th")
	webHost := lab.PublicHost("tw")
	body := []byte(strings.Repeat("openmyst whole device through two NATs ", 5000))
	serveWebLog(t, webHost.NS, webHost.Addr.String()+":80", body)

	pairs := []struct {
		name       string
		cons, prov natlab.Kind
		upnpOnly   bool // the consumer's router speaks UPnP IGD, not NAT-PMP
	}{
		{"symmetric-consumer/eim-provider", natlab.Symmetric, natlab.EndpointIndependent, false},
		{"eim-consumer/symmetric-provider", natlab.EndpointIndependent, natlab.Symmetric, false},
		{"upnp-portmap-consumer/symmetric-provider", natlab.UPnP, natlab.Symmetric, false},
		{"upnp-only-portmap-consumer/symmetric-provider", natlab.UPnP, natlab.Symmetric, true},
	}
	ctx, cancel := context.WithTimeout(context.Background(), natLabHubLife-30*time.Second)
	defer cancel()
	dir := t.TempDir()
	pf := passFile(t, "natlab-e2e")
	ks := keystore.NewKeyStore(filepath.Join(dir, "ks"), keystore.LightScryptN, keystore.LightScryptP)
	_, st, ice := startNATLabHub(ctx, t, hubHost, dir, len(pairs))
	t.Logf("hub ready after %s", time.Since(start).Round(100*time.Millisecond))
	provs, conss := make([]*natLabNode, len(pairs)), make([]*natLabNode, len(pairs))
	for i, pr := range pairs {
		provs[i], conss[i] = natLabImport(t, ks, pf, "provider", i, pr.prov), natLabImport(t, ks, pf, "consumer", i, pr.cons)
		provs[i].site = lab.Site(fmt.Sprintf("tp%d", i), pr.prov)
		conss[i].site = lab.Site(fmt.Sprintf("tc%d", i), pr.cons)
		p, c := provs[i], conss[i]
		p.proc = p.site.Host.NS.Start("env", mystArgv(append(natLabServiceArgs(p, st, pf), ice...)...)...)
		args := append(natLabDaemonArgs(c, st, pf), "--tun.resolv-conf", writeTunResolv(t, t.TempDir()))
		cice := ice // the hub's two STUN destinations tell the consumer's mapping: it punches
		if c.kind == natlab.UPnP {
			// One STUN destination: no punching, only the mapped port.
			if pr.upnpOnly {
				c.site.StartUPnP(t, natlab.UPnPOnly)
			} else {
				c.site.StartUPnP(t)
			}
			args = append(args, "--portmap")
			cice = withoutFlag(ice, "--ice.server", fmt.Sprintf("stun:%s:%d", hubHost.Addr, natLabSTUNAlt))
		}
		c.argv = mystArgv(append(args, cice...)...)
		c.proc = c.site.Host.NS.Start("env", c.argv...)
	}
	for i := range pairs {
		waitOutput(ctx, t, provs[i].proc, "serving", "myst service behind "+provs[i].kind.String())
		waitOutput(ctx, t, conss[i].proc, "node started", "myst daemon behind "+conss[i].kind.String())
	}
	for i, pr := range pairs {
		t.Run(pr.name, func(t *testing.T) {
			runNATLabTunPair(ctx, t, conss[i], provs[i], hubHost.Addr, webHost.Addr, body, "direct", pr.upnpOnly)
		})
	}
	t.Logf("whole test %s", time.Since(start).Round(100*time.Millisecond))
}

// runNATLabTunPair connects consumer c's daemon to provider p in tun
// mode and checks the path (want), a fetch through the tunnel and that
// nothing leaked (see TestNATLabTun). upnpOnly: c's router speaks UPnP
// IGD only, so the mapping must be UPnP's.
func runNATLabTunPair(ctx context.Context, t *testing.T, c, p *natLabNode, hub, webAddr netip.Addr, body []byte, want string, upnpOnly bool) {
	t.Helper()
	cons := c.site.Host.NS
	dump := func() string {
		return fmt.Sprintf("--- daemon (%s):\n%s\n--- service (%s):\n%s", c.kind, tail(c.proc.Output(), 80), p.kind, tail(p.proc.Output(), 60))
	}
	cli := func(args ...string) (string, error) {
		return cons.Run(ctx, "env", mystArgv(append([]string{"--data-dir", c.dd, "--tequilapi.port", "4050"}, args...)...)...)
	}
	// Until AutoNAT has found the provider private its proposal lists no
	// address the consumer can dial: wait in proxy mode, unmeasured (a
	// failed tun connect takes its kill switch down again).
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		out, err := cli("connect", p.addr, "--proxy", "127.0.0.1:1080")
		if err == nil && strings.Contains(out, "connected to") {
			if _, err := cli("disconnect"); err != nil {
				t.Fatalf("myst disconnect: %v", err)
			}
			break
		}
		select {
		case <-pctx.Done():
			t.Fatalf("the provider never became reachable: %s %v\n%s", out, err, dump())
		case <-time.After(time.Second):
		}
	}

	allowed := []netip.Addr{hub, p.site.WAN}
	mapped := func() bool { return false }
	if c.kind == natlab.UPnP {
		// The router itself: the port mapping (NAT-PMP, or UPnP's HTTP;
		// its SSDP search to the multicast group is allowed apart).
		allowed = append(allowed, c.site.LAN)
		mapped = func() bool {
			r, err := c.site.Router.Run(ctx, "nft", "list", "table", "inet", "miniupnpd")
			if err != nil {
				t.Fatalf("list miniupnpd's rules: %v", err)
			}
			return strings.Contains(r, strconv.Itoa(node.DefaultConsumerICEPort))
		}
		if mapped() {
			t.Fatalf("the ICE port is mapped before the tun connection")
		}
	}
	// The provider's proposal advertises its private libp2p address too
	// (a dev-chain network does), and the held kill switch admits a
	// proposal's addresses for the session's dial: TCP there is no leak.
	advertised := netip.AddrPortFrom(p.site.Host.Addr, 4001)
	loadNATLabLeakTable(t, c.site.Router, c.site.Host.Addr, advertised, upnpOnly, allowed...)
	// The counters can see leaks: without a tunnel the probes are counted.
	pre := startNATLabTunProbes(cons, hub, webAddr)
	for pre.Rounds() < 2 {
		time.Sleep(20 * time.Millisecond)
	}
	pre.Stop()
	time.Sleep(200 * time.Millisecond)
	for name, n := range natLabLeakCounters(t, c.site.Router) {
		if n == 0 && name != "ipv6" {
			t.Fatalf("probes without a tunnel: counter %s stayed 0; the leak counters cannot see leaks", name)
		}
	}

	// The port-mapping consumers keep their connection across a crash of
	// the daemon (kill switch always): see resumeNATLabTun.
	killSwitch := "connection"
	if c.kind == natlab.UPnP {
		killSwitch = "always"
	}
	// A proposal the provider re-announced (its addresses changed) just
	// before is refused as expired until the consumer hears the new one:
	// such an attempt is repeated, and the leaks are counted afresh from
	// the kill switch of the attempt that connects.
	var base map[string]uint64
	var probes *netns.Probes
	var out string
	var connStart time.Time
	var logFrom int // the daemon's output of the tun connect starts here
	for attempt := 1; ; attempt++ {
		connStart, logFrom = time.Now(), len(c.proc.Output())
		conn := cons.Start("env", mystArgv("--data-dir", c.dd, "--tequilapi.port", "4050", "connect", p.addr, "--tun", "--dns", "system", "--kill-switch", killSwitch)...)
		for {
			if _, err := cons.Run(ctx, "nft", "list", "table", "inet", "openmyst_killswitch"); err == nil {
				break
			}
			select {
			case <-conn.Exited():
				t.Fatalf("myst connect --tun ended before the kill switch was up:\n%s\n%s", conn.Output(), dump())
			case <-time.After(20 * time.Millisecond):
			}
		}
		base = natLabLeakCounters(t, c.site.Router)
		c.site.Router.MustRun("nft", "flush", "set", "netdev", natLabTunLeaks, "seen") // for the diagnosis of a leak
		probes = startNATLabTunProbes(cons, hub, webAddr)
		<-conn.Exited()
		out = conn.Output()
		if strings.Contains(out, "connected to") {
			break
		}
		probes.Stop()
		if attempt == 5 || !strings.Contains(out, "proposal_expired") {
			t.Fatalf("myst connect --tun: %s\n%s", out, dump())
		}
		t.Logf("attempt %d: %s", attempt, strings.TrimSpace(out))
		time.Sleep(time.Second)
	}
	defer probes.Stop()
	t.Logf("connected in %s: %s", time.Since(connStart).Round(time.Millisecond), strings.TrimSpace(out))
	if !strings.Contains(out, "over the "+want+" path") {
		t.Errorf("myst connect --tun: %q, want the %s path", strings.TrimSpace(out), want)
	}
	switch log := c.proc.Output()[logFrom:]; {
	case c.kind == natlab.UPnP:
		if !mapped() || !strings.Contains(log, "consumer ICE port mapped") {
			t.Errorf("the daemon did not map its ICE port for the tun connection:\n%s", dump())
		}
		if upnpOnly && !strings.Contains(log, "method=upnp") {
			t.Errorf("the daemon's mapping behind a UPnP-only router was not UPnP's:\n%s", dump())
		}
	case want == "direct" && !strings.Contains(log, "local=punched"):
		t.Errorf("the daemon's tun session did not punch:\n%s", dump())
	}
	fetchNATLabTun(t, cons, webAddr, body, "the tunnel", dump)
	time.Sleep(2 * time.Second) // steady state under probes
	if out, err := cli("status"); err != nil || !strings.Contains(out, "active true") {
		t.Errorf("myst status: %v\n%s", err, out)
	} else if c.kind == natlab.UPnP && !strings.Contains(out, "portmap "+c.site.LAN.String()) {
		t.Errorf("myst status does not list the port mapping's router among the exemptions:\n%s", out)
	}
	if c.kind == natlab.UPnP {
		resumeNATLabTun(ctx, t, c, cons, webAddr, body, upnpOnly, mapped, cli, dump)
	}
	probes.Stop()
	time.Sleep(200 * time.Millisecond)
	for name, n := range natLabLeakCounters(t, c.site.Router) {
		if d := n - base[name]; d != 0 {
			seen, _ := c.site.Router.Run(ctx, "nft", "list", "set", "netdev", natLabTunLeaks, "seen")
			t.Errorf("%d packets leaked outside the tunnel (%s; the destinations outside the allowed ones since the kill switch came up:\n%s)", d, name, seen)
		}
	}
	if probes.Rounds() < 5 {
		t.Errorf("only %d probe rounds ran", probes.Rounds())
	}
	if out, err := cli("disconnect"); err != nil {
		t.Fatalf("myst disconnect: %v\n%s", err, out)
	}
	if out, err := cons.Run(ctx, "nft", "list", "table", "inet", "openmyst_killswitch"); err == nil {
		t.Errorf("kill switch left after disconnect:\n%s", out)
	}
	if mapped() {
		t.Errorf("the ICE port's mapping outlived the tun connection\n%s", dump())
	}
	if t.Failed() {
		t.Log(dump())
	}
}

// resumeNATLabTun kills port-mapping consumer c's daemon with -9 in the
// middle of its tun connection (kill switch always) and restarts it: the
// restarted daemon resumes the connection under the held kill switch and
// maps its ICE port again, as a fresh connection does (through NAT-PMP,
// or UPnP's marked sockets with upnpOnly), so the resumed session is
// direct again and its disconnect removes the mapping (the caller checks
// that and the leak counters, which run through the crash). The router
// still holds the crashed daemon's mapping (its lease is an hour); the
// restarted daemon asking again is what its log and the removal show.
func resumeNATLabTun(ctx context.Context, t *testing.T, c *natLabNode, cons *netns.NS, webAddr netip.Addr, body []byte, upnpOnly bool,
	mapped func() bool, cli func(...string) (string, error), dump func() string) {
	t.Helper()
	if err := c.proc.Kill(); err == nil {
		t.Fatal("the daemon exited cleanly before the kill")
	}
	if _, err := cons.Run(ctx, "nft", "list", "table", "inet", "openmyst_killswitch"); err != nil {
		t.Fatalf("kill switch gone after kill -9: %v", err)
	}
	killed := time.Now()
	c.proc = cons.Start("env", c.argv...)
	var out string
	for {
		var err error
		out, err = cli("status")
		if err == nil && statusField(out, "state") == "connected" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the restarted daemon did not resume the connection: %v\n%s\n%s", err, out, dump())
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Logf("kill -9 -> resumed in %s", time.Since(killed).Round(time.Millisecond))
	log := c.proc.Output()
	if !strings.Contains(log, "consumer ICE port mapped") || !mapped() {
		t.Errorf("the resumed connection did not map the ICE port again:\n%s", dump())
	}
	if upnpOnly && !strings.Contains(log, "method=upnp") {
		t.Errorf("the resumed connection's mapping behind a UPnP-only router was not UPnP's:\n%s", dump())
	}
	if path := statusField(out, "path"); path != "direct" {
		t.Errorf("the resumed connection's path is %q, want direct (through the mapped port):\n%s", path, out)
	}
	fetchNATLabTun(t, cons, webAddr, body, "the resumed tunnel", dump)
}

// fetchNATLabTun fetches the web server's page from inside cons (through
// the tunnel, what) and compares it with body.
func fetchNATLabTun(t *testing.T, cons *netns.NS, webAddr netip.Addr, body []byte, what string, dump func() string) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: cons.Dialer(3 * time.Second), DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + webAddr.String() + "/")
	if err != nil {
		t.Fatalf("GET through %s: %v\n%s", what, err, dump())
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != string(body) {
		t.Fatalf("fetched %d bytes (%v) through %s, want the %d-byte body\n%s", len(got), err, what, len(body), dump())
	}
}

// statusField is the value of a `myst status` row (its first word).
func statusField(status, name string) string {
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == name {
			return f[1]
		}
	}
	return ""
}

// loadNATLabLeakTable counts, on the ingress of router's LAN link, what
// host sends outside its tunnel: IPv4 to anything but the hub (the
// first of allowed), the other allowed addresses (the provider's site,
// ...) and TCP to tcp ("outside"), DNS ("dns"), TCP to the hub's port 9
// ("probe-port") and IPv6 but neighbour discovery ("ipv6"). With ssdp,
// SSDP searches (UDP to 239.255.255.250:1900) are no leak either.
func loadNATLabLeakTable(t *testing.T, router *netns.NS, host netip.Addr, tcp netip.AddrPort, ssdp bool, allowed ...netip.Addr) {
	t.Helper()
	ssdpRule := ""
	if ssdp {
		ssdpRule = fmt.Sprintf("meta protocol ip ip saddr %s ip daddr 239.255.255.250 udp dport 1900 accept", host)
	}
	var as []string
	for _, a := range allowed {
		as = append(as, a.String())
	}
	rs := fmt.Sprintf(`table netdev %[1]s {}
delete table netdev %[1]s
table netdev %[1]s {
	set seen {
		type ipv4_addr . inet_proto
		size 1024
		flags dynamic
	}
	chain in {
		type filter hook ingress device "lan0" priority -500; policy accept;
		ether type arp accept
		meta protocol ip ip saddr %[2]s ip daddr %[5]s tcp dport %[6]d accept
		%[7]s
		meta protocol ip ip saddr %[2]s ip daddr != { %[4]s } update @seen { ip daddr . meta l4proto } counter comment "outside"
		meta protocol ip ip saddr %[2]s meta l4proto { tcp, udp } th dport 53 counter comment "dns"
		meta protocol ip ip saddr %[2]s ip daddr %[3]s tcp dport 9 counter comment "probe-port"
		meta protocol ip6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld2-listener-report } accept
		meta protocol ip6 counter comment "ipv6"
	}
}
`, natLabTunLeaks, host, allowed[0], strings.Join(as, ", "), tcp.Addr(), tcp.Port(), ssdpRule)
	if err := router.Nft(context.Background(), rs); err != nil {
		t.Fatalf("leak counters: %v", err)
	}
}

// natLabLeakCounters reads the leak table's counters by comment.
func natLabLeakCounters(t *testing.T, router *netns.NS) map[string]uint64 {
	t.Helper()
	return router.MustNftCounters(t, "netdev", natLabTunLeaks, 4)
}

// startNATLabTunProbes dials, every 100 ms, TCP to the web server and to
// the hub's port 9 and sends DNS queries to the hub, from inside ns.
func startNATLabTunProbes(ns *netns.NS, hub, webAddr netip.Addr) *netns.Probes {
	return ns.StartProbes(100*time.Millisecond, []netns.Probe{
		{Network: "tcp", Addr: webAddr.String() + ":80"}, {Network: "tcp", Addr: hub.String() + ":9"},
		{Network: "udp", Addr: hub.String() + ":53", Payload: netns.DNSQuery},
	})
}

// withoutFlag returns args without the pair flag value.
func withoutFlag(args []string, flag, value string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == flag && i+1 < len(args) && args[i+1] == value {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}
