package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// Second provider's namespace, routed through the hub:
//
//	prov2 ns q1 10.99.1.2 ── q0 10.99.1.1 hub ns
const tProv2, tProv2Hub = "10.99.1.2", "10.99.1.1"

// TestConnectTunReconnect: two `myst service --exit-mode kernel` providers,
// one in the hub namespace, the other in its own; `myst connect --tun`
// connects to the first, which is then SIGKILLed, and only then the second
// starts, so its proposal reaches the consumer while the kill switch is up
// (gossip through the bootstrap peer, a control destination). The
// consumer reconnects to the second provider in place: while it does, a
// probe loop from the consumer namespace never gets a connection outside
// the tunnel and the internet host never sees the consumer's own address;
// afterwards traffic flows through the second provider (the internet host
// sees its address), the second provider gets paid through the hermes,
// and Ctrl-C restores routes, kill switch and resolv.conf.
func TestConnectTunReconnect(t *testing.T) {
	start := time.Now()
	lab := tunHubLab(t, "r", "runs a devnet, two myst service and myst connect --tun in network namespaces")
	hub, cons, inet := lab.Hub, lab.Cons, lab.Inet
	prov2 := netns.New(t, "rprov2")
	netns.Link(t, hub, "q0", tProv2Hub+"/24", prov2, "q1", tProv2+"/24")
	prov2.MustRun("ip", "route", "add", "default", "via", tProv2Hub)
	inet.MustRun("ip", "route", "add", "10.99.1.0/24", "via", netns.HubInetAddr) // provider 2's link
	prov2.MustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")

	web := serveWebLog(t, inet, tInet+":80", []byte("hello from the internet"))
	directAccepted := servetest.CountAccepts(hub.Listen("tcp", tHub2+":9000"))
	consDial := cons.Dialer(2 * time.Second)
	consGet := func(ctx context.Context) error {
		hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: consDial, DisableKeepAlives: true}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+tInet+"/", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	directDial := func(ctx context.Context) error {
		c, err := consDial(ctx, "tcp", tHub2+":9000")
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	if err := directDial(ctx); err != nil {
		t.Fatalf("direct path before connecting: %v", err)
	}

	prov1DD, prov2DD, consDD, dir := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	pf := passFile(t, "tun-e2e")
	newProvider := func(dd string) string {
		out, err := runCLI(t, dd, "identity", "new", "--passphrase-file", pf, "--set-default")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	provider1, provider2 := newProvider(prov1DD), newProvider(prov2DD)
	importDevnetConsumer(t, consDD, dir, pf)

	hubProc := hub.Start("env", tunRoleEnv+"=hub", tunDirEnv+"="+dir, tunProviderEnv+"="+provider1, tunProvider2Env+"="+provider2,
		os.Args[0], "-test.run=^TestConnectTunEndToEnd$", "-test.count=1", "-test.v", "-test.timeout=85s")
	st := waitHubState(ctx, t, hubProc, dir)
	service := func(ns *netns.NS, dd, chainURL, hermesURL, boot, addr, perGiB string) *netns.Proc {
		return ns.Start("env", mystArgv("--data-dir", dd, "--keystore.light-scrypt", "service", "--passphrase-file", pf,
			"--chain.rpc", chainURL, "--chain.deployment", st.Deployment, "--hermes.url", hermesURL, "--p2p.bootstrap", boot,
			"--hermes.insecure-http", // provider 2 reaches the hub's hermes over the test's veth link, plain http
			"--p2p.listen", "/ip4/"+addr+"/tcp/0", "--wg.port", "0", "--wg.advertise", addr, "--exit-mode", "kernel",
			"--exit.allow", "tcp:"+tInet+"/32 port 80", "--location.country", "DE", "--price.per-hour", "0.1", "--price.per-gib", perGiB,
			"--payment.interval", "1s", "--service.api=false")...)
	}
	// Provider 1 first, so the consumer connects to it.
	svc1 := service(hub, prov1DD, st.ChainURL, st.HermesURL, st.Bootstrap, tHub, "0.5")
	waitOutput(ctx, t, svc1, "serving", "myst service (provider 1)")

	resolv := writeTunResolv(t, dir)
	conn := cons.Start("env", mystArgv("--data-dir", consDD, "--keystore.light-scrypt", "connect", "--tun", "--standalone", "--country", "DE",
		"--passphrase-file", pf, "--chain.rpc", st.ChainProxyURL, "--chain.deployment", st.Deployment,
		"--p2p.bootstrap", st.BootstrapLink, "--p2p.listen", "/ip4/"+tCons+"/tcp/0", "--tun.resolv-conf", resolv)...)
	defer func() { _ = conn.Signal(syscall.SIGINT, 20*time.Second) }()
	waitOutput(ctx, t, conn, "connected to "+provider1, "myst connect --tun")
	if strings.Contains(conn.Output(), "session ended") {
		t.Fatalf("the first session ended:\n%s", conn.Output())
	}
	if err := consGet(ctx); err != nil {
		t.Fatalf("fetch through provider 1: %v\n--- connect:\n%s", err, conn.Output())
	}
	waitHubEarned(ctx, t, hubProc)

	// The leak probe runs from before the kill until traffic flows again.
	var leaks atomic.Int64
	pctx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		for pctx.Err() == nil {
			if directDial(pctx) == nil {
				leaks.Add(1)
			}
			_ = consGet(pctx) // through the tunnel or not at all
			time.Sleep(100 * time.Millisecond)
		}
	}()
	directBefore := directAccepted.Load()
	killed := time.Now()
	if err := svc1.Kill(); err == nil {
		t.Log("provider 1 exited cleanly before the kill")
	}
	// Provider 2 only comes up now: its proposal reaches the consumer by
	// gossip through the bootstrap peer while the kill switch is up.
	svc2 := service(prov2, prov2DD, st.ChainProxyURL, st.HermesLink, st.BootstrapLink, tProv2, "0.6")
	defer func() { _ = svc2.Signal(syscall.SIGINT, 10*time.Second) }()
	waitOutput(ctx, t, svc2, "serving", "myst service (provider 2)")
	waitOutput(ctx, t, conn, "reconnected to "+provider2, "myst connect --tun")
	reconnected := time.Since(killed)
	var err2 error
	for i := 0; i < 20; i++ {
		if err2 = consGet(ctx); err2 == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	stopProbe()
	<-probeDone
	if err2 != nil {
		t.Fatalf("fetch through provider 2: %v\n--- connect:\n%s", err2, conn.Output())
	}
	if n := leaks.Load(); n != 0 || directAccepted.Load() != directBefore {
		t.Errorf("%d direct connections outside the tunnel during the reconnect (listener saw %d)", n, directAccepted.Load()-directBefore)
	}
	webFrom := web.From()
	last := webFrom[len(webFrom)-1]
	for _, from := range webFrom {
		if strings.HasPrefix(from, tCons+":") {
			t.Errorf("the internet host saw the consumer's own address %s", from)
		}
	}
	if !strings.HasPrefix(last, tProv2+":") {
		t.Errorf("after the reconnect the internet host saw %s, want provider 2 (%s)", last, tProv2)
	}
	earned2 := waitHubEarnedKey(ctx, t, hubProc, "earned2")

	stopTunConsumer(ctx, t, conn, cons, resolv, directDial)
	t.Logf("myst connect --tun printed:\n%s", conn.Output())
	t.Logf("kill -> reconnected line %s; provider 2 earned %s wei; whole test %s",
		reconnected.Round(time.Millisecond), earned2, time.Since(start).Round(100*time.Millisecond))
}
