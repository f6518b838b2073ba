package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/relay"
	"github.com/openmyst/openmyst/tequilapi"
	tclient "github.com/openmyst/openmyst/tequilapi/client"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// Environment of TestDaemonTunNoLeaks' daemon child.
const (
	vpnDaemonEnv  = "MYST_VPN_DAEMON_DIR" // shared state dir; set: run the daemon
	vpnDaemonPort = 4050
	vpnPassphrase = "vpn-e2e"
	vpnOrigResolv = "nameserver 192.0.2.53\noptions edns0\n"
	vpnLeakTable  = "omt_leak"
	// vpnExitSTUNFile, in the shared directory, names the internet
	// host's STUN server (TestDaemonTunICE), the daemon's first
	// --ice.server.
	vpnExitSTUNFile = "exit_stun"
	vpnHub6, vpnCo6 = "fd00:99::1", "fd00:99::2"
)

// labChild reports whether this process is a child that a namespace lab
// test started (the VPN daemon or a kernel e2e role): the other lab tests
// return at once in it.
func labChild() bool {
	return os.Getenv(vpnDaemonEnv) != "" || os.Getenv(kernelRoleEnv) != ""
}

// requireTunLab is the preamble of a test that runs a devnet and nodes in
// network namespaces with TUN devices: skipped with -short (why says what
// it runs); without namespaces, /dev/net/tun, ip, nft or env it skips, or
// fails on CI (internal/testenv).
func requireTunLab(t *testing.T, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip(why)
	}
	testenv.RequireNetns(t)
	testenv.RequireTUN(t)
	testenv.RequireTools(t, "ip", "nft", "env")
}

// TestDaemonTunNoLeaks runs the whole-device VPN through the daemon in
// network namespaces (topology of TestKernelSessionEndToEnd, plus IPv6
// on the consumer's uplink): a `myst daemon` child in the consumer
// namespace serves PUT /connection {"mode":"tun","kill_switch":"always"}
// against a kernel-mode and a userspace-exit provider in the hub. nftables counters on the
// hub's side of the consumer's uplink count every packet the consumer
// sends outside the tunnel (IPv4 to anything but the hub's exempted
// address, anything to port 53, IPv6 other than neighbour discovery and
// MLD, a probe port of the hub) while probes in the consumer namespace
// try to leak (TCP to the internet host and to a direct-only listener,
// DNS to the original resolver, IPv6): zero during connect, steady
// state, the provider dropping and the daemon reconnecting to the other
// one, the daemon killed with -9 (the kill switch stays) and the
// restarted daemon resuming the connection. After DELETE /connection the
// namespace's routes, rules, nftables ruleset and resolv.conf
// (/etc/netns/<ns>/resolv.conf, bind-mounted by `ip netns exec`) are
// exactly as before.
func TestDaemonTunNoLeaks(t *testing.T) {
	if dir := os.Getenv(vpnDaemonEnv); dir != "" {
		runVPNDaemon(t, dir)
		return
	}
	if role := os.Getenv(kernelRoleEnv); role != "" {
		return // a kernel e2e child of another test
	}
	requireTunLab(t, "runs a devnet, a kernel-mode provider and a tun-mode daemon in network namespaces")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	lab := newVPNLab(ctx, t, "")
	hub, cons, dir, resolv, hubProc, startDaemon := lab.hub, lab.cons, lab.dir, lab.resolv, lab.hubProc, lab.startDaemon
	daemon, api, before := lab.daemon, lab.api, lab.before

	// Connect; count from the moment the kill switch holds the device.
	st, base, probes := lab.connect(ctx, t, tequilapi.KillSwitchAlways)
	defer probes.Stop()
	if st.Mode != tequilapi.ModeTun || st.State != "connected" || st.KillSwitch == nil || !st.KillSwitch.Active || st.KillSwitch.Setting != tequilapi.KillSwitchAlways {
		t.Fatalf("status after connect: %+v", st)
	}
	// The public address through the tunnel: the providers' exit is the
	// hub, and the tunnel's peer confirms it.
	if st.PublicIP != kHubAddr || st.PublicIPCheck != "matches_tunnel_peer" {
		t.Errorf("public ip %q (%s), want the hub's %s, matching the tunnel's peer", st.PublicIP, st.PublicIPCheck, kHubAddr)
	}
	if st.Endpoint == "" || !strings.Contains(strings.Join(st.KillSwitch.Exemptions, " "), "udp "+st.Endpoint) {
		t.Errorf("exemptions %v lack the endpoint %s", st.KillSwitch.Exemptions, st.Endpoint)
	}
	for _, e := range st.KillSwitch.Exemptions {
		if !strings.Contains(e, kHubAddr+":") {
			t.Errorf("exemption %q is not on the hub (provider, bootstrap, chain RPC)", e)
		}
	}
	if b, _ := os.ReadFile(resolv); !strings.Contains(string(b), "written by openmyst") {
		t.Errorf("resolv.conf while connected: %q", b)
	}
	t.Logf("connected after %s: %+v", time.Since(start).Round(time.Millisecond), st)
	if err := vpnGet(ctx, cons); err != nil {
		out, _ := cons.Run(ctx, "sh", "-c", "curl -sv http://"+kInetAddr+"/ 2>&1; ip route show table all; ip rule; nft list ruleset")
		t.Fatalf("GET through the tunnel: %v\n%s", err, out)
	}
	time.Sleep(2 * time.Second) // steady state under probes

	// The provider drops: the daemon reconnects to the other one with the
	// kill switch up.
	if err := os.WriteFile(filepath.Join(dir, "drop"), []byte(st.Provider), 0o600); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var now tequilapi.ConnectionStatus
		err := api.Do(ctx, http.MethodGet, "/connection", nil, &now)
		if err == nil && now.State == "connected" && now.Reconnects == 1 {
			if now.Provider == st.Provider || now.KillSwitch == nil || !now.KillSwitch.Active || now.PublicIP != kHubAddr {
				t.Fatalf("after the reconnect: %+v", now)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect (%v, %+v)\nhub:\n%s\ndaemon:\n%s", err, now, hubProc.Output(), daemon.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := vpnGet(ctx, cons); err != nil {
		t.Fatalf("GET through the tunnel after the reconnect: %v", err)
	}
	t.Logf("drop -> reconnected in %s", time.Since(dropped).Round(time.Millisecond))

	// kill -9: the host stays fail-closed.
	if err := daemon.Kill(); err == nil {
		t.Fatal("daemon exited cleanly before the kill")
	}
	if _, err := cons.Run(ctx, "nft", "list", "table", "inet", "openmyst_killswitch"); err != nil {
		t.Fatalf("kill switch gone after kill -9: %v", err)
	}
	if err := vpnGet(ctx, cons); err == nil {
		t.Fatal("fetched from the internet host with the daemon dead")
	}
	time.Sleep(time.Second)

	// Restart: the daemon holds the device and resumes.
	daemon = startDaemon()
	api = vpnClient(ctx, t, cons, dir, daemon)
	deadline = time.Now().Add(40 * time.Second)
	for {
		var now tequilapi.ConnectionStatus
		err := api.Do(ctx, http.MethodGet, "/connection", nil, &now)
		if err == nil && now.State == "connected" {
			if now.KillSwitch == nil || !now.KillSwitch.Active {
				t.Fatalf("resumed without the kill switch: %+v", now)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not resumed (%v, %+v)\ndaemon:\n%s", err, now, daemon.Output())
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err := vpnGet(ctx, cons); err != nil {
		t.Fatalf("GET through the resumed tunnel: %v", err)
	}
	probes.Stop()
	leaks := leakCounters(t, hub)
	for name := range leaks {
		leaks[name] -= base[name]
	}
	for name, n := range leaks {
		if n != 0 {
			t.Errorf("%d packets leaked outside the tunnel (%s)", n, name)
		}
	}
	if probes.Rounds() < 5 {
		t.Errorf("only %d probe rounds ran", probes.Rounds())
	}
	lab.mu.Lock()
	webFrom := lab.webFrom
	if len(webFrom) > 0 { // the egress an outside host sees (docs/vpn.md: not public_ip here)
		t.Logf("the internet host saw %s; public_ip was %s", webFrom[0], st.PublicIP)
	}
	for _, from := range webFrom {
		if strings.HasPrefix(from, kConsAddr+":") {
			t.Errorf("the internet host saw the consumer's own address %s", from)
		}
	}
	lab.mu.Unlock()

	// Disconnect: everything exactly as before.
	if err := api.Do(ctx, http.MethodDelete, "/connection", nil, nil); err != nil {
		t.Fatalf("DELETE /connection: %v", err)
	}
	if after := vpnSnapshot(t, cons, resolv); after != before {
		t.Errorf("after disconnect the namespace differs:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(dir, "daemon", VPNStateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vpn state left after disconnect: %v", err)
	}
	// The restarted daemon counts the session it resumed, ended by the
	// disconnect, as one consumer session ended normally.
	checkEnded(t, vpnMetrics(ctx, t, cons, dir), "openmyst_consumer_sessions_ended_total", 1)
	if err := daemon.Signal(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("leak counters %v over %d probe rounds; whole test %s", leaks, probes.Rounds(), time.Since(start).Round(100*time.Millisecond))
}

// vpnLab is the namespaces, hub and daemon of a tun-mode daemon test.
type vpnLab struct {
	hub, cons   *netns.NS
	dir, resolv string
	// before is the consumer namespace's snapshot before the daemon.
	before      string
	hubProc     *netns.Proc
	startDaemon func() *netns.Proc
	daemon      *netns.Proc
	api         *tclient.Client

	mu      sync.Mutex
	webFrom []string // remote addresses the internet host saw
}

// newVPNLab builds TestDaemonTunNoLeaks' topology, starts the hub child
// (dev chain, hermes, bootstrap, a kernel-mode and a userspace provider;
// withICE "direct" or "relay": a STUN/TURN relay, providers offering ICE
// and their WireGuard ports, or every UDP port but the relay's, closed to
// the consumer; see kernelICEEnv) and the daemon child, and loads the
// leak counters, checked to see probes without a tunnel.
func newVPNLab(ctx context.Context, t *testing.T, withICE string) *vpnLab {
	t.Helper()
	return newVPNLabWith(ctx, t, vpnLabOptions{ICE: withICE})
}

// vpnLabOptions configure newVPNLabWith.
type vpnLabOptions struct {
	// ICE is newVPNLab's withICE.
	ICE string
	// Resume runs the hub with kernelResumeEnv: its providers also listen
	// on kHubAlt (exempt from the leak counters), until the test cuts
	// their first address.
	Resume bool
}

// newVPNLabWith is newVPNLab with options.
func newVPNLabWith(ctx context.Context, t *testing.T, o vpnLabOptions) *vpnLab {
	t.Helper()
	withICE := o.ICE
	nl := netns.NewHubLab(t, "v")
	hub, cons, inet := nl.Hub, nl.Cons, nl.Inet
	cons.MustRun("ip", "-6", "addr", "add", vpnCo6+"/64", "dev", "c0", "nodad")
	hub.MustRun("ip", "-6", "addr", "add", vpnHub6+"/64", "dev", "p0", "nodad")
	cons.MustRun("ip", "-6", "route", "add", "default", "via", vpnHub6)

	// resolv.conf of the consumer namespace, as `ip netns exec` mounts it.
	etc := filepath.Join("/etc/netns", cons.Name())
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(etc) })
	resolv := filepath.Join(etc, "resolv.conf")
	if err := os.WriteFile(resolv, []byte(vpnOrigResolv), 0o644); err != nil {
		t.Fatal(err)
	}

	// The internet host and a direct-only listener.
	lab := &vpnLab{hub: hub, cons: cons, resolv: resolv}
	web := inet.Listen("tcp", kInetAddr+":80")
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lab.mu.Lock()
		lab.webFrom = append(lab.webFrom, r.RemoteAddr)
		lab.mu.Unlock()
		_, _ = io.WriteString(w, "through the tunnel")
	})}
	go func() { _ = srv.Serve(web) }()
	t.Cleanup(func() { _ = srv.Close() })
	servetest.CountAccepts(hub.Listen("tcp", kHubAddr2+":9000")) // only accepts and closes

	// The link-local address (with its DAD) settles before the snapshot.
	for i := 0; ; i++ {
		out := cons.MustRun("ip", "-6", "addr", "show", "dev", "c0", "scope", "link")
		if strings.Contains(out, "fe80") && !strings.Contains(out, "tentative") {
			break
		}
		if i > 100 {
			t.Fatalf("no link-local address on c0:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	lab.before = vpnSnapshot(t, cons, resolv)

	dir := t.TempDir()
	if withICE != "" {
		// A STUN server on the internet host, which the exits allow: the
		// daemon (its first --ice.server) asks it through the tunnel
		// where the exit's traffic comes from.
		is := netip.MustParseAddrPort(kInetSTUN)
		inet.MustRun("ip", "addr", "add", is.Addr().String()+"/32", "dev", "lo")
		hub.MustRun("ip", "route", "add", is.Addr().String()+"/32", "via", kInetAddr)
		var srv *relay.Server
		if err := inet.Do(func() (err error) {
			srv, err = relay.Start(relay.Config{UDP: kInetSTUN, PublicIP: is.Addr(),
				Secret: []byte("0123456789abcdef0123456789abcdef"), Logger: testLog()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		if err := os.WriteFile(filepath.Join(dir, vpnExitSTUNFile), []byte("stun:"+kInetSTUN), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{kernelRoleEnv + "=hub", kernelDirEnv + "=" + dir, kernelProvider2Env + "=1"}
	if withICE != "" {
		env = append(env, kernelICEEnv+"="+withICE)
	}
	if o.Resume {
		env = append(env, kernelResumeEnv+"=1")
	}
	hubProc := hub.Start("env", append(env, exe, "-test.run=^TestKernelSessionEndToEnd$", "-test.v")...)
	if err := waitFile(ctx, filepath.Join(dir, "state.json"), nil); err != nil {
		t.Fatalf("hub: %v\n%s", err, hubProc.Output())
	}
	lab.dir, lab.hubProc = dir, hubProc
	lab.startDaemon = func() *netns.Proc {
		return cons.Start("env", vpnDaemonEnv+"="+dir, exe, "-test.run=^TestDaemonTunNoLeaks$", "-test.v")
	}
	lab.daemon = lab.startDaemon()
	lab.api = vpnClient(ctx, t, cons, dir, lab.daemon)

	// Leak counters on the hub's side of the consumer's uplink. Without
	// a tunnel every probe is counted: the instrument can fail.
	var exempt []string
	if withICE != "" {
		exempt = append(exempt, netip.MustParseAddrPort(kInetSTUN).Addr().String())
	}
	if withICE == "prflx" {
		exempt = append(exempt, kHubFar, kHubFar2) // the peer-reflexive pairs' addresses
	}
	if o.Resume {
		exempt = append(exempt, kHubAlt) // the providers' second libp2p address
	}
	loadLeakTable(t, hub, exempt...)
	pre := startProbes(cons)
	for pre.Rounds() < 2 {
		time.Sleep(20 * time.Millisecond)
	}
	pre.Stop()
	time.Sleep(200 * time.Millisecond) // their last packets arrive
	for name, n := range leakCounters(t, hub) {
		if n == 0 {
			t.Fatalf("probes without a tunnel: counter %s stayed 0; the leak counters cannot see leaks", name)
		}
	}

	return lab
}

// connect sends PUT /connection in tun mode with kill switch ks and, from
// the moment the kill switch holds the device, probes for leaks; it
// returns the status, the leak counters at that moment (nft 1.0.6 cannot
// reset anonymous rule counters: leaks are counted from there) and the
// running probes, which the caller stops.
func (l *vpnLab) connect(ctx context.Context, t *testing.T, ks string) (tequilapi.ConnectionStatus, map[string]uint64, *netns.Probes) {
	t.Helper()
	type result struct {
		st  tequilapi.ConnectionStatus
		err error
	}
	connected := make(chan result, 1)
	put := time.Now()
	go func() {
		var st tequilapi.ConnectionStatus
		err := l.api.Do(ctx, http.MethodPut, "/connection", tequilapi.ConnectRequest{Mode: tequilapi.ModeTun, KillSwitch: ks, Country: "DE"}, &st)
		connected <- result{st, err}
	}()
	waitKillSwitch(ctx, t, l.cons)
	base := leakCounters(t, l.hub)
	p := startProbes(l.cons)
	r := <-connected
	if r.err != nil {
		p.Stop()
		t.Fatalf("PUT /connection tun: %v\nhub:\n%s\ndaemon:\n%s", r.err, l.hubProc.Output(), l.daemon.Output())
	}
	// docs/benchmarks.md records these per path.
	t.Logf("PUT /connection (tun) answered in %s, path %s", time.Since(put).Round(time.Millisecond), r.st.Path)
	return r.st, base, p
}

// vpnSnapshot is the namespace's routing, rules, nftables ruleset and
// resolv.conf.
func vpnSnapshot(t *testing.T, ns *netns.NS, resolv string) string {
	t.Helper()
	out := ns.MustRun("sh", "-c", "ip -4 rule; ip -6 rule; ip -4 route show table all; ip -6 route show table all; ip -br link; nft list ruleset")
	b, err := os.ReadFile(resolv)
	if err != nil {
		t.Fatal(err)
	}
	return out + "--- resolv.conf\n" + string(b)
}

// loadLeakTable counts, on the hub's p0 ingress, what the consumer sends
// outside the tunnel: IPv4 to anything but the hub's exempted address and
// the exempt addresses (the ICE lab's STUN server beyond the hub).
func loadLeakTable(t *testing.T, hub *netns.NS, exempt ...string) {
	t.Helper()
	allowed := strings.Join(append([]string{kHubAddr}, exempt...), ", ")
	rs := fmt.Sprintf(`table netdev %[1]s {
	chain in {
		type filter hook ingress device "p0" priority -500; policy accept;
		ether type arp accept
		meta protocol ip ip saddr %[2]s ip daddr != { %[4]s } counter comment "ipv4-outside"
		meta protocol ip ip saddr %[2]s meta l4proto { tcp, udp } th dport 53 counter comment "dns"
		meta protocol ip ip saddr %[2]s ip daddr %[3]s tcp dport 9 counter comment "ipv4-probe-port"
		meta protocol ip6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld2-listener-report } accept
		meta protocol ip6 counter comment "ipv6"
	}
}
`, vpnLeakTable, kConsAddr, kHubAddr, allowed)
	if err := hub.Nft(context.Background(), rs); err != nil {
		t.Fatalf("leak counters: %v", err)
	}
}

// leakCounters reads the leak table's counters by comment.
func leakCounters(t *testing.T, hub *netns.NS) map[string]uint64 {
	t.Helper()
	return hub.MustNftCounters(t, "netdev", vpnLeakTable, 4)
}

// waitKillSwitch waits until the consumer namespace has the kill switch.
func waitKillSwitch(ctx context.Context, t *testing.T, ns *netns.NS) {
	t.Helper()
	for {
		if _, err := ns.Run(ctx, "nft", "list", "table", "inet", "openmyst_killswitch"); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the kill switch never came up")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startProbes tries to leak from the consumer namespace until stopped:
// TCP to the direct-only listener, a non-exempt port of the hub, the
// internet host and IPv6; DNS to the original resolver and to the hub.
func startProbes(ns *netns.NS) *netns.Probes {
	return ns.StartProbes(100*time.Millisecond, []netns.Probe{
		{Network: "tcp", Addr: kHubAddr2 + ":9000"}, {Network: "tcp", Addr: kHubAddr + ":9"}, {Network: "tcp", Addr: kInetAddr + ":80"},
		{Network: "tcp6", Addr: "[" + vpnHub6 + "]:9"},
		{Network: "udp", Addr: "192.0.2.53:53", Payload: netns.DNSQuery}, {Network: "udp", Addr: kHubAddr + ":53", Payload: netns.DNSQuery},
		{Network: "udp", Addr: "[" + vpnHub6 + "]:53", Payload: netns.DNSQuery},
	})
}

// vpnGet fetches from the internet host inside the consumer namespace.
func vpnGet(ctx context.Context, ns *netns.NS) error {
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: ns.Dialer(2 * time.Second), DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+kInetAddr+"/", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && string(b) != "through the tunnel" {
		err = fmt.Errorf("%s: body %q", resp.Status, b)
	}
	return err
}

// vpnClient waits for the daemon child's Tequilapi and logs in.
func vpnClient(ctx context.Context, t *testing.T, ns *netns.NS, dir string, daemon *netns.Proc) *tclient.Client {
	t.Helper()
	c, err := tclient.New(fmt.Sprintf("http://127.0.0.1:%d", vpnDaemonPort), &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: ns.Dialer(2 * time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pw, err := os.ReadFile(filepath.Join(dir, "daemon", "tequilapi.password"))
		if err == nil {
			var lr tequilapi.LoginResponse
			if lr, err = c.Login(ctx, strings.TrimSpace(string(pw))); err == nil {
				c.SetToken(lr.Token)
				return c
			}
		}
		select {
		case <-daemon.Exited():
			t.Fatalf("daemon exited:\n%s", daemon.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon API not up: %v\n%s", err, daemon.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// vpnMetrics is the daemon's GET /metrics (text, which tclient does not
// decode), read through ns with a token of its own.
func vpnMetrics(ctx context.Context, t *testing.T, ns *netns.NS, dir string) string {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: ns.Dialer(2 * time.Second)}}
	defer hc.CloseIdleConnections()
	base := fmt.Sprintf("http://127.0.0.1:%d", vpnDaemonPort)
	c, err := tclient.New(base, hc)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(filepath.Join(dir, "daemon", "tequilapi.password"))
	if err != nil {
		t.Fatal(err)
	}
	lr, err := c.Login(ctx, strings.TrimSpace(string(pw)))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+lr.Token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d (%v): %s", resp.StatusCode, err, b)
	}
	return string(b)
}

// runVPNDaemon runs `myst daemon`'s node.RunDaemon in the consumer
// namespace with the devnet's funded consumer identity, until SIGTERM.
func runVPNDaemon(t *testing.T, dir string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var st kernelState
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	dd := filepath.Join(dir, "daemon")
	pf := filepath.Join(dir, "passphrase")
	key := devchain.DevKey(devConsumerAccount)
	addr := crypto.PubkeyToAddress(key.PublicKey)
	if _, err := os.Stat(dd); errors.Is(err, os.ErrNotExist) {
		ids, err := NewIdentityManager(dd, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		kj, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: addr, PrivateKey: key}, vpnPassphrase, keystore.LightScryptN, keystore.LightScryptP)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ids.Import(ctx, kj, vpnPassphrase, vpnPassphrase); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pf, []byte(vpnPassphrase), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, vpnExitSTUNFile)); err == nil {
		st.ICE.Servers = append([]string{string(b)}, st.ICE.Servers...)
	}
	boot, err := p2p.ParseBootstrap([]string{st.BootstrapLink})
	if err != nil {
		t.Fatal(err)
	}
	err = RunDaemon(ctx, DaemonConfig{
		DataDir: dd, LightScrypt: true,
		API:   tequilapi.Config{Address: "127.0.0.1", Port: vpnDaemonPort, PasswordFile: filepath.Join(dd, "tequilapi.password")},
		Chain: ChainConfig{RPC: st.ChainURL, Deployment: st.Deployment},
		P2P:   NetworkConfig{ListenAddrs: []string{"/ip4/" + kConsAddr + "/tcp/0"}, Bootstrap: boot, ChainID: 1337},
		ICE:   st.ICE,
		Consumer: DaemonConsumer{
			Identity: IdentityRef{Address: addr, PassphraseFile: pf},
			VPN:      VPNConfig{ResolvConf: "/etc/resolv.conf"},
		},
		Log: testLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDaemonTunICE runs the whole-device VPN through the daemon over ICE
// (issue 12: WireGuard over ICE in `--tun` too), in TestDaemonTunNoLeaks'
// topology: the hub runs a STUN/TURN relay and its providers offer ICE,
// and it drops the consumer's UDP to their WireGuard ports, so no static
// endpoint works ("direct"), or to every port but the relay's ("relay":
// only the consumer's TURN allocation works), or the hub lets the
// consumer only answer and sends to it from random ports, a symmetric NAT
// ("prflx": only a peer-reflexive direct pair, which the kill switch must
// let the checks find, or the relay). The daemon connects over
// the ICE-selected path (its kill switch admitting the connectivity
// checks, then exactly the direct pair's remote address, or for the
// relay only the STUN/TURN server, never the endpoint), fetches through
// the tunnel, and after the first provider drops reconnects to the
// second over ICE with the kill switch up (the checks then leave outside
// the old tunnel); "relay" (kill switch always) also survives kill -9 of
// the daemon and resumes over the relay. The leak counters stay at zero
// throughout, and after DELETE /connection the namespace is exactly as
// before.
func TestDaemonTunICE(t *testing.T) {
	if labChild() {
		return // a child of another test
	}
	requireTunLab(t, "runs a devnet, a relay, two ICE providers and a tun-mode daemon in network namespaces")
	for _, lab := range []string{"direct", "relay", "prflx"} {
		t.Run(lab, func(t *testing.T) { testDaemonTunICE(t, lab) })
	}
}

func testDaemonTunICE(t *testing.T, mode string) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	lab := newVPNLab(ctx, t, mode)
	path := mode
	if mode == "prflx" {
		path = "direct" // a peer-reflexive direct pair
	}
	api := lab.api
	static := map[string]bool{}
	for _, p := range kICEWGPorts {
		static[fmt.Sprintf("udp %s:%d", kHubAddr, p)] = true
	}
	checkICE := func(what string, st tequilapi.ConnectionStatus) {
		t.Helper()
		if st.Mode != tequilapi.ModeTun || st.State != "connected" || st.KillSwitch == nil || !st.KillSwitch.Active {
			t.Fatalf("%s: status %+v", what, st)
		}
		if st.Path != path {
			t.Errorf("%s: path %q, want %s", what, st.Path, path)
		}
		ex := strings.Join(st.KillSwitch.Exemptions, ", ")
		switch {
		case path == "direct" && (st.Endpoint == "" || static["udp "+st.Endpoint] || !strings.Contains(ex, "udp "+st.Endpoint)):
			t.Errorf("%s: endpoint %q (exemptions %s): want the ICE pair's remote address, admitted, not a WireGuard port", what, st.Endpoint, ex)
		case path == "relay" && (st.Endpoint != "" || strings.Contains(strings.ReplaceAll(ex, "tcp/udp ", ""), "udp ")):
			t.Errorf("%s: endpoint %q (exemptions %s): through our TURN allocation nothing but the control destinations is admitted", what, st.Endpoint, ex)
		}
		// The STUN/TURN servers are exempt while a session negotiates, and
		// afterwards only for a path through our TURN allocation.
		inetSTUN := "tcp/udp " + kInetSTUN
		for _, srv := range []string{"tcp/udp " + kHubAddr + ":3478", inetSTUN} {
			if relay := strings.Contains(ex, srv); relay != (path == "relay") {
				t.Errorf("%s: exemptions %s: STUN/TURN server %s admitted %v, want %v on a %s path", what, ex, srv, relay, path == "relay", path)
			}
		}
		for _, e := range st.KillSwitch.Exemptions {
			if static[e] {
				t.Errorf("%s: the kill switch admits the static endpoint %q", what, e)
			}
			if !strings.Contains(e, kHubAddr+":") && e != inetSTUN && !(mode == "prflx" && (strings.HasPrefix(e, "udp "+kHubFar+":") || strings.HasPrefix(e, "udp "+kHubFar2+":"))) {
				t.Errorf("%s: exemption %q is not on the hub", what, e)
			}
		}
		check := map[string]string{"direct": "matches_tunnel_peer", "relay": "unchecked_relay", "prflx": "differs_from_tunnel_peer"}[mode]
		if st.PublicIP != kHubAddr || st.PublicIPCheck != check && st.PublicIPCheck != "differs_from_stun" {
			t.Errorf("%s: public ip %q (%s), want %s, %s", what, st.PublicIP, st.PublicIPCheck, kHubAddr, check)
		}
		// The internet host's STUN server, asked through the tunnel, saw
		// the exit's egress (it masquerades out of the hub's internet
		// side), not the consumer's own address: the request went
		// through the tunnel even on a relayed path, where that server is
		// exempt and routed outside it.
		seen := st
		for deadline := time.Now().Add(15 * time.Second); seen.PublicIPSeen == "" && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			seen = tequilapi.ConnectionStatus{}
			if err := api.Do(ctx, http.MethodGet, "/connection", nil, &seen); err != nil {
				t.Fatalf("%s: status: %v", what, err)
			}
		}
		if seen.PublicIPSeen != kExitEgress || seen.PublicIPCheck != "differs_from_stun" {
			t.Errorf("%s: public ip seen by STUN %q (%s), want the exit's egress %s (differs_from_stun: the provider claims %s)",
				what, seen.PublicIPSeen, seen.PublicIPCheck, kExitEgress, seen.PublicIP)
		}
	}

	ks := tequilapi.KillSwitchConnection
	if mode == "relay" {
		ks = tequilapi.KillSwitchAlways // resumed after kill -9 below
	}
	st, base, probes := lab.connect(ctx, t, ks)
	defer probes.Stop()
	checkICE("connected", st)
	t.Logf("connected over ICE after %s: %+v", time.Since(start).Round(time.Millisecond), st)
	if err := vpnGet(ctx, lab.cons); err != nil {
		out, _ := lab.cons.Run(ctx, "sh", "-c", "ip route show table all; ip rule; nft list ruleset")
		t.Fatalf("GET through the tunnel over ICE: %v\n%s", err, out)
	}
	var now tequilapi.ConnectionStatus
	if err := api.Do(ctx, http.MethodGet, "/connection", nil, &now); err != nil || now.RxBytes == 0 || now.TxBytes == 0 {
		t.Fatalf("after a fetch: %v, %+v: nothing through the tunnel", err, now)
	}
	time.Sleep(2 * time.Second) // steady state under probes (ICE consent checks, keepalives)

	// The provider drops: the daemon reconnects to the other one over ICE
	// with the kill switch up.
	if err := os.WriteFile(filepath.Join(lab.dir, "drop"), []byte(st.Provider), 0o600); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	deadline := time.Now().Add(40 * time.Second)
	for {
		now = tequilapi.ConnectionStatus{}
		err := api.Do(ctx, http.MethodGet, "/connection", nil, &now)
		if err == nil && now.State == "connected" && now.Reconnects == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect (%v, %+v)\nhub:\n%s\ndaemon:\n%s", err, now, lab.hubProc.Output(), lab.daemon.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if now.Provider == st.Provider {
		t.Fatalf("reconnected to the provider that dropped: %+v", now)
	}
	checkICE("reconnected", now)
	if mode == "prflx" && !strings.HasPrefix(now.Endpoint, kHubFar2+":") {
		// A peer-reflexive address the tunnel's routing table has no throw
		// route for: the ICE sockets' own policy rule reaches it.
		t.Errorf("reconnected over %q, want a peer-reflexive pair at %s", now.Endpoint, kHubFar2)
	}
	if err := vpnGet(ctx, lab.cons); err != nil {
		t.Fatalf("GET through the tunnel after the reconnect: %v", err)
	}
	t.Logf("drop -> reconnected over ICE in %s", time.Since(dropped).Round(time.Millisecond))

	if mode == "direct" {
		testPathLostReconnects(ctx, t, lab, api, now, checkICE)
	}

	if mode == "relay" {
		// kill -9 and a restart: the daemon resumes the connection from
		// vpn.json, whose STUN/TURN servers the held kill switch must
		// admit (no DNS outside the tunnel, nothing but the relay works).
		if err := lab.daemon.Kill(); err == nil {
			t.Fatal("daemon exited cleanly before the kill")
		}
		killed := time.Now()
		lab.daemon = lab.startDaemon()
		api = vpnClient(ctx, t, lab.cons, lab.dir, lab.daemon)
		deadline = time.Now().Add(40 * time.Second)
		for {
			now = tequilapi.ConnectionStatus{}
			err := api.Do(ctx, http.MethodGet, "/connection", nil, &now)
			if err == nil && now.State == "connected" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not resumed (%v, %+v)\ndaemon:\n%s", err, now, lab.daemon.Output())
			}
			time.Sleep(200 * time.Millisecond)
		}
		checkICE("resumed", now)
		if err := vpnGet(ctx, lab.cons); err != nil {
			t.Fatalf("GET through the resumed tunnel: %v", err)
		}
		t.Logf("kill -9 -> resumed over ICE in %s", time.Since(killed).Round(time.Millisecond))
	}

	lab.finish(ctx, t, api, probes, base, start)
}

// finish stops the probes and checks that nothing leaked since base
// (over at least 5 probe rounds), disconnects through api, checks that
// the consumer namespace is as before and stops the daemon.
func (l *vpnLab) finish(ctx context.Context, t *testing.T, api *tclient.Client, probes *netns.Probes, base map[string]uint64, start time.Time) {
	t.Helper()
	probes.Stop()
	leaks := leakCounters(t, l.hub)
	for name := range leaks {
		leaks[name] -= base[name]
		if leaks[name] != 0 {
			t.Errorf("%d packets leaked outside the tunnel (%s)", leaks[name], name)
		}
	}
	if probes.Rounds() < 5 {
		t.Errorf("only %d probe rounds ran", probes.Rounds())
	}
	if err := api.Do(ctx, http.MethodDelete, "/connection", nil, nil); err != nil {
		t.Fatalf("DELETE /connection: %v", err)
	}
	if after := vpnSnapshot(t, l.cons, l.resolv); after != l.before {
		t.Errorf("after disconnect the namespace differs:\n--- before\n%s\n--- after\n%s", l.before, after)
	}
	if err := l.daemon.Signal(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("leak counters %v over %d probe rounds; whole test %s", leaks, probes.Rounds(), time.Since(start).Round(100*time.Millisecond))
}

// testPathLostReconnects kills the running session's direct ICE pair
// mid-session (the hub drops the pair's UDP both ways; the libp2p
// control stream, on TCP, stays up): the consumer's session ends with
// the path lost within a few ice.DefaultLostAfter, the daemon's reconnect
// policy opens a new session over a new pair, and the provider ends the
// old session for the lost path (no more invoices for it).
func testPathLostReconnects(ctx context.Context, t *testing.T, lab *vpnLab, api *tclient.Client, st tequilapi.ConnectionStatus, checkICE func(string, tequilapi.ConnectionStatus)) {
	t.Helper()
	ep, err := netip.ParseAddrPort(st.Endpoint)
	if err != nil {
		t.Fatalf("direct pair %q: %v", st.Endpoint, err)
	}
	rules := fmt.Sprintf(`table inet pathkill {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		ip saddr %[1]s udp dport %[2]d drop
	}
	chain out {
		type filter hook output priority -300; policy accept;
		ip daddr %[1]s udp sport %[2]d drop
	}
}
`, kConsAddr, ep.Port())
	if err := lab.hub.Nft(ctx, rules); err != nil {
		t.Fatalf("drop the ICE pair: %v", err)
	}
	killed := time.Now()
	// Lost after ice.DefaultLostAfter of silence (plus the watcher's
	// reaction), then a reconnect: the first backoff and at most the
	// connect's ICE checks, with LostAfter again as slack for the rest.
	bound := 3*ice.DefaultLostAfter + ReconnectBackoff.Delay(1) + ice.DefaultTimeout
	var now tequilapi.ConnectionStatus
	for {
		now = tequilapi.ConnectionStatus{}
		err := api.Do(ctx, http.MethodGet, "/connection", nil, &now)
		if err == nil && now.State == "connected" && now.Reconnects == st.Reconnects+1 {
			break
		}
		if time.Since(killed) > bound {
			t.Fatalf("no reconnect within %v of the path dying (%v, %+v)\ndaemon:\n%s", bound, err, now, lab.daemon.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if now.SessionID == st.SessionID || now.Endpoint == st.Endpoint {
		t.Fatalf("after the path died %+v, before %+v: want a new session over a new pair", now, st)
	}
	checkICE("reconnected after the path died", now)
	var hist tequilapi.SessionList
	if err := api.Do(ctx, http.MethodGet, "/sessions", nil, &hist); err != nil {
		t.Fatal(err)
	}
	reason := "(not in the history)"
	for _, r := range hist.Sessions {
		if r.ID == st.SessionID {
			reason = r.Reason
		}
	}
	if !strings.Contains(reason, "path lost") {
		t.Errorf("the consumer's session %s ended with %q, want the path lost", st.SessionID, reason)
	}
	// The provider ended the old session (it stopped invoicing it) for
	// the lost path: found itself, or told by the consumer, whichever
	// noticed first (session/provider's TestPathLostStopsInvoices covers
	// the provider finding it alone).
	ended := func() bool {
		for _, l := range strings.Split(lab.hubProc.Output(), "\n") {
			if strings.Contains(l, "KERNEL-E2E-HUB ended "+st.SessionID+":") && strings.Contains(l, "path lost") {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(bound)
	for !ended() {
		if time.Now().After(deadline) {
			t.Fatalf("the provider did not end the session whose path died:\n%s", lab.hubProc.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := vpnGet(ctx, lab.cons); err != nil {
		t.Fatalf("GET through the tunnel after the path died and the daemon reconnected: %v", err)
	}
	t.Logf("path killed -> reconnected over ICE in %s", time.Since(killed).Round(time.Millisecond))
}
