package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel/netns"
	"github.com/openmyst/openmyst/tunnel/proxy"
)

// TestWebUITunInBrowser connects the whole device from the dashboard, for
// real: the consumer daemon runs in a network namespace of its own
// (TestDaemonTunNoLeaks' lab: a devnet, hermes and a kernel-mode and a
// userspace provider in the hub namespace), so its routes, TUN and kill
// switch change only that namespace. Debian's chromium, on the test's
// host, reaches the dashboard through a loopback forwarder whose
// connections are made inside the namespace (dashboardIn): the daemon
// sees a loopback client of its own device, as a browser on it would.
// The test logs in, chooses tun mode, connects with the page's button,
// sees the status show mode tun and the kill switch the way GET
// /connection reports it (and nftables holds it in the namespace), sees
// the received bytes grow while the namespace fetches from the internet
// host through the tunnel, disconnects, and sees the kill switch off as
// GET /connection (404) and the namespace (no table, routes and rules as
// before) say. Screenshots go to $MYST_TEST_OUTPUT (else a temp dir).
func TestWebUITunInBrowser(t *testing.T) {
	if labChild() {
		return // a child of another test
	}
	requireTunLab(t, "runs a devnet, two providers, a tun-mode daemon in network namespaces and chromium")
	chromium := testenv.RequireChromium(t)
	outDir := screenshotDir(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	lab := newVPNLab(ctx, t, "")
	pw, err := os.ReadFile(filepath.Join(lab.dir, "daemon", "tequilapi.password"))
	if err != nil {
		t.Fatal(err)
	}
	d := testDaemon{base: dashboardIn(t, lab.cons, fmt.Sprintf("127.0.0.1:%d", vpnDaemonPort)), pw: strings.TrimSpace(string(pw))}
	t.Logf("lab up in %s", time.Since(start).Round(time.Millisecond))

	pctx, stopBrowser := startChromium(ctx, t, chromium)
	defer stopBrowser()
	login(t, pctx, d, outDir, "")
	do(t, pctx, chromedp.Navigate(d.base+"/ui/consumer"))
	waitText(t, pctx, "not connected", "#conn-state", 10*time.Second, func(s string) bool { return s == "not connected" })
	note := waitText(t, pctx, "tun mode note", "#mode-tun-note", 10*time.Second, func(s string) bool { return s != "" && !strings.HasPrefix(s, "Checking") })
	if !eval[bool](t, pctx, `!document.querySelector('#conn-mode-choice option[value="tun"]').disabled`) {
		t.Fatalf("tun mode not offered by a root daemon in its namespace: %q", note)
	}
	if eval[bool](t, pctx, `document.getElementById('conn-kill-switch-choice').getClientRects().length > 0`) {
		t.Fatal("the kill switch choice is shown with proxy mode chosen")
	}
	do(t, pctx, setValue("conn-mode-choice", "tun"))
	eval[bool](t, pctx, `(document.getElementById('conn-mode-choice').dispatchEvent(new Event('change')), true)`)
	if !eval[bool](t, pctx, `document.getElementById('conn-kill-switch-choice').getClientRects().length > 0 && document.getElementById('conn-kill-switch-choice').value === 'connection'`) {
		t.Fatal("tun mode chosen: the kill switch choice is not shown with 'until you disconnect' preselected")
	}

	// Connect to the first provider the page lists.
	waitText(t, pctx, "proposals listed", "#proposals", 20*time.Second, func(string) bool {
		return eval[bool](t, pctx, `!!document.querySelector('#proposals tr[data-provider] button.connect')`)
	})
	provider := eval[string](t, pctx, `document.querySelector('#proposals tr[data-provider]').dataset.provider`)
	do(t, pctx, chromedp.Click(chromedp.CSS(`#proposals tr[data-provider] button.connect`)))
	waitText(t, pctx, "connected", "#conn-state", 60*time.Second, func(s string) bool { return s == "connected" })
	t.Logf("connected in tun mode from the page after %s", time.Since(start).Round(time.Millisecond))
	waitText(t, pctx, "mode tun", "#conn-mode", 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "tun ") })
	var st tequilapi.ConnectionStatus
	if code := d.getJSON(t, "/connection", &st); code != 200 {
		t.Fatalf("GET /connection = %d while connected", code)
	}
	if st.Mode != tequilapi.ModeTun || !strings.EqualFold(st.Provider, provider) || st.KillSwitch == nil || !st.KillSwitch.Active || st.KillSwitch.Setting != tequilapi.KillSwitchConnection {
		t.Fatalf("GET /connection after the page's connect: %+v, want tun to %s with the kill switch on until disconnect", st, provider)
	}
	waitKillSwitch(ctx, t, lab.cons)
	want := fmt.Sprintf("on: only the tunnel and %d exemptions leave this device (setting: until disconnect)", len(st.KillSwitch.Exemptions))
	waitText(t, pctx, "kill switch as GET /connection says", "#conn-kill-switch", 5*time.Second, func(s string) bool { return s == want })
	if title := eval[string](t, pctx, `document.getElementById('conn-kill-switch').title`); !strings.Contains(title, strings.Join(st.KillSwitch.Exemptions, ", ")) {
		t.Fatalf("kill switch title %q lacks the exemptions %v", title, st.KillSwitch.Exemptions)
	}

	// Traffic of the namespace goes through the tunnel: the page's
	// received bytes grow with it, as GET /connection's do.
	rx0 := waitText(t, pctx, "bytes received", "#conn-rx", 5*time.Second, func(s string) bool { return s != "–" })
	deadline := time.Now().Add(20 * time.Second)
	for fetches := 0; ; fetches++ {
		if err := vpnGet(ctx, lab.cons); err != nil {
			t.Fatalf("GET from the internet host through the tunnel: %v", err)
		}
		if rx, _ := textOf(pctx, "#conn-rx"); rx != rx0 && fetches >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received bytes stay %q after %d fetches through the tunnel", rx0, fetches)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var after tequilapi.ConnectionStatus
	if code := d.getJSON(t, "/connection", &after); code != 200 || after.RxBytes <= st.RxBytes || after.TxBytes <= st.TxBytes {
		t.Fatalf("GET /connection = %d: rx %d -> %d, tx %d -> %d: the fetches did not go through the tunnel", code, st.RxBytes, after.RxBytes, st.TxBytes, after.TxBytes)
	}
	screenshot(t, pctx, outDir, "consumer-tun-connected")

	// Disconnect: the kill switch goes with the connection.
	do(t, pctx, chromedp.Click(chromedp.ID("disconnect")))
	waitText(t, pctx, "disconnected", "#conn-state", 20*time.Second, func(s string) bool { return s == "not connected" })
	if code := d.getJSON(t, "/connection", nil); code != 404 {
		t.Fatalf("GET /connection = %d after the page's disconnect, want 404", code)
	}
	waitText(t, pctx, "kill switch off", "#conn-kill-switch", 5*time.Second, func(s string) bool { return s == "off (not connected)" })
	if _, err := lab.cons.Run(ctx, "nft", "list", "table", "inet", "openmyst_killswitch"); err == nil {
		t.Fatal("the page says the kill switch is off; the namespace still has its table")
	}
	if now := vpnSnapshot(t, lab.cons, lab.resolv); now != lab.before {
		t.Errorf("after the page's disconnect the namespace differs:\n--- before\n%s\n--- after\n%s", lab.before, now)
	}
	screenshot(t, pctx, outDir, "consumer-tun-disconnected")
	if err := lab.daemon.Signal(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("whole test %s", time.Since(start).Round(100*time.Millisecond))
}

// dashboardIn serves, on a loopback port of the test's host until the
// test ends, the dashboard at addr inside ns: every connection is
// forwarded to a connection made inside the namespace. It returns the
// dashboard's base URL. (Chromium itself stays on the host: chromedp
// reaches its DevTools port on the host's loopback.)
func dashboardIn(t *testing.T, ns *netns.NS, addr string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dial := ns.Dialer(2 * time.Second)
	ln := servetest.ListenTCP(t)
	stop := servetest.TCP(ln, func(c net.Conn) {
		u, err := dial(ctx, "tcp", addr)
		if err != nil {
			return
		}
		proxy.Splice(ctx, c, u, nil, nil)
	})
	t.Cleanup(func() { cancel(); stop() })
	return "http://" + ln.Addr().String()
}
