package node

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// Environment of the kernel end-to-end test's child processes.
const (
	kernelRoleEnv = "MYST_KERNEL_E2E_ROLE" // "hub" or "consumer"
	kernelDirEnv  = "MYST_KERNEL_E2E_DIR"  // shared state directory
	// kernelProvider2Env, when set, makes the hub also run a second
	// provider and close the one named in <dir>/drop.
	kernelProvider2Env = "MYST_KERNEL_E2E_PROVIDER2"
	// kernelICEEnv, when set, makes the hub run a STUN/TURN relay on its
	// link address and its providers offer ICE (host candidates on that
	// address only), with their WireGuard ports fixed (kICEWGPorts) and
	// closed to the consumer: only the ICE path reaches them. With
	// "relay" every UDP port of the hub but the relay's is closed to the
	// consumer: only a path through its TURN allocation works. With
	// "prflx" the consumer may only answer the hub's UDP (but the relay's)
	// and the hub's UDP to the consumer leaves from random ports of
	// another address, kHubFar, beyond the consumer's subnet (a symmetric
	// NAT; kHubFar2 once a provider was dropped): only a peer-reflexive
	// direct pair, or the relay, works.
	kernelICEEnv = "MYST_KERNEL_E2E_ICE"
	// kernelResumeEnv, when set, makes the hub's providers listen for
	// libp2p on two addresses (kResumePorts: kHubAddr and kHubAlt, an
	// address of the hub beyond the consumer's subnet, reached through
	// its default route: the tunnel's, once one is up) with the
	// consumer's TCP to kHubAlt refused (TCP reset), until <dir>/cut
	// appears: then the consumer's TCP to kHubAddr's libp2p ports is
	// refused instead, which ends the sessions' control connections
	// and leaves only kHubAlt to resume them on (TestDaemonTunResume).
	kernelResumeEnv = "MYST_KERNEL_E2E_RESUME"
)

// kResumePorts are the providers' libp2p ports with kernelResumeEnv: on
// kHubAddr and on kHubAlt, for the first and the second provider.
var kResumePorts = [2][2]int{{4010, 4011}, {4020, 4021}}

// kResumeTable is the hub's nftables table of kernelResumeEnv.
const kResumeTable = "omt_resume"

// kICEWGPorts are the providers' WireGuard ports with kernelICEEnv, which
// the hub drops from the consumer.
var kICEWGPorts = [2]uint16{51820, 51821}

// kICEBlockTable is the hub's nftables table closing the WireGuard ports.
const kICEBlockTable = "omt_block_wg"

// Addresses of the kernel end-to-end topology:
//
//	consumer ns  c0 10.99.0.2 ── p0 10.99.0.1, 10.99.0.3  hub ns (dev chain,
//	                                                      hermes, bootstrap,
//	                                                      kernel-mode provider)
//	inet ns      i0 203.0.113.2 ── u0 203.0.113.1         hub ns
//
// The consumer's default route points at the hub, which forwards (the
// kernel exit turns forwarding on), and the internet host routes the
// consumer's subnet back: a packet leaking outside the tunnel would reach
// the internet host with the consumer's own source address.
const (
	kHubAddr  = netns.HubAddr
	kHubAddr2 = netns.HubAddr2 // reached directly (connected route), never through the tunnel
	kConsAddr = netns.ConsAddr
	kInetAddr = netns.InetAddr
	// kHubFar is where the hub's UDP to the consumer comes from with
	// kernelICEEnv "prflx": not in the consumer's subnet, so reached
	// through its default route (the tunnel's, once one is up).
	kHubFar = "10.97.0.1"
	// kHubFar2 replaces kHubFar when the first provider is dropped.
	kHubFar2 = "10.97.0.2"
	// kHubAlt is the hub's second libp2p address with kernelResumeEnv
	// (on its loopback device).
	kHubAlt = "10.96.0.1"
	// kExitEgress is the hub's internet side, which the exits masquerade to.
	kExitEgress = netns.HubInetAddr
	kWebPort    = 80
	// kInetSTUN is a STUN server on the internet host, which the exits
	// of kernelICEEnv allow (TestDaemonTunICE); a private address, as
	// every server of the lab's network must be for its peers to accept
	// private candidates.
	kInetSTUN    = "10.98.0.2:3478"
	kPayloadSize = 1 << 20
)

// kernelState is what the hub child tells the consumer child.
type kernelState struct {
	ChainURL   string          `json:"chain_url"`
	Deployment string          `json:"deployment"`
	Proposal   market.Proposal `json:"proposal"`
	// BootstrapLink is the bootstrap peer, proxied onto the hub's link
	// address (for a consumer daemon's discovery).
	BootstrapLink string `json:"bootstrap_link"`
	// ICE are the hub relay's STUN/TURN URLs and TURN credentials
	// (kernelICEEnv).
	ICE ICESettings `json:"ice"`
}

// TestKernelSessionEndToEnd runs a paid session in kernel mode through
// the product's parts in network namespaces: a child process in the hub
// namespace runs the dev chain, hermes, bootstrap and a provider with
// ExitMode kernel (kernel.NewExit); a child in the consumer namespace runs
// a consumer node whose connection uses KernelTunnel (TUN,
// routes, kill switch, resolv.conf). It fetches from an "internet" host on
// 203.0.113.2 through the tunnel, pays invoices the hermes accepts (the
// provider's earnings grow), and after the provider process is killed
// nothing leaves the consumer outside the tunnel; disconnect restores the
// consumer's routing, firewall and resolv.conf.
func TestKernelSessionEndToEnd(t *testing.T) {
	if role := os.Getenv(kernelRoleEnv); role != "" {
		runKernelChild(t, role, os.Getenv(kernelDirEnv))
		return
	}
	requireTunLab(t, "runs a devnet and a kernel-mode session in network namespaces")
	start := time.Now()
	lab := netns.NewHubLab(t, "k")
	hub, cons, inet := lab.Hub, lab.Cons, lab.Inet

	// The internet host, and a direct-path listener on the hub's second
	// address; both sockets are opened inside their namespaces.
	body := payload(kPayloadSize)
	var mu sync.Mutex
	var webFrom []string
	web := inet.Listen("tcp", fmt.Sprintf("%s:%d", kInetAddr, kWebPort))
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/direct" { // the benchmark's no-tunnel baseline
			mu.Lock()
			webFrom = append(webFrom, r.RemoteAddr)
			mu.Unlock()
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(web) }()
	defer srv.Close()
	directAccepted := servetest.CountAccepts(hub.Listen("tcp", kHubAddr2+":9000"))

	dir := t.TempDir()
	child := func(ns *netns.NS, role string) []string {
		return []string{kernelRoleEnv + "=" + role, kernelDirEnv + "=" + dir, "MYST_BENCH_ROUNDS=" + os.Getenv("MYST_BENCH_ROUNDS"), os.Args[0], "-test.run=^TestKernelSessionEndToEnd$", "-test.count=1", "-test.v", "-test.timeout=85s"}
	}
	hubProc := hub.Start("env", child(hub, "hub")...)
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	consCmd := cons.Command(ctx, "env", child(cons, "consumer")...)
	var consOut strings.Builder
	consCmd.Stdout, consCmd.Stderr = &consOut, &consOut
	if err := consCmd.Start(); err != nil {
		t.Fatal(err)
	}
	consDone := make(chan error, 1)
	go func() { consDone <- consCmd.Wait() }()
	fail := func(format string, args ...any) {
		t.Helper()
		_ = consCmd.Process.Kill()
		<-consDone
		t.Fatalf(format+"\n--- hub:\n%s\n--- consumer:\n%s", append(args, hubProc.Output(), consOut.String())...)
	}

	// Wait for the consumer to have paid, then read the provider's
	// earnings as the hermes reports them.
	if err := waitFile(ctx, filepath.Join(dir, "ready"), consDone); err != nil {
		fail("consumer not ready: %v", err)
	}
	earned, err := waitEarned(ctx, hubProc)
	if err != nil {
		fail("provider earnings: %v", err)
	}
	mu.Lock()
	served := len(webFrom)
	mu.Unlock()
	if served == 0 {
		fail("the internet host served nothing")
	}
	// Kill the provider (and the whole hub) and let the consumer probe.
	_ = hubProc.Kill()
	directBefore := directAccepted.Load()
	if err := os.WriteFile(filepath.Join(dir, "killed"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-consDone; err != nil {
		t.Fatalf("consumer child: %v\n%s", err, consOut.String())
	}
	out := consOut.String()
	if !strings.Contains(out, "KERNEL-E2E-CONSUMER-OK") {
		t.Fatalf("consumer child did not finish:\n%s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, from := range webFrom {
		if strings.HasPrefix(from, kConsAddr+":") {
			t.Errorf("the internet host saw the consumer's own address %s: traffic left outside the tunnel", from)
		}
	}
	if len(webFrom) != served {
		t.Errorf("the internet host served %d requests after the provider died (before: %d)", len(webFrom)-served, served)
	}
	// The consumer dials the direct listener once before connecting and
	// once after disconnecting, never while the kill switch is up.
	if got := directAccepted.Load(); directBefore != 1 || got != 2 {
		t.Errorf("direct listener accepted %d before the kill and %d in all, want 1 and 2", directBefore, got)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "KERNEL-E2E ") {
			t.Log(strings.TrimSpace(l))
		}
	}
	t.Logf("provider earned %s wei; whole test %s", earned, time.Since(start).Round(100*time.Millisecond))
}

// waitFile waits until path exists, ctx ends or the child exits.
func waitFile(ctx context.Context, path string, exited <-chan error) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return fmt.Errorf("child exited first: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitEarned waits for the hub child to report earnings above zero.
func waitEarned(ctx context.Context, hub *netns.Proc) (*big.Int, error) {
	for {
		sc := bufio.NewScanner(strings.NewReader(hub.Output()))
		last := ""
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "KERNEL-E2E-HUB earned=") {
				last = strings.TrimPrefix(l, "KERNEL-E2E-HUB earned=")
			}
		}
		if v, ok := new(big.Int).SetString(last, 10); ok && v.Sign() > 0 {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no earnings reported (last %q): %w", last, ctx.Err())
		case <-hub.Exited():
			return nil, errors.New("hub exited")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func runKernelChild(t *testing.T, role, dir string) {
	if dir == "" {
		t.Fatal("no state dir")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	switch role {
	case "hub":
		runKernelHub(ctx, t, dir)
	case "consumer":
		runKernelConsumer(ctx, t, dir)
	default:
		t.Fatalf("unknown role %q", role)
	}
}

// runKernelHub runs the devnet and a kernel-mode provider until killed.
func runKernelHub(ctx context.Context, t *testing.T, dir string) {
	log := testLog()
	d, err := StartDevnet(ctx, DevnetConfig{DataDir: filepath.Join(dir, "devnet"), Providers: []ProviderSpec{}, Payment: testPayment, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The consumer reads its channel from the chain: proxy the loopback
	// JSON-RPC port onto the hub's link address.
	u, err := url.Parse(d.Chain.URL())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", kHubAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go servetest.Forward(ln, u.Host)
	bootLink, err := proxyBootstrap(d)
	if err != nil {
		t.Fatal(err)
	}
	rule, err := tunnel.ParseRule(fmt.Sprintf("tcp:%s/32 port %d", kInetAddr, kWebPort))
	if err != nil {
		t.Fatal(err)
	}
	dep := d.Chain.Deployment()
	ph, _ := money.ParseMYSTAmount("0.06")
	pg, _ := money.ParseMYSTAmount("0.1")
	var iceSet ICESettings
	var onDrop func() // before a provider is dropped
	var iceCfg *ice.Config
	var wgPorts [2]uint16
	allow := []tunnel.Rule{rule}
	if os.Getenv(kernelICEEnv) != "" {
		// The internet host's STUN server (kInetSTUN): the consumer
		// asks it through the tunnel where the exit's traffic comes from.
		is := netip.MustParseAddrPort(kInetSTUN)
		stun, err := tunnel.ParseRule(fmt.Sprintf("udp:%s/32 port %d", is.Addr(), is.Port()))
		if err != nil {
			t.Fatal(err)
		}
		allow = append(allow, stun)
		iceSet, iceCfg = startLabRelay(t, filepath.Join(dir, "relay"), log)
		wgPorts = kICEWGPorts
		block, nat := fmt.Sprintf("udp dport { %d, %d }", wgPorts[0], wgPorts[1]), ""
		switch os.Getenv(kernelICEEnv) {
		case "relay":
			block = "udp dport != 3478"
		case "prflx":
			block = "udp dport != 3478 ct state new"
			snat := func(to string) string {
				return fmt.Sprintf("ip saddr %s ip daddr %s udp sport != 3478 snat ip to %s:20000-40000 random", kHubAddr, kConsAddr, to)
			}
			nat = "\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\t" + snat(kHubFar) + "\n\t}\n"
			// The next provider's checks come from another address, which
			// the tunnel's routing table has no throw route for.
			onDrop = func() {
				cmd := exec.CommandContext(ctx, "nft", "-f", "-")
				cmd.Stdin = strings.NewReader(fmt.Sprintf("flush chain inet %[1]s post\nadd rule inet %[1]s post %[2]s\n", kICEBlockTable, snat(kHubFar2)))
				if out, err := cmd.CombinedOutput(); err != nil {
					fmt.Printf("KERNEL-E2E-HUB snat to %s: %v: %s\n", kHubFar2, err, out)
				}
			}
		}
		rs := fmt.Sprintf("table inet %s {\n\tchain in {\n\t\ttype filter hook input priority -10; policy accept;\n\t\tip saddr %s %s counter drop\n\t}\n%s}\n",
			kICEBlockTable, kConsAddr, block, nat)
		cmd := exec.CommandContext(ctx, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rs)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("block the WireGuard ports: %v: %s", err, out)
		}
		defer func() { _ = exec.Command("nft", "delete", "table", "inet", kICEBlockTable).Run() }()
	}
	listen := [2][]string{{"/ip4/" + kHubAddr + "/tcp/0"}, {"/ip4/" + kHubAddr + "/tcp/0"}}
	if os.Getenv(kernelResumeEnv) != "" {
		listen = resumeHub(ctx, t, dir)
	}
	// startProvider starts the hub's provider i (its own data directory,
	// dev account, listen addresses and WireGuard port) with exit mode.
	startProvider := func(i int, dataDir string, mode tunnel.Mode) (*Provider, error) {
		return StartProvider(ctx, ProviderConfig{
			DataDir: filepath.Join(dir, dataDir), Signer: identity.NewKeySigner(devchain.DevKey(devProviderAccount + i)),
			Chain: d.Client, Hermes: dep.Hermes, HermesURL: d.Hermes.URL(), Bootstrap: []peer.AddrInfo{d.Boot.AddrInfo()},
			ListenAddrs: listen[i], AdvertiseAddr: netip.MustParseAddr(kHubAddr), ExitMode: mode,
			Location: market.Location{Country: "DE", IPType: market.IPResidential},
			Price:    market.Price{PerHour: ph, PerGiB: pg},
			Allow:    allow, Payment: testPayment, Log: log, ICE: iceCfg, WGPort: wgPorts[i],
		})
	}
	p, err := startProvider(0, "provider", tunnel.ModeKernel)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.WaitPublished(ctx); err != nil {
		t.Fatal(err)
	}
	provs := []*Provider{p}
	if os.Getenv(kernelProvider2Env) != "" {
		// A second provider (userspace exit: one kernel exit per
		// namespace) for a consumer to reconnect to.
		p2, err := startProvider(1, "provider2", tunnel.ModeUserspace)
		if err != nil {
			t.Fatal(err)
		}
		defer p2.Close()
		if err := p2.WaitPublished(ctx); err != nil {
			t.Fatal(err)
		}
		provs = append(provs, p2)
		go dropProvider(ctx, filepath.Join(dir, "drop"), provs, onDrop)
	}
	for _, pr := range provs {
		// Why each session ended, for the daemon tests (a lost path).
		pr.Sessions.OnEnded(func(e provider.Ended) { fmt.Printf("KERNEL-E2E-HUB ended %s: %v\n", e.ID, e.Err) })
	}
	prop, ok := p.Proposal()
	if !ok {
		t.Fatal("provider has no proposal")
	}
	b, err := json.Marshal(kernelState{ChainURL: "http://" + ln.Addr().String(), Deployment: d.DeploymentPath(), Proposal: prop, BootstrapLink: bootLink, ICE: iceSet})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "state.json")); err != nil {
		t.Fatal(err)
	}
	fmt.Println("KERNEL-E2E-HUB up")
	for ctx.Err() == nil {
		if e, err := p.Earnings(ctx); err == nil {
			fmt.Printf("KERNEL-E2E-HUB earned=%s\n", e.Earned)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// resumeHub sets the hub up for kernelResumeEnv: kHubAlt on its
// loopback device, the consumer's TCP to it refused, and a watcher that
// moves the refusal to the providers' kHubAddr ports when <dir>/cut
// appears. It returns the providers' libp2p listen addresses.
func resumeHub(ctx context.Context, t *testing.T, dir string) [2][]string {
	t.Helper()
	if out, err := exec.CommandContext(ctx, "ip", "addr", "add", kHubAlt+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("hub: add %s: %v: %s", kHubAlt, err, out)
	}
	refuse := func(addr string, port int) string {
		return fmt.Sprintf("add rule inet %s in ip saddr %s ip daddr %s tcp dport { %d, %d } reject with tcp reset\n",
			kResumeTable, kConsAddr, addr, kResumePorts[0][port], kResumePorts[1][port])
	}
	nft := func(rules string) error {
		cmd := exec.CommandContext(ctx, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nft: %w: %s", err, out)
		}
		return nil
	}
	if err := nft(fmt.Sprintf("table inet %[1]s {\n\tchain in {\n\t\ttype filter hook input priority -10; policy accept;\n\t}\n}\n", kResumeTable) + refuse(kHubAlt, 1)); err != nil {
		t.Fatal(err)
	}
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(dir, "cut")); err == nil {
				err := nft(fmt.Sprintf("flush chain inet %s in\n", kResumeTable) + refuse(kHubAddr, 0))
				fmt.Printf("KERNEL-E2E-HUB cut the control connections on %s: %v\n", kHubAddr, err)
				_ = os.Remove(filepath.Join(dir, "cut"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	var listen [2][]string
	for i, ports := range kResumePorts {
		listen[i] = []string{fmt.Sprintf("/ip4/%s/tcp/%d", kHubAddr, ports[0]), fmt.Sprintf("/ip4/%s/tcp/%d", kHubAlt, ports[1])}
	}
	return listen
}

// startLabRelay runs a STUN/TURN relay on the hub's link address (UDP
// and TCP port 3478) until the test ends, and returns the settings a
// consumer uses and the providers' ICE configuration: host candidates on
// the hub's link address only, so every candidate of the hub is on it.
func startLabRelay(t *testing.T, dataDir string, log *slog.Logger) (ICESettings, *ice.Config) {
	t.Helper()
	hub := netip.MustParseAddr(kHubAddr)
	r, err := StartRelay(RelayConfig{DataDir: dataDir, UDP: kHubAddr + ":3478", TCP: kHubAddr + ":3478", PublicIP: hub, AllowPrivate: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	user, pass, err := RelayCredentials(dataDir, "lab", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	set := ICESettings{Servers: []string{"stun:" + kHubAddr + ":3478", "turn:" + kHubAddr + ":3478?transport=udp"}, TURNUsername: user, TURNPassword: pass}
	cfg, err := set.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.HostFilter = func(a netip.Addr) bool { return a == hub }
	return set, cfg
}

// dropProvider closes the provider whose address the file at path names,
// once it appears: the provider is gone for its consumer. onDrop, when
// set, runs first.
func dropProvider(ctx context.Context, path string, provs []*Provider, onDrop func()) {
	for ctx.Err() == nil {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			if onDrop != nil {
				onDrop()
			}
			for _, p := range provs {
				if strings.EqualFold(p.Address().Hex(), strings.TrimSpace(string(b))) {
					fmt.Printf("KERNEL-E2E-HUB dropping %s: %v\n", p.Address().Hex(), p.Close())
				}
			}
			_ = os.Remove(path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proxyBootstrap proxies the devnet's bootstrap peer (on loopback) onto
// the hub's link address and returns its multiaddr there.
func proxyBootstrap(d *Devnet) (string, error) {
	ai := d.Boot.AddrInfo()
	for _, a := range ai.Addrs {
		host, err := a.ValueForProtocol(ma.P_IP4)
		if err != nil || host != "127.0.0.1" {
			continue
		}
		port, err := a.ValueForProtocol(ma.P_TCP)
		if err != nil {
			continue
		}
		ln, err := net.Listen("tcp", kHubAddr+":0")
		if err != nil {
			return "", err
		}
		go servetest.Forward(ln, net.JoinHostPort(host, port))
		return fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", kHubAddr, ln.Addr().(*net.TCPAddr).Port, ai.ID), nil
	}
	return "", fmt.Errorf("bootstrap peer has no loopback TCP address: %v", ai.Addrs)
}

// runKernelConsumer connects in kernel mode, fetches, pays, and probes
// for leaks after the hub is killed.
func runKernelConsumer(ctx context.Context, t *testing.T, dir string) {
	log := testLog()
	var st kernelState
	if err := waitFile(ctx, filepath.Join(dir, "state.json"), nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	dep, err := chain.LoadDeployment(st.Deployment)
	if err != nil {
		t.Fatal(err)
	}
	eth, err := ethclient.DialContext(ctx, st.ChainURL)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	cc, err := chain.NewClient(ctx, eth, dep, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	directDial := func() error {
		c, err := net.DialTimeout("tcp", kHubAddr2+":9000", 2*time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	// Before the tunnel the direct path works: the probes below can fail
	// only because of the kill switch.
	if err := directDial(); err != nil {
		t.Fatalf("direct path before connecting: %v", err)
	}
	resolv := filepath.Join(dir, "resolv.conf")
	origResolv := "nameserver 192.0.2.53\n"
	if err := os.WriteFile(resolv, []byte(origResolv), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := StartConsumer(ctx, ConsumerConfig{
		DataDir: filepath.Join(dir, "consumer"), Signer: identity.NewKeySigner(devchain.DevKey(devConsumerAccount)), Chain: cc,
		Hermes: dep.Hermes, ListenAddrs: []string{"/ip4/" + kConsAddr + "/tcp/0"}, Keepalive: time.Second, ReadTimeout: 5 * time.Second, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	target := fmt.Sprintf("http://%s:%d/", kInetAddr, kWebPort)
	if n, _ := strconv.Atoi(os.Getenv("MYST_BENCH_ROUNDS")); n > 0 {
		benchKernelConnect(ctx, t, c, st.Proposal, target, resolv, n)
	}
	t0 := time.Now()
	conn, err := c.Sessions.Connect(ctx, st.Proposal, consumer.Options{Tunnel: KernelTunnel(KernelConfig{ResolvConf: resolv, Log: log})})
	if err != nil {
		t.Fatal(err)
	}
	up := time.Since(t0)
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(target)
	if err != nil {
		t.Fatalf("fetch through the kernel tunnel: %v", err)
	}
	first := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	firstByte := time.Since(t0)
	rest, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := append(first, rest...); sha256.Sum256(got) != sha256.Sum256(payload(kPayloadSize)) {
		t.Fatalf("fetched %d bytes, not the payload", len(got))
	}
	fmt.Printf("KERNEL-E2E connect->tunnel up %s, connect->first byte %s, 1 MiB in %s\n", up.Round(time.Millisecond), firstByte.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	if r, err := os.ReadFile(resolv); err != nil || !strings.Contains(string(r), "written by openmyst") {
		t.Fatalf("resolv.conf while connected: %q %v", r, err)
	}
	if _, err := exec.Command("nft", "list", "table", "inet", "openmyst_killswitch").CombinedOutput(); err != nil {
		t.Fatalf("no kill switch while connected: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for conn.PayerStats().Invoices < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d invoices paid", conn.PayerStats().Invoices)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := conn.Status(); !st.Running || st.RxBytes < kPayloadSize {
		t.Fatalf("status %+v: want running with at least the payload received", st)
	}
	fmt.Printf("KERNEL-E2E paid %s wei in %d invoices\n", conn.PayerStats().Paid, conn.PayerStats().Invoices)
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := waitFile(ctx, filepath.Join(dir, "killed"), nil); err != nil {
		t.Fatal(err)
	}

	// The provider is gone: nothing may leave outside the tunnel.
	if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(target); err == nil {
		_ = resp.Body.Close()
		out, _ := exec.Command("sh", "-c", "ip rule; ip route show table all; nft list ruleset; ip -br link; ps aux | grep -c node.test").CombinedOutput()
		t.Fatalf("fetched from the internet host with the provider dead:\n%s", out)
	}
	if err := directDial(); err == nil {
		t.Fatal("direct connection outside the tunnel succeeded under the kill switch")
	}
	dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
	defer dcancel()
	if err := conn.Disconnect(dctx); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	// Disconnect restored everything.
	if out, err := exec.Command("nft", "list", "table", "inet", "openmyst_killswitch").CombinedOutput(); err == nil {
		t.Fatalf("kill switch left after disconnect:\n%s", out)
	}
	if r, err := os.ReadFile(resolv); err != nil || string(r) != origResolv {
		t.Fatalf("resolv.conf after disconnect: %q %v", r, err)
	}
	if _, err := net.InterfaceByName("myst0"); err == nil {
		t.Fatal("myst0 left after disconnect")
	}
	if out, err := exec.Command("sh", "-c", "ip rule; ip route show table all").CombinedOutput(); err != nil || strings.Contains(string(out), "myst0") || strings.Contains(string(out), "throw") || strings.Contains(string(out), "fwmark") {
		t.Fatalf("routing left after disconnect (%v):\n%s", err, out)
	}
	if err := directDial(); err != nil {
		t.Fatalf("direct path after disconnect: %v", err)
	}
	fmt.Println("KERNEL-E2E-CONSUMER-OK")
}

// kernelFirstByte GETs target with a fresh connection and returns the time to
// the first body byte.
func kernelFirstByte(ctx context.Context, target string) (time.Duration, error) {
	t0 := time.Now()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 1)); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// benchKernelConnect measures connect -> first byte in kernel mode over n
// rounds (connect, GET, disconnect), against a direct GET of the same URL
// without a tunnel (the consumer's default route reaches the internet host
// through the hub) measured in the same run.
func benchKernelConnect(ctx context.Context, t *testing.T, c *Consumer, p market.Proposal, target, resolv string, n int) {
	var direct, kern []time.Duration
	for i := 0; i < n; i++ {
		d, err := kernelFirstByte(ctx, target+"direct")
		if err != nil {
			t.Fatalf("direct GET: %v", err)
		}
		direct = append(direct, d)
		t0 := time.Now()
		conn, err := c.Sessions.Connect(ctx, p, consumer.Options{Tunnel: KernelTunnel(KernelConfig{ResolvConf: resolv})})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kernelFirstByte(ctx, target); err != nil {
			t.Fatalf("GET through the tunnel: %v", err)
		}
		kern = append(kern, time.Since(t0))
		if err := conn.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pct := func(ds []time.Duration, q float64) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[int(q*float64(len(s)-1))]
	}
	fmt.Printf("KERNEL-E2E bench %d rounds: kernel connect->first byte p50 %s p90 %s; direct GET first byte p50 %s (ratio %.0fx)\n",
		n, pct(kern, 0.5).Round(100*time.Microsecond), pct(kern, 0.9).Round(100*time.Microsecond), pct(direct, 0.5).Round(10*time.Microsecond),
		float64(pct(kern, 0.5))/float64(pct(direct, 0.5)))
}
