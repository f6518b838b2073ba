package kernel

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// topology is consumer -- provider -- internet, where the provider also
// routes plain traffic between the two (so the consumer has a path to the
// internet outside the tunnel, which the kill switch must close).
//
//	consumer vc 198.51.100.2/24  <->  vp 198.51.100.1/24 provider
//	provider vu 203.0.113.1/24   <->  vi 203.0.113.2/24  internet
//	            2001:db8:1::1/64          2001:db8:1::2/64
//
// The internet host also owns 10.9.0.2, 192.168.9.2 and 169.254.9.2, which
// the provider routes to it, and fd00:9::2: reachable from the provider
// itself, but denied to consumers by the default exit policy.
type topology struct {
	consumer, provider, internet *netns.NS
}

const (
	providerUplink = "198.51.100.1"
	consumerAddr   = "198.51.100.2"
	providerOut    = "203.0.113.1"
	internetAddr   = "203.0.113.2"
)

var deniedTargets = []string{"10.9.0.2", "192.168.9.2", "169.254.9.2"}

// allowedPrivate is a private address the operator allows on port 8080
// only; the internet host also serves port 8081, which the operator denies
// on the public address.
const allowedPrivate = "10.9.0.3"

// IPv6: documentation addresses for the internet link, and a unique-local
// address (fc00::/7, denied by default) on the internet host.
const (
	providerOut6  = "2001:db8:1::1"
	internetAddr6 = "2001:db8:1::2"
	deniedTarget6 = "fd00:9::2"
)

func newTopology(t *testing.T) *topology {
	testenv.RequireTUN(t)
	testenv.RequireTools(t, "ip", "nft")
	tp := &topology{consumer: netns.New(t, "c"), provider: netns.New(t, "p"), internet: netns.New(t, "i")}
	netns.Link(t, tp.consumer, "vc", consumerAddr+"/24", tp.provider, "vp", providerUplink+"/24")
	netns.Link(t, tp.provider, "vu", providerOut+"/24,"+providerOut6+"/64", tp.internet, "vi", internetAddr+"/24,"+internetAddr6+"/64")
	tp.internet.MustRun("ip", "-6", "route", "add", "default", "via", providerOut6)
	tp.internet.MustRun("ip", "-6", "addr", "add", deniedTarget6+"/128", "dev", "lo")
	tp.provider.MustRun("ip", "-6", "route", "add", deniedTarget6+"/128", "via", internetAddr6)
	tp.consumer.MustRun("ip", "route", "add", "default", "via", providerUplink)
	tp.internet.MustRun("ip", "route", "add", "default", "via", providerOut)
	tp.internet.MustRun("ip", "addr", "add", "10.9.0.2/32", "dev", "lo")
	tp.internet.MustRun("ip", "addr", "add", "192.168.9.2/32", "dev", "lo")
	tp.internet.MustRun("ip", "addr", "add", "169.254.9.2/32", "dev", "lo")
	tp.internet.MustRun("ip", "addr", "add", allowedPrivate+"/32", "dev", "lo")
	for _, d := range append([]string{allowedPrivate}, deniedTargets...) {
		tp.provider.MustRun("ip", "route", "add", d+"/32", "via", internetAddr)
	}
	tp.provider.MustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")
	tp.provider.MustRun("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	return tp
}

// serveHTTP serves, on every address of ns at port, "<name> saw <remote
// addr>" on / and n zero bytes on /bytes?n=N.
func serveHTTP(t *testing.T, ns *netns.NS, addr, name string) {
	t.Helper()
	ln := ns.Listen("tcp", addr)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s saw %s", name, host)
	})
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 || n > 64<<20 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(make([]byte, n))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
}

// fetch GETs url with a connection created inside ns (optionally bound to
// device dev, bypassing routing) and returns the body.
func fetch(ns *netns.NS, url, dev string, timeout time.Duration) (string, error) {
	d := net.Dialer{Timeout: timeout}
	if dev != "" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, dev)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = ns.Do(func() error { c, err = d.DialContext(ctx, network, addr); return err })
			return c, err
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: timeout + 10*time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func mustKey(t *testing.T) tunnel.PrivateKey {
	t.Helper()
	k, err := tunnel.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func peerStats(t *testing.T, h *helper, pub tunnel.PublicKey) tunnel.PeerStats {
	t.Helper()
	line := h.call("stats " + pub.String())
	var st tunnel.PeerStats
	if err := json.Unmarshal([]byte(line), &st); err != nil {
		t.Fatalf("stats: %q: %v", line, err)
	}
	return st
}

func nftTables(t *testing.T, ns *netns.NS) string {
	t.Helper()
	return ns.MustRun("nft", "list", "tables")
}

// TestKernelTunnel runs the kernel-mode scenarios on one topology:
// our client through our exit, the exit policy, the standard wireguard-go
// and wg tools as a client from our wg-quick export, the kill switch when
// the exit dies, and clean-up after a crash.
func TestKernelTunnel(t *testing.T) {
	tp := newTopology(t)
	serveHTTP(t, tp.internet, ":8080", "internet")
	serveHTTP(t, tp.internet, ":8081", "internet-8081")
	serveHTTP(t, tp.provider, "0.0.0.0:8081", "provider")
	serveHTTP(t, tp.provider, "127.0.0.1:8082", "provider-loopback")

	// Positive controls: without a tunnel the internet host and the denied
	// targets are reachable from the provider itself.
	for _, a := range append([]string{internetAddr}, deniedTargets...) {
		if _, err := fetch(tp.provider, "http://"+a+":8080/", "", 3*time.Second); err != nil {
			t.Fatalf("control: provider cannot reach %s: %v", a, err)
		}
	}

	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		t.Fatal(err)
	}
	exitKey := mustKey(t)
	ours, theirs := mustKey(t), mustKey(t)
	leaseOurs, _ := pool.Allocate()
	leaseTheirs, _ := pool.Allocate()
	spec := exitSpec{
		PrivateKey: exitKey.String(),
		ListenPort: 51820,
		DNS:        []netip.Addr{netip.MustParseAddr(internetAddr)},
		Allow:      []string{"tcp:" + allowedPrivate + " port 8080"},
		Deny:       []string{"tcp:" + internetAddr + "/32 port 8081"},
		Peers: []tunnel.PeerConfig{
			{PublicKey: ours.PublicKey(), AllowedIPs: leaseOurs.Prefixes()},
			{PublicKey: theirs.PublicKey(), AllowedIPs: leaseTheirs.Prefixes()},
		},
	}
	exit, ready := startHelper(t, tp.provider, "exit", spec)
	if len(ready) != 2 || ready[1] == "1" {
		t.Fatalf("exit TUN batch size %v: kernel TUN offloads not in use", ready)
	}
	if ra := strings.TrimSpace(tp.provider.MustRun("sysctl", "-n", "net.ipv6.conf.vu.accept_ra")); ra != "2" {
		t.Fatalf("uplink accept_ra = %s with the exit forwarding IPv6, want 2 (keep router advertisements)", ra)
	}
	if !strings.Contains(nftTables(t, tp.provider), "table inet "+DefaultExitTable) {
		t.Fatal("exit did not install its nftables table")
	}
	// A second exit on the same node must refuse to start and leave the
	// running exit's firewall alone.
	err = tp.provider.Do(func() error {
		_, err := NewExit(t.Context(), ExitConfig{ListenPort: 51899})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "another exit is running") {
		t.Fatalf("second exit: %v, want refusal", err)
	}
	if !strings.Contains(nftTables(t, tp.provider), "table inet "+DefaultExitTable) {
		t.Fatal("a refused second exit removed the running exit's table")
	}
	endpoint := netip.MustParseAddrPort(providerUplink + ":51820")
	session := func(k tunnel.PrivateKey, l tunnel.Lease) tunnel.SessionConfig {
		return tunnel.SessionConfig{
			PrivateKey: k, Addresses: l.Prefixes(), DNS: []netip.Addr{pool.Gateway().V4},
			PeerPublicKey: exitKey.PublicKey(), Endpoint: endpoint,
			AllowedIPs: tunnel.FullTunnel(), PersistentKeepalive: tunnel.DefaultKeepalive,
		}
	}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 198.51.100.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wq, err := session(ours, leaseOurs).WGQuick()
	if err != nil {
		t.Fatal(err)
	}
	// Leftovers of a crashed client: Connect must cope with them.
	tp.consumer.MustRun("ip", "rule", "add", "table", "main", "suppress_prefixlength", "0", "pref", "32100")
	tp.consumer.MustRun("ip", "rule", "add", "not", "fwmark", "0x6d79", "table", "28025", "pref", "32101")
	tp.consumer.MustRun("nft", "add", "table", "inet", DefaultKillSwitchTable)
	client, ready := startHelper(t, tp.consumer, "client", clientSpec{WGQuick: string(wq), ResolvConf: resolv})
	if len(ready) != 1 || ready[0] == "1" {
		t.Fatalf("client TUN batch size %v: kernel TUN offloads not in use", ready)
	}
	err = tp.consumer.Do(func() error {
		_, err := Connect(t.Context(), ClientConfig{Session: session(theirs, leaseTheirs)})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "another tunnel is connected") {
		t.Fatalf("second client: %v, want refusal", err)
	}
	if rules := tp.consumer.MustRun("ip", "rule"); strings.Count(rules, "suppress_prefixlength") != 1 || strings.Count(rules, "fwmark 0x6d79 lookup") != 1 || strings.Count(rules, "fwmark 0x6d7901ce lookup main") != 1 {
		t.Fatalf("policy rules doubled after a crashed run:\n%s", rules)
	}

	serveUDPEcho(t, tp.provider, providerUplink+":53") // a LAN resolver
	// Services of the consumer, probed from the provider's namespace
	// (another host on its LAN, outside the tunnel).
	inbox := countInbound(t, tp.consumer, consumerAddr+":7777")
	t.Run("inbound blocked", func(t *testing.T) {
		if n := probeInbound(tp.provider, consumerAddr+":7777"); n > 0 {
			t.Fatalf("%d inbound connections from outside the tunnel accepted", n)
		}
		if n := inbox.udp.Load(); n != 0 {
			t.Fatalf("%d unsolicited datagrams from outside the tunnel reached a consumer socket", n)
		}
		n, err := sumBlocked([]byte(tp.consumer.MustRun("nft", "-j", "list", "table", "inet", DefaultKillSwitchTable)), "killswitch-inbound")
		if err != nil || n == 0 {
			t.Fatalf("inbound drop counter %d, %v: the probes were not dropped by the kill switch", n, err)
		}
	})
	t.Run("fetch through our exit", func(t *testing.T) {
		// DNS to a resolver outside the tunnel would leak: the kill switch
		// refuses it.
		if reply, err := udpQuery(tp.consumer, providerUplink+":53"); err == nil {
			t.Fatalf("DNS to the LAN resolver outside the tunnel answered: %q", reply)
		}
		body, err := fetch(tp.consumer, "http://"+internetAddr+":8080/", "", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// The internet host sees the exit's address, not the consumer's.
		if body != "internet saw "+providerOut {
			t.Fatalf("body %q: traffic did not leave through the exit", body)
		}
		const n = 4 << 20
		body, err = fetch(tp.consumer, fmt.Sprintf("http://%s:8080/bytes?n=%d", internetAddr, n), "", 10*time.Second)
		if err != nil || len(body) != n {
			t.Fatalf("bulk fetch: %d bytes, %v", len(body), err)
		}
		pst := peerStats(t, exit, ours.PublicKey())
		var cst tunnel.PeerStats
		if err := json.Unmarshal([]byte(client.call("stats")), &cst); err != nil {
			t.Fatal(err)
		}
		if pst.TxBytes < n || cst.RxBytes < n {
			t.Fatalf("counters below the transfer: exit tx %d, client rx %d, want >= %d", pst.TxBytes, cst.RxBytes, n)
		}
		// Both ends count the same WireGuard messages.
		if diff := float64(pst.TxBytes) - float64(cst.RxBytes); diff < 0 || diff > 0.02*n {
			t.Fatalf("exit tx %d vs client rx %d differ by more than 2%%", pst.TxBytes, cst.RxBytes)
		}
		if pst.LastHandshake.IsZero() {
			t.Fatal("exit reports no handshake")
		}
		if b, _ := os.ReadFile(resolv); !strings.Contains(string(b), "nameserver "+pool.Gateway().V4.String()) {
			t.Fatalf("resolv.conf not pointed at the tunnel DNS: %q", b)
		}
	})

	t.Run("ipv6 through our exit", func(t *testing.T) {
		body, err := fetch(tp.consumer, "http://["+internetAddr6+"]:8080/", "", 5*time.Second)
		if err != nil || body != "internet saw "+providerOut6 {
			t.Fatalf("IPv6 fetch: %q, %v", body, err)
		}
		if _, err := fetch(tp.provider, "http://["+deniedTarget6+"]:8080/", "", 3*time.Second); err != nil {
			t.Fatalf("control: provider cannot reach %s: %v", deniedTarget6, err)
		}
		if body, err := fetch(tp.consumer, "http://["+deniedTarget6+"]:8080/", "", 1500*time.Millisecond); err == nil {
			t.Fatalf("unique-local %s through the tunnel: got %q, want blocked", deniedTarget6, body)
		}
	})

	t.Run("exit policy", func(t *testing.T) {
		before, _ := strconv.ParseUint(exit.call("blocked"), 10, 64)
		targets := []string{
			"http://" + providerUplink + ":8081/", // the node's own addresses
			"http://" + providerOut + ":8081/",
			"http://" + pool.Gateway().V4.String() + ":8081/",
		}
		for _, d := range deniedTargets {
			targets = append(targets, "http://"+d+":8080/")
		}
		targets = append(targets,
			"http://"+internetAddr+":8081/",   // operator deny (port)
			"http://"+allowedPrivate+":8081/", // allowed on 8080 only
		)
		errs := make(chan error, len(targets))
		for _, u := range targets {
			go func() {
				body, err := fetch(tp.consumer, u, "", 1500*time.Millisecond)
				if err == nil {
					errs <- fmt.Errorf("%s through the tunnel: got %q, want blocked", u, body)
					return
				}
				errs <- nil
			}()
		}
		for range targets {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		after, err := strconv.ParseUint(exit.call("blocked"), 10, 64)
		if err != nil || after < before+uint64(len(targets)) {
			t.Fatalf("blocked counter %d -> %d (%v), want at least %d more", before, after, err, len(targets))
		}
		// The allowed public address still works after the refusals, and
		// the operator's allow rule opens one private port.
		for _, u := range []string{"http://" + internetAddr + ":8080/", "http://" + allowedPrivate + ":8080/"} {
			if _, err := fetch(tp.consumer, u, "", 5*time.Second); err != nil {
				t.Fatalf("%s: %v", u, err)
			}
		}
	})

	t.Run("exit policy follows the provider's addresses", func(t *testing.T) {
		denySet := func() string { return tp.provider.MustRun("nft", "list", "set", "inet", DefaultExitTable, "deny4") }
		waitFor := func(what string, cond func() bool) {
			t.Helper()
			if !testenv.Until(10*time.Second, cond) {
				t.Fatalf("%s: not within 10s; deny4:\n%s\nexit log:\n%s", what, denySet(), exit.logs())
			}
		}
		// An address the provider gains after the exit started goes into
		// the firewall's deny set (local delivery is also refused by the
		// input chain; the set keeps the two paths in agreement).
		const added = "203.0.113.99"
		tp.provider.MustRun("ip", "addr", "add", added+"/32", "dev", "lo")
		waitFor("new interface address in the deny set", func() bool { return strings.Contains(denySet(), added) })
		tp.provider.MustRun("ip", "addr", "del", added+"/32", "dev", "lo")
		waitFor("removed interface address out of the deny set", func() bool { return !strings.Contains(denySet(), added) })

		// A public address that is the provider's but not on its
		// interfaces (say, its NAT mapping on a router) is reachable
		// until the node learns it, then refused in the forward path.
		const mapped = "203.0.113.77"
		tp.internet.MustRun("ip", "addr", "add", mapped+"/32", "dev", "lo")
		defer tp.internet.MustRun("ip", "addr", "del", mapped+"/32", "dev", "lo")
		url := "http://" + mapped + ":8080/"
		if body, err := fetch(tp.consumer, url, "", 5*time.Second); err != nil || body != "internet saw "+providerOut {
			t.Fatalf("control: %s before it is denied: %q %v", url, body, err)
		}
		before, _ := strconv.ParseUint(exit.call("blocked"), 10, 64)
		if got := exit.call("setextra " + mapped); got != "OK" {
			t.Fatalf("setextra: %s", got)
		}
		waitFor("extra denied address in the deny set", func() bool { return strings.Contains(denySet(), mapped) })
		if body, err := fetch(tp.consumer, url, "", 1500*time.Millisecond); err == nil {
			t.Fatalf("%s through the tunnel after SetExtraDenied: %q, want blocked", url, body)
		}
		if after, err := strconv.ParseUint(exit.call("blocked"), 10, 64); err != nil || after <= before {
			t.Fatalf("blocked counter %d -> %d (%v): the refusal was not the exit policy's", before, after, err)
		}
		// The rest of the policy (operator rules, defaults) is unchanged.
		if !strings.Contains(denySet(), "10.0.0.0/8") {
			t.Fatalf("default prefixes lost from the deny set:\n%s", denySet())
		}
		if got := exit.call("setextra "); got != "OK" {
			t.Fatalf("setextra (none): %s", got)
		}
		waitFor("extra address out of the deny set", func() bool { return !strings.Contains(denySet(), mapped) })
		if _, err := fetch(tp.consumer, url, "", 5*time.Second); err != nil {
			t.Fatalf("%s after the extra addresses were cleared: %v", url, err)
		}
	})

	t.Run("dns on the gateway is forwarded upstream", func(t *testing.T) {
		serveUDPEcho(t, tp.internet, internetAddr+":53")
		reply, err := udpQuery(tp.consumer, pool.Gateway().V4.String()+":53")
		if err != nil || reply != "echo query from "+providerOut {
			t.Fatalf("DNS via gateway: %q, %v", reply, err)
		}
	})

	t.Run("per-peer bandwidth limit", func(t *testing.T) {
		// Every number is relative to the tunnel's own speed measured in
		// this run (the machine may be busy): the limit is a tenth of
		// it. Load only slows a transfer, so "at most twice the limit"
		// holds on any machine.
		rate := func(n int) float64 {
			start := time.Now()
			body, err := fetch(tp.consumer, fmt.Sprintf("http://%s:8080/bytes?n=%d", internetAddr, n), "", 30*time.Second)
			if err != nil || len(body) != n {
				t.Fatalf("bulk fetch: %d of %d bytes, %v", len(body), n, err)
			}
			return float64(n) / time.Since(start).Seconds()
		}
		setLimit := func(bps uint64) {
			b, _ := json.Marshal(tunnel.PeerConfig{PublicKey: ours.PublicKey(), AllowedIPs: leaseOurs.Prefixes(), BandwidthLimit: bps})
			if got := exit.call("addpeer " + string(b)); got != "OK" {
				t.Fatalf("addpeer with limit: %s\n%s", got, exit.logs())
			}
		}
		baseline := rate(8 << 20)
		// At most a third of what /bytes serves, so the limited transfer
		// (3 s of the limit) stays within it on a fast machine; a lower
		// limit only widens the gap the test asserts.
		limit := min(max(uint64(baseline/10), 64<<10), (64<<20)/3) // bytes per second
		// The limiter's bucket starts full (one second of traffic), so a
		// 3-second-budget transfer averages up to 1.5x the limit.
		n := int(3 * limit)
		setLimit(limit)
		limited := rate(n)
		setLimit(0)
		unlimited := rate(n)
		t.Logf("baseline %.2f MB/s, limit %.2f MB/s: limited %.2f MB/s (%.2fx the limit), unlimited again %.2f MB/s (%.2fx the limit)",
			baseline/1e6, float64(limit)/1e6, limited/1e6, limited/float64(limit), unlimited/1e6, unlimited/float64(limit))
		if limited > 2*float64(limit) {
			t.Errorf("limited transfer ran at %.2fx the limit, want at most 2x (1.5x with the full bucket)", limited/float64(limit))
		}
		// Unlimited, the same transfer runs near the baseline (10x the
		// limit); it would take 2 s or more with the limit still there.
		if unlimited < 3*float64(limit) {
			t.Errorf("removing the limit did not speed up the transfer: %.2fx the limit, baseline %.2fx", unlimited/float64(limit), baseline/float64(limit))
		}
	})

	t.Run("standard wireguard-go and wg from the wg-quick export", func(t *testing.T) {
		testStandardTools(t, tp, session(theirs, leaseTheirs))
	})

	t.Run("kill switch while the exit is gone", func(t *testing.T) {
		// While connected, a socket forced out of the physical interface
		// is refused by the kill switch.
		if body, err := fetch(tp.consumer, "http://"+internetAddr+":8080/", "vc", 1500*time.Millisecond); err == nil {
			t.Fatalf("bypass of the tunnel while connected: %q", body)
		}
		exit.kill() // crash: no clean-up
		if !strings.Contains(nftTables(t, tp.provider), "table inet "+DefaultExitTable) {
			t.Fatal("expected the crashed exit's table to be left behind")
		}
		for _, dev := range []string{"", "vc"} {
			if body, err := fetch(tp.consumer, "http://"+internetAddr+":8080/", dev, 1500*time.Millisecond); err == nil {
				t.Fatalf("traffic (bound to %q) left while the exit is down: %q", dev, body)
			}
		}
	})

	t.Run("restart after crash, client moves over without leaking", func(t *testing.T) {
		// A new exit (new key and port) on the same node: it must clear
		// the crashed one's leftovers, and the client moves to it with
		// Reconfigure (a new session: our key, tunnel address, DNS and a
		// direct destination change) while the kill switch stays in place.
		exitKey2, ours2 := mustKey(t), mustKey(t)
		lease2, err := pool.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		spec2 := spec
		spec2.PrivateKey, spec2.ListenPort = exitKey2.String(), 51821
		spec2.Peers = []tunnel.PeerConfig{{PublicKey: ours2.PublicKey(), AllowedIPs: lease2.Prefixes()}}
		tp.provider.MustRun("sysctl", "-qw", "net.ipv6.conf.vu.accept_ra=1") // the crash left 2
		exit2, _ := startHelper(t, tp.provider, "exit", spec2)
		if n := strings.Count(nftTables(t, tp.provider), "table inet "+DefaultExitTable); n != 1 {
			t.Fatalf("%d exit tables after restart, want 1", n)
		}
		if body, err := fetch(tp.consumer, "http://"+internetAddr+":8080/", "", 1500*time.Millisecond); err == nil {
			t.Fatalf("fetch succeeded before the client moved to the new exit: %q", body)
		}
		// Probe for leaks during the whole move: any answer showing the
		// consumer's own address left outside the tunnel.
		leaks := make(chan string, 64)
		pctx, stopProbe := context.WithCancel(t.Context())
		probeDone := make(chan struct{})
		go func() {
			defer close(probeDone)
			for pctx.Err() == nil {
				for _, dev := range []string{"", "vc"} {
					if body, err := fetch(tp.consumer, "http://"+internetAddr+":8080/", dev, 300*time.Millisecond); err == nil && !strings.HasSuffix(body, " saw "+providerOut) {
						select {
						case leaks <- dev + ": " + body:
						default:
						}
					}
				}
			}
		}()
		sess2 := session(ours2, lease2)
		sess2.PeerPublicKey, sess2.Endpoint = exitKey2.PublicKey(), netip.MustParseAddrPort(providerUplink+":51821")
		sess2.DNS = []netip.Addr{netip.MustParseAddr(providerUplink)}
		direct := netip.MustParseAddrPort(deniedTargets[0] + ":8080")
		reconfigure := func(s tunnel.SessionConfig, direct ...netip.AddrPort) string {
			wq, err := s.WGQuick()
			if err != nil {
				t.Fatal(err)
			}
			arg, _ := json.Marshal(reconfigureSpec{WGQuick: string(wq), Direct: direct})
			return client.call("reconfigure " + base64.StdEncoding.EncodeToString(arg))
		}
		// Refused before anything changes: an invalid direct destination.
		if got := reconfigure(sess2, netip.MustParseAddrPort(deniedTargets[0]+":0")); !strings.HasPrefix(got, "ERR") {
			t.Fatalf("reconfigure with port 0: %q, want ERR", got)
		}
		// A provider that never answers: Reconfigure fails after the
		// handshake timeout and the client stays fail-closed, then a
		// second Reconfigure completes the move.
		dead := sess2
		dead.Endpoint = netip.MustParseAddrPort(providerUplink + ":51899")
		if got := reconfigure(dead, direct); !strings.Contains(got, "handshake") {
			t.Fatalf("reconfigure to a dead endpoint: %q, want a handshake error", got)
		}
		if !strings.Contains(nftTables(t, tp.consumer), DefaultKillSwitchTable) {
			t.Fatal("no kill switch after a failed Reconfigure")
		}
		got := reconfigure(sess2, direct)
		time.Sleep(500 * time.Millisecond) // keep probing on the new session
		stopProbe()
		<-probeDone
		close(leaks)
		for l := range leaks {
			t.Errorf("leak during reconfigure: %s", l)
		}
		if got != "OK" {
			t.Fatalf("reconfigure: %s\nstderr:\n%s", got, client.logs())
		}
		body, err := fetch(tp.consumer, "http://"+internetAddr+":8080/", "", 10*time.Second)
		if err != nil || body != "internet saw "+providerOut {
			t.Fatalf("fetch through the new exit: %q, %v", body, err)
		}
		if body, err := fetch(tp.consumer, "http://"+internetAddr+":8080/", "vc", 1500*time.Millisecond); err == nil {
			t.Fatalf("bypass of the tunnel after Reconfigure: %q", body)
		}
		// The direct destination is reached outside the tunnel (the exit
		// policy denies it through the tunnel), and only its port.
		if body, err := fetch(tp.consumer, "http://"+direct.String()+"/", "", 5*time.Second); err != nil || body != "internet saw "+consumerAddr {
			t.Fatalf("direct destination after Reconfigure: %q, %v", body, err)
		}
		if body, err := fetch(tp.consumer, "http://"+deniedTargets[0]+":8081/", "", 1500*time.Millisecond); err == nil {
			t.Fatalf("another port of the direct address left the host: %q", body)
		}
		addrs := tp.consumer.MustRun("ip", "-o", "addr", "show", "dev", DefaultClientInterface)
		if !strings.Contains(addrs, lease2.V4.String()+"/") || strings.Contains(addrs, leaseOurs.V4.String()+"/") {
			t.Fatalf("tunnel addresses after Reconfigure, want only %s: %s", lease2.V4, addrs)
		}
		if b, _ := os.ReadFile(resolv); !strings.Contains(string(b), "nameserver "+providerUplink+"\n") {
			t.Fatalf("resolv.conf after Reconfigure: %q", b)
		}
		if st := peerStats(t, client, exitKey2.PublicKey()); st.LastHandshake.IsZero() {
			t.Fatal("no handshake with the new exit")
		}

		client.quit()
		if tables := nftTables(t, tp.consumer); strings.Contains(tables, DefaultKillSwitchTable) {
			t.Fatalf("kill switch left after disconnect: %s", tables)
		}
		if rules := tp.consumer.MustRun("ip", "rule"); strings.Contains(rules, "suppress_prefixlength") || strings.Contains(rules, "fwmark") {
			t.Fatalf("policy rules left after disconnect:\n%s", rules)
		}
		if links := tp.consumer.MustRun("ip", "-o", "link"); strings.Contains(links, DefaultClientInterface) {
			t.Fatalf("client interface left after disconnect: %s", links)
		}
		if routes := tp.consumer.MustRun("ip", "route", "show", "table", "all"); strings.Contains(routes, "throw") {
			t.Fatalf("throw routes left after disconnect:\n%s", routes)
		}
		if b, _ := os.ReadFile(resolv); string(b) != "nameserver 198.51.100.1\n" {
			t.Fatalf("resolv.conf not restored: %q", b)
		}
		body, err = fetch(tp.consumer, "http://"+internetAddr+":8080/", "", 5*time.Second)
		if err != nil || body != "internet saw "+consumerAddr {
			t.Fatalf("direct path after disconnect: %q, %v", body, err)
		}
		if reply, err := udpQuery(tp.consumer, providerUplink+":53"); err != nil || reply != "echo query from "+consumerAddr {
			t.Fatalf("LAN resolver after disconnect: %q, %v", reply, err)
		}
		// The inbound probes' control: without the kill switch they arrive.
		if n := probeInbound(tp.provider, consumerAddr+":7777"); n == 0 || inbox.udp.Load() == 0 {
			t.Fatalf("inbound probes after disconnect: %d connections, %d datagrams; the probes cannot see inbound traffic", n, inbox.udp.Load())
		}

		exit2.quit()
		if tables := nftTables(t, tp.provider); strings.Contains(tables, DefaultExitTable) {
			t.Fatalf("exit table left after Close: %s", tables)
		}
		if links := tp.provider.MustRun("ip", "-o", "link"); strings.Contains(links, DefaultExitInterface) {
			t.Fatalf("exit interface left after Close: %s", links)
		}
		if ra := strings.TrimSpace(tp.provider.MustRun("sysctl", "-n", "net.ipv6.conf.vu.accept_ra")); ra != "1" {
			t.Fatalf("uplink accept_ra = %s after Close, want it restored to 1", ra)
		}
		if fwd := strings.TrimSpace(tp.provider.MustRun("sysctl", "-n", "net.ipv4.ip_forward")); fwd != "1" {
			// The test turned forwarding on before the exit started, so
			// the exit must leave it on.
			t.Fatalf("ip_forward = %s after Close, want the pre-exit value 1", fwd)
		}
	})
}

// testStandardTools brings up Debian's wireguard-go with wg(8) in a fresh
// namespace from our wg-quick export and fetches through our exit.
func testStandardTools(t *testing.T, tp *topology, sess tunnel.SessionConfig) {
	if err := checkTools("wireguard-go", "wg"); err != nil {
		testenv.SkipOrFail(t, "%v (Debian packages wireguard-go, wireguard-tools)", err)
	}
	wq, err := sess.WGQuick()
	if err != nil {
		t.Fatal(err)
	}
	std := netns.New(t, "s")
	// wireguard-go keeps its UAPI socket in /var/run/wireguard, shared by
	// every namespace: the name must not clash with other tests' devices.
	ifc := fmt.Sprintf("omwg%d", os.Getpid()%1000000)
	netns.Link(t, std, "vs", "192.0.2.2/24", tp.provider, "vp2", "192.0.2.1/24")
	std.MustRun("ip", "route", "add", "default", "via", "192.0.2.1")
	sess.Endpoint = netip.MustParseAddrPort("192.0.2.1:51820")

	conf := filepath.Join(t.TempDir(), "wg0.conf")
	addrs, err := stripWGQuick(string(wq), conf)
	if err != nil {
		t.Fatal(err)
	}
	p := std.Start("env", "WG_PROCESS_FOREGROUND=1", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", "wireguard-go", "-f", ifc)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := std.Run(context.Background(), "ip", "link", "show", ifc); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go did not create %s:\n%s", ifc, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	std.MustRun("wg", "setconf", ifc, conf)
	for _, a := range addrs {
		std.MustRun("ip", "addr", "add", a, "dev", ifc)
	}
	std.MustRun("ip", "link", "set", ifc, "up")
	std.MustRun("ip", "route", "add", "203.0.113.0/24", "dev", ifc)
	body, err := fetch(std, "http://"+internetAddr+":8080/", "", 10*time.Second)
	if err != nil {
		t.Fatalf("fetch through standard wireguard-go: %v\nwg show:\n%s\nwireguard-go:\n%s", err, std.MustRun("wg", "show"), p.Output())
	}
	if body != "internet saw "+providerOut {
		t.Fatalf("body %q: not through the exit", body)
	}
	if out := std.MustRun("wg", "show", ifc, "latest-handshakes"); strings.HasSuffix(strings.TrimSpace(out), "\t0") {
		t.Fatalf("wg reports no handshake: %q", out)
	}
	_ = p.Kill()
}

// stripWGQuick writes the wg(8) part of a wg-quick file to path (what
// `wg-quick strip` does: drop Address, DNS, MTU and the like) and returns
// the Address values for `ip addr add`.
func stripWGQuick(wq, path string) ([]string, error) {
	wgOnly := map[string]bool{"address": true, "dns": true, "mtu": true, "table": true, "preup": true, "postup": true, "predown": true, "postdown": true, "saveconfig": true}
	var out strings.Builder
	var addrs []string
	sc := bufio.NewScanner(strings.NewReader(wq))
	for sc.Scan() {
		line := sc.Text()
		k, v, ok := strings.Cut(line, "=")
		key := strings.ToLower(strings.TrimSpace(k))
		if ok && wgOnly[key] {
			if key == "address" {
				for _, a := range strings.Split(v, ",") {
					addrs = append(addrs, strings.TrimSpace(a))
				}
			}
			continue
		}
		out.WriteString(line + "\n")
	}
	return addrs, os.WriteFile(path, []byte(out.String()), 0o600)
}

// serveUDPEcho answers every datagram on addr inside ns with "echo <data>
// from <source address>".
func serveUDPEcho(t *testing.T, ns *netns.NS, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := ns.Do(func() (err error) { pc, err = net.ListenPacket("udp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	servetest.UDP(t, pc, func(data []byte, from net.Addr) []byte {
		host, _, _ := net.SplitHostPort(from.String())
		return []byte(fmt.Sprintf("echo %s from %s", data, host))
	})
}

// inbound counts what reaches a consumer's TCP and UDP sockets.
type inbound struct{ udp, tcp atomic.Int64 }

// countInbound listens on addr (TCP and UDP) inside ns until the test
// ends, counting accepted connections and datagrams.
func countInbound(t *testing.T, ns *netns.NS, addr string) *inbound {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		if pc, err = net.ListenPacket("udp4", addr); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	in := &inbound{}
	servetest.UDP(t, pc, func([]byte, net.Addr) []byte { in.udp.Add(1); return nil })
	t.Cleanup(servetest.TCP(ln, func(net.Conn) { in.tcp.Add(1) }))
	return in
}

// probeInbound sends datagrams to addr and opens TCP connections to it
// from inside ns, and returns how many connections were established.
func probeInbound(ns *netns.NS, addr string) (connected int) {
	_ = ns.Do(func() error {
		for range 3 {
			if c, err := net.DialTimeout("udp4", addr, time.Second); err == nil {
				_, _ = c.Write([]byte("unsolicited"))
				_ = c.Close()
			}
			if c, err := net.DialTimeout("tcp4", addr, 500*time.Millisecond); err == nil {
				connected++
				_ = c.Close()
			}
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond) // the last datagram arrives
	return connected
}

// udpQuery sends "query" from inside ns to addr and returns the answer.
func udpQuery(ns *netns.NS, addr string) (reply string, err error) {
	err = ns.Do(func() error {
		c, err := net.DialTimeout("udp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(1500 * time.Millisecond))
		if _, err := c.Write([]byte("query")); err != nil {
			return err
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		reply = string(buf[:n])
		return err
	})
	return reply, err
}
