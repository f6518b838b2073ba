package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// TestWebUIStartProviderInBrowser: a daemon that never ran a provider
// (no --provider.serve) starts one from the dashboard's start form. Bad
// options are refused in words beside their fields (a price the API
// refuses, a bandwidth the node refuses); the chosen exit mode, prices,
// caps and allow-list then reach the network: a consumer finds the
// proposal in GET /proposals with those prices and access, GET
// /service/caps shows the caps, and the allowed consumer's paid session
// runs. The consumer page offers tun mode exactly when GET /capabilities
// says the daemon can (checkModeChoice). The on/off switch's choice
// outlives daemon restarts: off stays off, on comes back with the
// options.
func TestWebUIStartProviderInBrowser(t *testing.T) {
	ctx := testenv.Long(t, "runs a devnet, a daemon and chromium; skipped with -short", 2*time.Minute)
	chromium := testenv.RequireChromium(t)
	outDir := screenshotDir(t)
	b := newProviderBed(t, ctx, "127.0.0.7")
	c, provID, cfg := b.consumer, b.provider, b.cfg
	prov, stop := startTestDaemon(t, cfg)
	defer func() { stop() }()

	pctx, stopBrowser := startChromium(ctx, t, chromium)
	defer stopBrowser()
	login(t, pctx, prov, outDir, "")
	waitText(t, pctx, "never ran a provider", "#service-status", 10*time.Second, func(s string) bool { return strings.HasPrefix(s, "off: this daemon serves no provider") })
	// The form is filled in with the daemon's flags; the on/off switch
	// has no provider to turn on again.
	waitText(t, pctx, "start form shown", "#sf-price-hour", 10*time.Second, func(string) bool {
		return eval[bool](t, pctx, `!document.getElementById('start-card').hidden && document.getElementById('sf-price-hour').value === '0.005'`)
	})
	if eval[bool](t, pctx, `document.getElementById('service-toggle').getClientRects().length > 0`) {
		t.Fatal("the on/off switch is shown although this daemon ran no provider to turn on")
	}
	checkPriceForm(t, pctx, false, "with no provider running")
	// The kernel exit mode is offered as GET /capabilities allows it.
	if kernelOffered := eval[bool](t, pctx, `!document.querySelector('#sf-exit option[value="kernel"]').disabled`); kernelOffered != (Capabilities{}).Capabilities(ctx).KernelExit.Available {
		t.Fatalf("the form offers the kernel exit mode: %t; GET /capabilities disagrees", kernelOffered)
	}
	checkAccessible(t, pctx, "provider page with the start form")
	screenshot(t, pctx, outDir, "provider-start-form")

	submit := func() {
		do(t, pctx, chromedp.Click(chromedp.ID("sf-submit")))
	}
	// A price the API refuses: named beside its field, nothing started.
	do(t, pctx, setValue("sf-price-hour", "cheap"))
	submit()
	waitText(t, pctx, "bad price in words", "#sf-price-hour-err", 10*time.Second, func(s string) bool { return s != "" })
	waitText(t, pctx, "not started", "#sf-status", 5*time.Second, func(s string) bool {
		return strings.HasPrefix(s, "Not started: ") && strings.Contains(s, "price_per_hour")
	})
	if !eval[bool](t, pctx, `document.getElementById('sf-price-hour').getAttribute('aria-invalid') === 'true'`) {
		t.Fatal("the refused price's field is not marked invalid")
	}
	// A bandwidth only the node can refuse.
	do(t, pctx, setValue("sf-price-hour", "0.2"), setValue("sf-bandwidth", "lots"))
	submit()
	waitText(t, pctx, "bad bandwidth in words", "#sf-bandwidth-err", 10*time.Second, func(s string) bool { return s != "" })
	if eval[string](t, pctx, `document.getElementById('sf-price-hour-err').textContent`) != "" {
		t.Fatal("the corrected price still shows its error")
	}
	if code := prov.getJSON(t, "/service/caps", nil); code != 404 {
		t.Fatalf("a refused start started a provider: GET /service/caps = %d", code)
	}
	// The options: prices, caps and an allow-list naming the consumer.
	do(t, pctx,
		setValue("sf-exit", "userspace"),
		setValue("sf-price-gib", "0.7"), setValue("sf-bandwidth", "4MiB"), setValue("sf-max-sessions", "3"), setValue("sf-quota", "2GiB"), setValue("sf-country", "de"),
		setValue("sf-access", "allowlist"),
	)
	eval[bool](t, pctx, `(document.getElementById('sf-access').dispatchEvent(new Event('change')), true)`)
	do(t, pctx, setValue("sf-allow", c.Address().Hex()))
	submit()
	waitText(t, pctx, "provider started", "#service-toggle-status", 60*time.Second, func(s string) bool { return s == "Provider started with the chosen options." })
	waitText(t, pctx, "announced", "#service-status", 30*time.Second, func(s string) bool { return strings.HasPrefix(s, "on:") })
	waitText(t, pctx, "price shown", "#price-hour", 10*time.Second, func(s string) bool { return s == "0.2 MYST" })
	waitText(t, pctx, "start form hidden", "body", 10*time.Second, func(string) bool {
		return eval[bool](t, pctx, `document.getElementById('start-card').hidden`)
	})
	checkPriceForm(t, pctx, true, "with the provider started")
	screenshot(t, pctx, outDir, "provider-started")

	// The network sees the chosen prices and access policy.
	mine := market.Filter{ProviderID: provID}
	ps, err := c.WaitProposals(ctx, mine, 1)
	if err != nil {
		t.Fatalf("the consumer finds no proposal of the started provider: %v", err)
	}
	hour, _ := money.ParseMYST("0.2")
	gib, _ := money.ParseMYST("0.7")
	p := ps[0]
	if p.Price.PerHour.Int().Cmp(hour) != 0 || p.Price.PerGiB.Int().Cmp(gib) != 0 {
		t.Fatalf("proposal price %s/h %s/GiB, want 0.2 and 0.7 MYST", p.Price.PerHour.MYST(), p.Price.PerGiB.MYST())
	}
	if p.Access.Kind != market.AccessAllowList || len(p.Access.Allow) != 1 || p.Access.Allow[0] != c.Address() {
		t.Fatalf("proposal access %+v, want an allow-list of %s", p.Access, c.Address().Hex())
	}
	if p.Location.Country != "DE" {
		t.Fatalf("proposal country %q, want the chosen DE (not the daemon's FR)", p.Location.Country)
	}
	api, err := client.New(prov.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Login(ctx, prov.pw); err != nil {
		t.Fatal(err)
	}
	caps, err := api.ServiceCaps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if caps.MaxSessions != 3 || caps.SessionBandwidth != 4<<20 || caps.Quota.Limit != 2<<30 || caps.Access != "allowlist" {
		t.Fatalf("caps %+v, want 3 sessions, 4 MiB/s, 2 GiB, allowlist", caps)
	}
	st, err := api.ServiceOptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != tequilapi.ProviderOn || st.Options.PricePerHour != "0.2" || st.Options.ExitMode != tequilapi.ExitUserspace || !st.Restartable {
		t.Fatalf("GET /service/options %+v after the start", st)
	}
	checkModeChoice(t, pctx, prov, provID, outDir)

	// The allowed consumer's paid session runs.
	conn, err := c.Connect(ctx, mine, consumer.Options{})
	if err != nil {
		t.Fatalf("connect to the started provider: %v", err)
	}
	waitInvoices(t, conn, 1)
	if err := conn.Disconnect(ctx); err != nil {
		t.Logf("disconnect: %v", err)
	}

	// The switch's "off" outlives a daemon restart, and so does "on".
	restart := func() {
		t.Helper()
		stop()
		prov, stop = startTestDaemon(t, cfg)
		login(t, pctx, prov, outDir, "") // the sessions ended with the daemon
	}
	do(t, pctx, chromedp.Navigate(prov.base+"/ui/provider"))
	waitText(t, pctx, "switch offers off", "#service-toggle", 10*time.Second, func(s string) bool { return s == "Turn provider off" })
	do(t, pctx, chromedp.Click(chromedp.ID("service-toggle")))
	waitText(t, pctx, "provider stopped", "#service-toggle-status", 20*time.Second, func(s string) bool { return strings.HasPrefix(s, "Provider stopped: ") })
	checkPriceForm(t, pctx, false, "once the switch stopped the provider")
	restart()
	waitText(t, pctx, "still off after the restart", "#service-status", 10*time.Second, func(s string) bool { return strings.HasPrefix(s, "off: ") })
	if code := prov.getJSON(t, "/service/caps", nil); code != 404 {
		t.Fatalf("the provider turned off serves again after a restart: GET /service/caps = %d", code)
	}
	// The form offers the remembered options; the switch the provider.
	waitText(t, pctx, "remembered options in the form", "#sf-price-hour", 10*time.Second, func(string) bool {
		return eval[bool](t, pctx, `!document.getElementById('start-card').hidden && document.getElementById('sf-price-hour').value === '0.2' && document.getElementById('sf-access').value === 'allowlist'`)
	})
	waitText(t, pctx, "switch offers on", "#service-toggle", 10*time.Second, func(s string) bool { return s == "Turn provider on" })
	checkPriceForm(t, pctx, false, "with the provider turned off")
	screenshot(t, pctx, outDir, "provider-off-after-restart")
	do(t, pctx, chromedp.Click(chromedp.ID("service-toggle")))
	waitText(t, pctx, "provider on again", "#service-toggle-status", 60*time.Second, func(s string) bool { return s == "Provider started." })
	restart()
	waitText(t, pctx, "on after the restart", "#service-status", 60*time.Second, func(s string) bool { return strings.HasPrefix(s, "on:") })
	waitText(t, pctx, "its price after the restart", "#price-hour", 10*time.Second, func(s string) bool { return s == "0.2 MYST" })
	checkPriceForm(t, pctx, true, "with the provider on after the restart")
}

// checkPriceForm: the provider page shows the price-change form exactly
// while the provider runs (a price change republishes its proposal).
func checkPriceForm(t *testing.T, ctx context.Context, shown bool, when string) {
	t.Helper()
	const visible = `document.getElementById('price-form').getClientRects().length > 0`
	waitText(t, ctx, fmt.Sprintf("price-change form shown %t %s", shown, when), "#price-status", 10*time.Second, func(string) bool {
		return eval[bool](t, ctx, visible) == shown
	})
}

// checkModeChoice: the consumer page of d offers tun mode as GET
// /capabilities allows it, says why not in words otherwise, and a
// connect with tun chosen asks PUT /connection for mode tun. The request
// is answered in the page by a stub (a real tun connection would route
// this host; TestWebUITunInBrowser connects in tun mode from the page
// with the daemon in a network namespace), whose refusal the page shows
// in words.
func checkModeChoice(t *testing.T, ctx context.Context, d testDaemon, provider common.Address, dir string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(d.base+"/ui/consumer"))
	var caps tequilapi.CapabilitiesDTO
	if code := d.getJSON(t, "/capabilities", &caps); code != 200 {
		t.Fatalf("GET /capabilities = %d", code)
	}
	note := waitText(t, ctx, "tun mode note", "#mode-tun-note", 10*time.Second, func(s string) bool { return s != "" && !strings.HasPrefix(s, "Checking") })
	if got := eval[bool](t, ctx, `!document.querySelector('#conn-mode-choice option[value="tun"]').disabled`); got != caps.TunMode.Available {
		t.Fatalf("tun mode offered: %t; GET /capabilities: %+v", got, caps.TunMode)
	}
	if !caps.TunMode.Available {
		if !strings.Contains(note, caps.TunMode.Reason) {
			t.Fatalf("tun mode unavailable, the page says %q, not why (%q)", note, caps.TunMode.Reason)
		}
		if testenv.Required() {
			t.Fatalf("tun mode unavailable on CI (root): %s", caps.TunMode.Reason)
		}
		t.Logf("tun mode unavailable here (%s): the connect request in tun mode is not checked", caps.TunMode.Reason)
		return
	}
	checkAccessible(t, ctx, "consumer page with the mode choice")
	eval[bool](t, ctx, `(() => {
		const real = window.fetch;
		window.fetch = (url, o) => {
			if (url === '/connection' && o && o.method === 'PUT') {
				window.__connectBody = o.body;
				return Promise.resolve(new Response('{"error":{"code":"no_privileges","message":"stubbed by the test"}}', { status: 403, headers: { 'Content-Type': 'application/json' } }));
			}
			return real(url, o);
		};
		return true;
	})()`)
	do(t, ctx, setValue("conn-mode-choice", "tun"))
	sel := `#proposals tr[data-provider="` + provider.Hex() + `" i] button.connect`
	waitText(t, ctx, "the provider's row", "#proposals", 20*time.Second, func(string) bool {
		return eval[bool](t, ctx, `!!document.querySelector('`+sel+`')`)
	})
	do(t, ctx, chromedp.Click(chromedp.CSS(sel)))
	waitText(t, ctx, "refusal in words", "#error", 10*time.Second, func(s string) bool { return strings.Contains(s, "stubbed by the test") })
	var body tequilapi.ConnectRequest
	if err := json.Unmarshal([]byte(eval[string](t, ctx, `window.__connectBody || ''`)), &body); err != nil || body.Mode != tequilapi.ModeTun || !strings.EqualFold(body.ProviderID, provider.Hex()) {
		t.Fatalf("PUT /connection body %+v (%v), want mode tun to %s", body, err, provider.Hex())
	}
	screenshot(t, ctx, dir, "consumer-tun-choice")
}
