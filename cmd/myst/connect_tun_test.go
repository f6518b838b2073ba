package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	hclient "github.com/openmyst/openmyst/hermes/client"
	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// Environment of TestConnectTunEndToEnd's hub child.
const (
	tunRoleEnv     = "MYST_TUN_E2E_ROLE"
	tunDirEnv      = "MYST_TUN_E2E_DIR"
	tunProviderEnv = "MYST_TUN_E2E_PROVIDER"
	// tunProvider2Env, if set, names a second provider whose earnings the
	// hub reports as "TUN-E2E-HUB earned2=".
	tunProvider2Env = "MYST_TUN_E2E_PROVIDER2"
	// tunLinkEnv, if set, is the address the hub proxies its chain,
	// bootstrap and hermes onto (default tHub).
	tunLinkEnv = "MYST_TUN_E2E_LINK"
	// tunLabEnv set to "1" makes the hub also run, on the link address, a
	// libp2p bootstrap with the relay role (circuit relay v2, AutoNAT) and
	// a STUN/TURN relay on UDP 3478 (TestNATLabPaidSession).
	tunLabEnv = "MYST_TUN_E2E_LAB"
)

// Topology (all namespaces created by the test):
//
//	cons ns c0 10.99.0.2 ── p0 10.99.0.1, 10.99.0.3 hub ns: devnet child (chain,
//	                                                hermes, bootstrap; chain and
//	                                                bootstrap proxied onto
//	                                                10.99.0.1) and `myst service
//	                                                --exit-mode kernel`
//	inet ns i0 203.0.113.2 ── u0 203.0.113.1        hub ns
const (
	tHub, tHub2, tCons, tInet = netns.HubAddr, netns.HubAddr2, netns.ConsAddr, netns.InetAddr
	tDevnetConsumerAccount    = 8 // node's devnet consumer (funded, registered)
)

// tunHubState is what the hub child writes for the test.
type tunHubState struct {
	ChainURL      string `json:"chain_url"`       // on loopback, for the service
	ChainProxyURL string `json:"chain_proxy_url"` // on 10.99.0.1, for the consumer
	Deployment    string `json:"deployment"`
	HermesURL     string `json:"hermes_url"`
	Bootstrap     string `json:"bootstrap"`      // loopback multiaddr
	BootstrapLink string `json:"bootstrap_link"` // proxied onto 10.99.0.1
	HermesLink    string `json:"hermes_link"`    // proxied onto 10.99.0.1
	// RelayBootstrap is the relay-role bootstrap on the link (lab only).
	RelayBootstrap string `json:"relay_bootstrap,omitempty"`
}

// tunHubLab skips the test with -short (why: what it runs), requires
// network namespaces, a TUN device and nft, and builds the hub lab named
// by label.
func tunHubLab(t *testing.T, label, what string) *netns.HubLab {
	t.Helper()
	if testing.Short() {
		t.Skip(what)
	}
	testenv.RequireNetns(t)
	testenv.RequireTUN(t)
	testenv.RequireTools(t, "nft")
	return netns.NewHubLab(t, label)
}

// TestConnectTunEndToEnd drives the product's commands in network
// namespaces: `myst service --exit-mode kernel` serves a paid session to
// a `myst daemon` asked by `myst connect --tun` (custom DNS; status,
// disconnect restore everything), then to `myst connect --tun
// --standalone`; the consumer fetches from an "internet" host
// (203.0.113.2) through the kernel tunnel, the hermes accepts its promises
// (provider earnings > 0), and after the service is SIGKILLed nothing
// leaves the consumer outside the tunnel until Ctrl-C (SIGINT), which
// restores routes, kill switch and resolv.conf.
func TestConnectTunEndToEnd(t *testing.T) {
	if os.Getenv(tunRoleEnv) == "hub" {
		runTunHub(t)
		return
	}
	start := time.Now()
	lab := tunHubLab(t, "t", "runs a devnet, myst service and myst connect --tun in network namespaces")
	hub, cons, inet := lab.Hub, lab.Cons, lab.Inet

	body := []byte(strings.Repeat("openmyst kernel mode ", 50000))
	web := serveWebLog(t, inet, tInet+":80", body)
	direct := hub.Listen("tcp", tHub2+":9000")
	var directAccepted atomic.Int64
	t.Cleanup(servetest.TCP(direct, func(c net.Conn) {
		directAccepted.Add(1)
		// Tell the dialer it was accepted (and counted): a dial returns
		// once the kernel finished the handshake, before this handler
		// ran, so counting after the dial raced.
		_, _ = c.Write([]byte{1})
	}))
	// consDial dials from inside the consumer namespace.
	consDial := cons.Dialer(3 * time.Second)
	consGet := func(ctx context.Context) ([]byte, time.Duration, error) {
		t0 := time.Now()
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: consDial, DisableKeepAlives: true}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+tInet+"/", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		first := make([]byte, 1)
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			return nil, 0, err
		}
		d := time.Since(t0)
		rest, err := io.ReadAll(resp.Body)
		return append(first, rest...), d, err
	}
	// directDial connects to the direct listener and waits until it has
	// accepted (and counted) the connection.
	directDial := func(ctx context.Context) error {
		c, err := consDial(ctx, "tcp", tHub2+":9000")
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			return fmt.Errorf("direct listener did not accept: %w", err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	if err := directDial(ctx); err != nil {
		t.Fatalf("direct path before connecting: %v", err)
	}

	// Identities: a fresh provider, and the devnet's funded consumer
	// imported into the consumer's keystore.
	provDD, consDD, dir := t.TempDir(), t.TempDir(), t.TempDir()
	provider, pf := newDefaultIdentity(t, provDD, "tun-e2e")
	importDevnetConsumer(t, consDD, dir, pf)

	hubProc := hub.Start("env", tunRoleEnv+"=hub", tunDirEnv+"="+dir, tunProviderEnv+"="+provider,
		os.Args[0], "-test.run=^TestConnectTunEndToEnd$", "-test.count=1", "-test.v", "-test.timeout=85s")
	st := waitHubState(ctx, t, hubProc, dir)
	svc := hub.Start("env", mystArgv("--data-dir", provDD, "--keystore.light-scrypt", "service", "--passphrase-file", pf,
		"--chain.rpc", st.ChainURL, "--chain.deployment", st.Deployment, "--hermes.url", st.HermesURL, "--p2p.bootstrap", st.Bootstrap,
		"--p2p.listen", "/ip4/"+tHub+"/tcp/0", "--wg.port", "0", "--wg.advertise", tHub, "--exit-mode", "kernel",
		"--exit.allow", "tcp:"+tInet+"/32 port 80", "--location.country", "DE", "--price.per-hour", "0.1", "--price.per-gib", "0.5",
		"--payment.interval", "1s", "--service.api=false")...)
	waitOutput(ctx, t, svc, "serving", "myst service")

	resolv := writeTunResolv(t, dir)
	// Through the daemon: `myst daemon` (root) in the consumer namespace
	// owns the tunnel; `myst connect --tun`, `status` and `disconnect` only
	// ask it.
	daemon := cons.Start("env", mystArgv("--data-dir", consDD, "--keystore.light-scrypt", "daemon", "--consumer.passphrase-file", pf,
		"--chain.rpc", st.ChainProxyURL, "--chain.deployment", st.Deployment, "--p2p.bootstrap", st.BootstrapLink,
		"--p2p.listen", "/ip4/"+tCons+"/tcp/0", "--p2p.nat=false", "--tun.resolv-conf", resolv)...)
	waitOutput(ctx, t, daemon, "node started", "myst daemon")
	cli := func(args ...string) string {
		t.Helper()
		out, err := cons.Run(ctx, "env", mystArgv(append([]string{"--data-dir", consDD}, args...)...)...)
		if err != nil {
			t.Fatalf("myst %s: %v\n--- daemon:\n%s", strings.Join(args, " "), err, daemon.Output())
		}
		return out
	}
	if out := cli("connect", "--tun", "--country", "DE", "--dns", "custom", "--dns.servers", "192.0.2.77"); !strings.Contains(out, "the whole device through myst0, kill switch connection") {
		t.Fatalf("myst connect --tun through the daemon printed %q", out)
	}
	if got, _, err := consGet(ctx); err != nil || string(got) != string(body) {
		t.Fatalf("fetch through the daemon's tunnel: %d bytes, %v", len(got), err)
	}
	if r, _ := os.ReadFile(resolv); !strings.Contains(string(r), "nameserver 192.0.2.77") {
		t.Errorf("resolv.conf with custom DNS: %q", r)
	}
	if err := directDial(ctx); err == nil {
		t.Error("direct connection outside the daemon's tunnel succeeded")
	}
	if out := cli("status"); !strings.Contains(out, "connection, active true") || !strings.Contains(out, "custom 192.0.2.77") ||
		!strings.Contains(out, tHub+" (matches_tunnel_peer)") { // the public address: the provider's exit, the hub
		t.Errorf("myst status:\n%s", out)
	}
	cli("disconnect")
	if r, _ := os.ReadFile(resolv); string(r) != tunOrigResolv {
		t.Errorf("resolv.conf after the daemon's disconnect: %q, want %q", r, tunOrigResolv)
	}
	if out, err := cons.Run(ctx, "nft", "list", "table", "inet", "openmyst_killswitch"); err == nil {
		t.Errorf("kill switch left after the daemon's disconnect:\n%s", out)
	}
	if err := directDial(ctx); err != nil {
		t.Errorf("direct path after the daemon's disconnect: %v", err)
	}
	if err := daemon.Signal(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("myst daemon did not stop: %v", err)
	}

	connStart := time.Now()
	conn := cons.Start("env", mystArgv("--data-dir", consDD, "--keystore.light-scrypt", "connect", "--tun", "--standalone", "--country", "DE",
		"--passphrase-file", pf, "--chain.rpc", st.ChainProxyURL, "--chain.deployment", st.Deployment,
		"--p2p.bootstrap", st.BootstrapLink, "--p2p.listen", "/ip4/"+tCons+"/tcp/0", "--tun.resolv-conf", resolv)...)
	waitOutput(ctx, t, conn, "connected to "+provider, "myst connect --tun")
	got, firstByte, err := consGet(ctx)
	if err != nil {
		t.Fatalf("fetch through the kernel tunnel: %v\n--- connect:\n%s", err, conn.Output())
	}
	if string(got) != string(body) {
		t.Fatalf("fetched %d bytes, want the %d-byte body", len(got), len(body))
	}
	t.Logf("myst connect --tun: start->connected line %s; fetch->first byte %s", time.Since(connStart).Round(time.Millisecond), firstByte.Round(time.Millisecond))
	if r, _ := os.ReadFile(resolv); !strings.Contains(string(r), "written by openmyst") {
		t.Errorf("resolv.conf while connected: %q", r)
	}
	if _, err := cons.Run(ctx, "nft", "list", "table", "inet", "openmyst_killswitch"); err != nil {
		t.Errorf("no kill switch while connected: %v", err)
	}
	earned := waitHubEarned(ctx, t, hubProc)

	// Kill the provider: the consumer's session fails, the kill switch stays.
	if err := svc.Kill(); err == nil {
		t.Log("myst service exited cleanly before the kill")
	}
	waitOutput(ctx, t, conn, "kill switch stays up", "myst connect --tun")
	if !strings.Contains(conn.Output(), "reconnect try 3 failed") {
		t.Errorf("myst connect --tun gave up before 3 reconnect tries:\n%s", conn.Output())
	}
	served := len(web.From())
	if _, _, err := consGet(ctx); err == nil {
		t.Error("fetched from the internet host with the provider dead")
	}
	if err := directDial(ctx); err == nil {
		t.Error("direct connection outside the tunnel succeeded under the kill switch")
	}
	stopTunConsumer(ctx, t, conn, cons, resolv, directDial)
	webFrom := web.From()
	for _, from := range webFrom {
		if strings.HasPrefix(from, tCons+":") {
			t.Errorf("the internet host saw the consumer's own address %s", from)
		}
	}
	if len(webFrom) != served {
		t.Errorf("the internet host served %d requests after the provider died", len(webFrom)-served)
	}
	if got := directAccepted.Load(); got != 3 {
		t.Errorf("direct listener accepted %d connections, want 3 (before connect, after the daemon's disconnect, after the standalone disconnect)", got)
	}
	t.Logf("provider earned %s wei (hermes); whole test %s", earned, time.Since(start).Round(100*time.Millisecond))
}

// waitOutput waits until p has printed substr.
func waitOutput(ctx context.Context, t *testing.T, p *netns.Proc, substr, what string) {
	t.Helper()
	for !strings.Contains(p.Output(), substr) {
		select {
		case <-p.Exited():
			if strings.Contains(p.Output(), substr) {
				return
			}
			t.Fatalf("%s exited before printing %q:\n%s", what, substr, p.Output())
		case <-ctx.Done():
			t.Fatalf("%s did not print %q:\n%s", what, substr, p.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tunOrigResolv is the resolv.conf the tun tests start with and expect back.
const tunOrigResolv = "nameserver 192.0.2.53\n"

// writeTunResolv writes tunOrigResolv to dir/resolv.conf and returns its
// path, the --tun.resolv-conf of the consumer under test.
func writeTunResolv(t *testing.T, dir string) string {
	t.Helper()
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte(tunOrigResolv), 0o644); err != nil {
		t.Fatal(err)
	}
	return resolv
}

// mystArgv is the argv that runs the test binary as `myst args...` (for
// netns.NS.Start("env", ...)).
func mystArgv(args ...string) []string {
	return append([]string{mysttest.RunMainEnv + "=1", os.Args[0]}, args...)
}

// importDevnetConsumer imports the devnet's funded, registered consumer
// key (through a keystore in dir) into the data dir dd with the
// passphrase file pf and makes it the default identity.
func importDevnetConsumer(t *testing.T, dd, dir, pf string) {
	t.Helper()
	ks := keystore.NewKeyStore(filepath.Join(dir, "ks"), keystore.LightScryptN, keystore.LightScryptP)
	acct, err := ks.ImportECDSA(devchain.DevKey(tDevnetConsumerAccount), "tun-e2e")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, dd, "identity", "import", acct.URL.Path, "--passphrase-file", pf); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, dd, "identity", "set-default", acct.Address.Hex()); err != nil {
		t.Fatal(err)
	}
}

// webLog is an HTTP server inside a namespace that serves one body and
// records the source address of every request.
type webLog struct {
	mu   sync.Mutex
	from []string
}

// serveWebLog serves body on addr (TCP) inside ns until the test ends.
func serveWebLog(t *testing.T, ns *netns.NS, addr string, body []byte) *webLog {
	t.Helper()
	w := &webLog{}
	web := ns.Listen("tcp", addr)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.from = append(w.from, r.RemoteAddr)
		w.mu.Unlock()
		_, _ = rw.Write(body)
	})}
	go func() { _ = srv.Serve(web) }()
	t.Cleanup(func() { _ = srv.Close() })
	return w
}

// From returns the source addresses of the requests served so far.
func (w *webLog) From() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.from...)
}

// stopTunConsumer sends SIGINT to a `myst connect --tun` in cons and
// checks that it restored everything: no kill switch table, no routing
// of its own, resolv.conf back to tunOrigResolv, and the direct path
// (outside any tunnel) open again.
func stopTunConsumer(ctx context.Context, t *testing.T, conn *netns.Proc, cons *netns.NS, resolv string, directDial func(context.Context) error) {
	t.Helper()
	if err := conn.Signal(syscall.SIGINT, 20*time.Second); err != nil {
		t.Fatalf("myst connect --tun did not stop on SIGINT: %v\n%s", err, conn.Output())
	}
	if !strings.Contains(conn.Output(), "restored") {
		t.Fatalf("myst connect --tun did not report the restore:\n%s", conn.Output())
	}
	if out, err := cons.Run(ctx, "nft", "list", "table", "inet", "openmyst_killswitch"); err == nil {
		t.Errorf("kill switch left after disconnect:\n%s", out)
	}
	if out, _ := cons.Run(ctx, "sh", "-c", "ip rule; ip route show table all; ip link"); strings.Contains(out, "myst0") || strings.Contains(out, "fwmark") || strings.Contains(out, "throw") {
		t.Errorf("routing left after disconnect:\n%s", out)
	}
	if r, _ := os.ReadFile(resolv); string(r) != tunOrigResolv {
		t.Errorf("resolv.conf after disconnect: %q, want %q", r, tunOrigResolv)
	}
	if err := directDial(ctx); err != nil {
		t.Errorf("direct path after disconnect: %v", err)
	}
}

// waitHubEarned waits for the hub child to report provider earnings > 0.
func waitHubEarned(ctx context.Context, t *testing.T, hub *netns.Proc) *big.Int {
	t.Helper()
	return waitHubEarnedKey(ctx, t, hub, "earned")
}

// waitHubEarnedKey waits for a "TUN-E2E-HUB <key>=" line with a positive
// amount.
func waitHubEarnedKey(ctx context.Context, t *testing.T, hub *netns.Proc, key string) *big.Int {
	t.Helper()
	for {
		last := ""
		sc := bufio.NewScanner(strings.NewReader(hub.Output()))
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "TUN-E2E-HUB "+key+"=") {
				last = strings.TrimPrefix(l, "TUN-E2E-HUB "+key+"=")
			}
		}
		if v, ok := new(big.Int).SetString(last, 10); ok && v.Sign() > 0 {
			return v
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no provider earnings from the hermes (last %q):\n%s", last, hub.Output())
		case <-hub.Exited():
			t.Fatalf("hub exited:\n%s", hub.Output())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runTunHub is the hub child: a devnet without providers, its chain and
// bootstrap proxied onto the consumer link, reporting the provider's
// hermes earnings until killed.
func runTunHub(t *testing.T) {
	dir, provider := os.Getenv(tunDirEnv), os.Getenv(tunProviderEnv)
	life := 80 * time.Second
	if os.Getenv(tunLabEnv) == "1" {
		life = natLabHubLife
	}
	ctx, cancel := context.WithTimeout(context.Background(), life)
	defer cancel()
	d, err := node.StartDevnet(ctx, node.DevnetConfig{DataDir: filepath.Join(dir, "devnet"), Providers: []node.ProviderSpec{}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	link := tHub
	if l := os.Getenv(tunLinkEnv); l != "" {
		link = l
	}
	proxy := func(target string) string {
		ln, err := net.Listen("tcp", link+":0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		go servetest.Forward(ln, target)
		return ln.Addr().String()
	}
	u, err := url.Parse(d.Chain.URL())
	if err != nil {
		t.Fatal(err)
	}
	boot := d.BootstrapAddrs()[0] // /ip4/127.0.0.1/tcp/PORT/p2p/ID
	parts := strings.Split(boot, "/")
	if len(parts) < 7 || parts[3] != "tcp" {
		t.Fatalf("unexpected bootstrap address %s", boot)
	}
	bootLink := proxy("127.0.0.1:" + parts[4])
	bh, bp, _ := net.SplitHostPort(bootLink)
	st := tunHubState{
		ChainURL: d.Chain.URL(), ChainProxyURL: "http://" + proxy(u.Host), Deployment: d.DeploymentPath(), HermesURL: d.Hermes.URL(),
		Bootstrap: boot, BootstrapLink: fmt.Sprintf("/ip4/%s/tcp/%s/p2p/%s", bh, bp, parts[6]),
	}
	hu, err := url.Parse(d.Hermes.URL())
	if err != nil {
		t.Fatal(err)
	}
	st.HermesLink = "http://" + proxy(hu.Host)
	if os.Getenv(tunLabEnv) == "1" {
		st.RelayBootstrap = startLabHubRelays(ctx, t, d, dir, link)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json.tmp"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "state.json.tmp"), filepath.Join(dir, "state.json")); err != nil {
		t.Fatal(err)
	}
	hc, err := hclient.New(d.Hermes.URL(), nil, hclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		if v, err := hc.Provider(ctx, provider); err == nil && v.LatestPromise != nil {
			fmt.Printf("TUN-E2E-HUB earned=%s\n", v.LatestPromise.Amount)
		}
		if p2 := os.Getenv(tunProvider2Env); p2 != "" {
			if v, err := hc.Provider(ctx, p2); err == nil && v.LatestPromise != nil {
				fmt.Printf("TUN-E2E-HUB earned2=%s\n", v.LatestPromise.Amount)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestConnectTunFlags: --tun refuses --proxy, --tun --standalone refuses
// to run without root before touching anything (checked as user nobody when the test runs
// as root) and takes the network's STUN/TURN servers (--ice.server).
func TestConnectTunFlags(t *testing.T) {
	_, err := runCLI(t, t.TempDir(), "connect", "--tun", "--proxy", "127.0.0.1:1080")
	if err == nil || !strings.Contains(err.Error(), "socks_listen") {
		t.Fatalf("--tun --proxy: err = %v, want a refusal", err)
	}
	// Without --standalone --tun asks the daemon, after checking the
	// request.
	if _, err := runCLI(t, t.TempDir(), "connect", "--tun", "--dns", "custom"); err == nil || !strings.Contains(err.Error(), "dns_servers") {
		t.Fatalf("--tun --dns custom without servers: err = %v, want a dns_servers error", err)
	}
	if _, err := runCLI(t, t.TempDir(), "connect", "--tun", "--kill-switch", "sometimes"); err == nil || !strings.Contains(err.Error(), "kill_switch") {
		t.Fatalf("--tun --kill-switch sometimes: err = %v, want a kill_switch error", err)
	}
	if _, err := runCLI(t, t.TempDir(), "connect", "--tun", "--kill-switch", "always"); err == nil || !strings.Contains(err.Error(), "myst daemon") {
		t.Fatalf("--tun without a daemon: err = %v, want to be told to start the daemon", err)
	}
	if os.Geteuid() != 0 {
		_, err := runCLI(t, t.TempDir(), "connect", "--tun", "--standalone")
		if err == nil || !strings.Contains(err.Error(), "needs root") {
			t.Fatalf("--tun as non-root: err = %v, want the root error", err)
		}
		return
	}
	// --ice.server reaches the standalone connection's consumer: a TURN
	// server without credentials is refused before anything is set up.
	if _, err := runCLI(t, t.TempDir(), "connect", "--tun", "--standalone", "--ice.server", "turn:127.0.0.1:3478?transport=udp"); err == nil || !strings.Contains(err.Error(), "needs a username and password") {
		t.Fatalf("--tun --standalone with a TURN server without credentials: err = %v, want the ICE settings refused", err)
	}
	exe, dd := testenv.NobodyCopy(t, "myst.test")
	cmd := exec.Command(exe, "--data-dir", filepath.Join(dd, "data"), "connect", "--tun", "--standalone")
	cmd.Env = append(os.Environ(), mysttest.RunMainEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "needs root") {
		t.Fatalf("--tun as nobody: %v\n%s", err, out)
	}
}
