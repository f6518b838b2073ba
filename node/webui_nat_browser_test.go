package node

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/geoip"
	"github.com/openmyst/openmyst/internal/testenv"
)

// TestNATCardInBrowser drives the dashboard's reachability card in
// chromium: a daemon bootstrapped from two other nodes shows its AutoNAT
// state and addresses, and "Ask peers to check now" runs POST /nat/check
// and shows "reachable from 2 of 2 peers" with a row per checker.
func TestNATCardInBrowser(t *testing.T) {
	ctx := testenv.Long(t, "runs a daemon and chromium; skipped with -short", time.Minute)
	chromium := testenv.RequireChromium(t)
	outDir := screenshotDir(t)
	log := testLog()
	var boot []peer.AddrInfo
	for range 2 {
		n, _ := natNode(t, NATConfig{AllowPrivate: true, FirstPeerCheck: -1, Log: log})
		boot = append(boot, n.AddrInfo())
	}
	dd := t.TempDir()
	d := runTestDaemon(t, "127.0.0.4", DaemonConfig{
		DataDir: dd, LightScrypt: true, Log: log,
		Chain: ChainConfig{RPC: "http://127.0.0.1:1", Deployment: filepath.Join(dd, "none.json")},
		P2P:   NetworkConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot, ChainID: 1337},
	})

	pctx, stopBrowser := startChromium(ctx, t, chromium)
	defer stopBrowser()
	login(t, pctx, d, outDir, "")
	do(t, pctx, chromedp.Navigate(d.base+"/ui/provider"))
	waitText(t, pctx, "reachability", "#nat-access", 10*time.Second, func(s string) bool { return strings.HasPrefix(s, "unknown yet") })
	waitText(t, pctx, "direct addresses", "#nat-direct", 5*time.Second, func(s string) bool { return strings.Contains(s, "/ip4/127.0.0.1/tcp/") })
	waitText(t, pctx, "no check yet", "#nat-peercheck", 5*time.Second, func(s string) bool { return s == "not run yet" })
	// This daemon serves no provider: the service status (not hidden by
	// the absent proposal) and the caps card say so in words.
	waitText(t, pctx, "service off", "#service-status", 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "off: this daemon serves no provider") })
	waitText(t, pctx, "no caps", "#caps-status", 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "No caps: this daemon serves no provider") })
	// The daemon bootstraps from the two nodes in the background; the
	// button answers 503 in words until identify has told it who checks.
	deadline := time.Now().Add(20 * time.Second)
	for {
		do(t, pctx, chromedp.Click(chromedp.ID("nat-check")))
		st := waitText(t, pctx, "check answered", "#nat-check-status", 10*time.Second, func(s string) bool {
			return strings.HasPrefix(s, "Done") || strings.HasPrefix(s, "Not checked")
		})
		if strings.HasPrefix(st, "Done") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no peer check: %s", st)
		}
		time.Sleep(time.Second)
	}
	waitText(t, pctx, "peer check shown", "#nat-peercheck", 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "reachable from 2 of 2 peers") })
	rows := waitText(t, pctx, "checker rows", "#nat-checks", 5*time.Second, func(s string) bool { return strings.Count(s, "reached this node") == 2 })
	if !strings.Contains(rows, "direct") {
		t.Errorf("checker rows without the path: %q", rows)
	}
	screenshot(t, pctx, outDir, "provider-nat")

	// A daemon whose provider cannot reach its chain says so in words:
	// the provider page and the caps card show why the start waits.
	ddS := t.TempDir()
	_, passS, _ := newDaemonIdentity(t, ctx, ddS)
	starting := runTestDaemon(t, "127.0.0.6", DaemonConfig{
		DataDir: ddS, LightScrypt: true, Log: log,
		Chain: ChainConfig{RPC: "http://127.0.0.1:1", Deployment: filepath.Join(ddS, "none.json")},
		P2P:   NetworkConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, ChainID: 1337},
		Provider: DaemonProvider{
			Identity: IdentityRef{PassphraseFile: passS},
			Location: LocationConfig{Override: geoip.Override{Country: "NL"}},
			Serve:    &ProviderConfig{HermesURL: "http://127.0.0.1:1"},
		},
	})
	sctx, scancel := chromedp.NewContext(pctx) // a new tab
	defer scancel()
	if err := chromedp.Do(sctx); err != nil {
		t.Fatal(err)
	}
	login(t, sctx, starting, outDir, "")
	waitText(t, sctx, "provider starting, and why", "#service-status", 15*time.Second, func(s string) bool {
		return strings.HasPrefix(s, "starting: the provider is starting") && strings.Contains(s, "; last attempt failed: ") && strings.Contains(s, "; next attempt ")
	})
	waitText(t, sctx, "caps while starting", "#caps-status", 10*time.Second, func(s string) bool { return strings.HasPrefix(s, "No caps yet: the provider is starting") })
	waitText(t, sctx, "no earnings while starting", "#unsettled", 5*time.Second, func(s string) bool { return s == "–" })
	// ... and keeps saying so (the absent proposal does not replace it).
	time.Sleep(time.Second)
	if s, _ := textOf(sctx, "#service-status"); !strings.HasPrefix(s, "starting: the provider is starting") {
		t.Fatalf("the starting provider's status became %q", s)
	}
	screenshot(t, sctx, outDir, "provider-starting")
}
