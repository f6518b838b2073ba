package node

import (
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openmyst/openmyst/geoip"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel"
)

// testDaemon is a daemon run in-process by a test.
type testDaemon struct {
	base string // http://host:port
	pw   string
	id   common.Address
}

// newDaemonIdentity creates the default identity of the data dir dd (as
// `myst identity new --set-default`) and returns it, its passphrase file
// and its signer.
func newDaemonIdentity(t *testing.T, ctx context.Context, dd string) (common.Address, string, identity.Signer) {
	t.Helper()
	db, err := storage.Open(filepath.Join(dd, storage.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids, err := NewIdentityManager(dd, db, true)
	if err != nil {
		t.Fatal(err)
	}
	const pass = "ui-test-passphrase"
	id, err := ids.New(ctx, pass)
	if err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(dd, "pass")
	if err := os.WriteFile(pf, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ids.Unlock(id.Address, pass); err != nil {
		t.Fatal(err)
	}
	signer, err := ids.Signer(id.Address)
	if err != nil {
		t.Fatal(err)
	}
	return id.Address, pf, signer
}

// runTestDaemon runs cfg on host (a loopback address of its own, so that
// the browser keeps one session cookie per daemon) until the test ends.
func runTestDaemon(t *testing.T, host string, cfg DaemonConfig) testDaemon {
	t.Helper()
	cfg.API = tequilapi.Config{Address: host, Port: freePort(t, host), PasswordFile: filepath.Join(cfg.DataDir, tequilapi.PasswordFileName), Version: "ui-test"}
	d, stop := startTestDaemon(t, cfg)
	t.Cleanup(stop)
	return d
}

// freePort is a TCP port free on host now.
func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startTestDaemon runs cfg (its API configured) until stop, which fails
// the test if the daemon ended with an error. It reads the password of a
// data dir that has one (a restart).
func startTestDaemon(t *testing.T, cfg DaemonConfig) (testDaemon, func()) {
	t.Helper()
	host := cfg.API.Address
	pw := make(chan string, 1)
	cfg.ShowPassword = func(p string) { pw <- p }
	if b, err := os.ReadFile(cfg.API.PasswordFile); err == nil {
		pw <- strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunDaemon(ctx, cfg) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon on %s: %v", host, err)
		}
	}
	d := testDaemon{base: "http://" + net.JoinHostPort(host, strconv.Itoa(cfg.API.Port))}
	select {
	case d.pw = <-pw:
	case err := <-done:
		t.Fatalf("daemon on %s exited: %v", host, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(d.base + "/healthcheck"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("daemon on %s does not answer", host)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d, stop
}

// getJSON GETs path from the daemon with a bearer token.
func (d testDaemon) getJSON(t *testing.T, path string, out any) int {
	t.Helper()
	var b string
	code := d.getText(t, path, &b)
	if out != nil && code == 200 {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			t.Fatalf("GET %s: %v in %q", path, err, b)
		}
	}
	return code
}

// screenshot writes the page as name.png into dir.
// screenshotDir is where a browser test writes its screenshots:
// $MYST_TEST_OUTPUT (created if missing), else a temporary directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MYST_TEST_OUTPUT")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitText polls sel's text until ok accepts it.
// startChromium starts the headless chromium binary for the test's
// browser steps and returns its tab's context and the stop that ends the
// browser. The first run starts the browser for the life of its context
// (so not one with a step timeout).
func startChromium(ctx context.Context, t *testing.T, chromium string) (context.Context, func()) {
	t.Helper()
	alloc, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.WindowSize(1280, 1000),
	)...)
	pctx, pcancel := chromedp.NewContext(alloc)
	stop := func() { pcancel(); acancel() }
	if err := chromedp.Do(pctx); err != nil {
		stop()
		t.Fatal(err)
	}
	return pctx, stop
}

func waitText(t *testing.T, ctx context.Context, what, sel string, within time.Duration, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		txt, err := textOf(ctx, sel)
		if err == nil && ok(txt) {
			return txt
		}
		if time.Now().After(deadline) {
			errTxt, _ := textOf(ctx, "#error")
			t.Fatalf("%s: %s shows %q (err %v; page error %q)", what, sel, txt, err, errTxt)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// textOf is the text of the first element sel matches ("" if none),
// without waiting for it.
func textOf(ctx context.Context, sel string) (string, error) {
	js, _ := json.Marshal(sel)
	return chromedp.Run(ctx, chromedp.Evaluate[string]("(e => e ? e.textContent : '')(document.querySelector("+string(js)+"))"))
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// setValue sets the value of the input with id (chromedp.SetValue
// refuses an empty value).
func setValue(id, v string) chromedp.Action[chromedp.Void] {
	js, _ := json.Marshal(map[string]string{"id": id, "v": v})
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[string]("(a => { document.getElementById(a.id).value = a.v; return a.v })("+string(js)+")")(ctx, t)
		return err
	})
}

// do runs browser steps, failing the test on an error.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// login logs in through the login page, after a wrong password that the
// page must refuse in words.
func login(t *testing.T, ctx context.Context, d testDaemon, dir, name string) {
	t.Helper()
	do(t, ctx,
		chromedp.Navigate(d.base+"/"),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), "not the password"),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	waitText(t, ctx, "wrong password shown in words", "#error", 5*time.Second, func(s string) bool {
		return strings.Contains(s, "wrong username or password")
	})
	if name != "" {
		screenshot(t, ctx, dir, name)
	}
	time.Sleep(300 * time.Millisecond) // the login backoff after one failure is 100 ms
	do(t, ctx,
		setValue("password", ""),
		chromedp.SendKeys(chromedp.ID("password"), d.pw),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("logout")),
	)
	// The page never shows (or keeps) the password after login.
	pw, _ := json.Marshal(d.pw)
	if eval[bool](t, ctx, `document.documentElement.outerHTML.includes(`+string(pw)+`)`) {
		t.Fatal("the password is in the page after login")
	}
}

// TestWebUIInBrowser drives the dashboard in Debian's chromium against
// two daemons on a devnet: a provider daemon (--provider.serve) and a
// consumer daemon. It logs in (a wrong password is refused in words),
// sees the provider page, changes the price and finds the new proposal in
// the consumer daemon's GET /proposals, filters proposals on the consumer
// page, connects, sees bytes grow while the provider page shows the live
// session arrive through server-sent events (no reload), disconnects,
// sees the session end and land in both pages' history and charts,
// settles with the fees shown first, changes a password with the keyboard
// only, and logs out. Screenshots go to $MYST_TEST_OUTPUT (else a temp
// dir).
func TestWebUIInBrowser(t *testing.T) {
	ctx := testenv.Long(t, "runs a devnet, two daemons and chromium; skipped with -short", 2*time.Minute)
	chromium := testenv.RequireChromium(t)
	outDir := screenshotDir(t)
	body := payload(1 << 20)
	srv, rule := startServer(t, body)
	log := testLog()
	d, err := StartDevnet(ctx, DevnetConfig{
		DataDir:   t.TempDir(),
		Providers: []ProviderSpec{{Country: "DE", City: "Berlin", PerHour: "0.3", PerGiB: "1"}},
		Allow:     []tunnel.Rule{rule}, Payment: testPayment, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	dep := d.Chain.Deployment()
	p2pCfg := NetworkConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: []peer.AddrInfo{d.Boot.AddrInfo()}, ChainID: dep.ChainID}
	chainCfg := ChainConfig{RPC: d.Chain.URL(), Deployment: d.DeploymentPath(), Tx: TxOptional}

	// The consumer daemon's identity is funded and registered first.
	ddC := t.TempDir()
	consID, passC, consSigner := newDaemonIdentity(t, ctx, ddC)
	if _, err := d.Client.Mint(ctx, d.Client.ChannelAddress(consID, dep.Hermes), money.MYST(10)); err != nil {
		t.Fatal(err)
	}
	if err := EnsureRegisteredFee(ctx, d.Client, consSigner, dep.Hermes, nil, nil); err != nil {
		t.Fatal(err)
	}
	cons := runTestDaemon(t, "127.0.0.3", DaemonConfig{
		DataDir: ddC, LightScrypt: true, Log: log, Chain: chainCfg, P2P: p2pCfg,
		Consumer: DaemonConsumer{Identity: IdentityRef{PassphraseFile: passC}, SOCKS: freeLoopback(t)},
	})

	ddP := t.TempDir()
	provID, passP, _ := newDaemonIdentity(t, ctx, ddP)
	price, _ := money.ParseMYSTAmount("0.1")
	perGiB, _ := money.ParseMYSTAmount("0.5")
	prov := runTestDaemon(t, "127.0.0.2", DaemonConfig{
		DataDir: ddP, LightScrypt: true, Log: log, Chain: chainCfg, P2P: p2pCfg,
		Provider: DaemonProvider{
			Identity: IdentityRef{PassphraseFile: passP},
			Location: LocationConfig{Override: geoip.Override{Country: "FR", City: "Paris"}},
			Serve: &ProviderConfig{HermesURL: d.Hermes.URL(), Price: market.Price{PerHour: price, PerGiB: perGiB},
				Allow: []tunnel.Rule{rule}, Payment: testPayment,
				Caps: ProviderCaps{SessionBandwidth: 8 << 20, MonthlyQuota: 1 << 30}},
		},
	})
	cons.id, prov.id = consID, provID
	// A provider daemon without operator caps (and outside the p2p
	// network: only its caps card is looked at).
	ddN := t.TempDir()
	_, passN, _ := newDaemonIdentity(t, ctx, ddN)
	nocaps := runTestDaemon(t, "127.0.0.5", DaemonConfig{
		DataDir: ddN, LightScrypt: true, Log: log, Chain: chainCfg,
		P2P: NetworkConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, ChainID: dep.ChainID},
		Provider: DaemonProvider{
			Identity: IdentityRef{PassphraseFile: passN},
			Location: LocationConfig{Override: geoip.Override{Country: "NL"}},
			Serve: &ProviderConfig{HermesURL: d.Hermes.URL(), Price: market.Price{PerHour: price, PerGiB: perGiB},
				Allow: []tunnel.Rule{rule}, Payment: testPayment},
		},
	})

	pctx, stopBrowser := startChromium(ctx, t, chromium)
	defer stopBrowser()

	// Provider: log in, see the identity, the proposal and its price.
	login(t, pctx, prov, outDir, "login")
	waitText(t, pctx, "provider identity", "#identity", 30*time.Second, func(s string) bool { return strings.EqualFold(s, provID.Hex()) })
	waitText(t, pctx, "provider announced", "#service-status", 30*time.Second, func(s string) bool { return strings.HasPrefix(s, "on:") })
	waitText(t, pctx, "price per hour", "#price-hour", 5*time.Second, func(s string) bool { return s == "0.1 MYST" })
	waitText(t, pctx, "registration", "#registration", 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "registered") })
	waitText(t, pctx, "exit mode", "#exit-mode", 5*time.Second, func(s string) bool { return s == "userspace" })
	waitText(t, pctx, "WireGuard endpoint", "#wg-endpoint", 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "127.0.0.1:") })
	waitText(t, pctx, "access policy", "#access", 5*time.Second, func(s string) bool { return s == "public" })
	// The provider's own quality score (GET /quality/{id}): no report yet.
	waitText(t, pctx, "quality before any session", "#quality-score", 10*time.Second, func(s string) bool { return s == "no reports yet" })
	waitText(t, pctx, "not blacklisted", "#quality-blacklisted", 5*time.Second, func(s string) bool { return s == "no" })
	// The caps card (GET /service/caps): the operator's caps, no quota
	// used yet.
	waitText(t, pctx, "bandwidth cap", "#caps-bandwidth", 10*time.Second, func(s string) bool { return s == "8.00 MiB/s in each direction" })
	waitText(t, pctx, "session cap", "#caps-sessions", 5*time.Second, func(s string) bool { return s == "0 running of at most 1000" })
	waitText(t, pctx, "quota unused", "#caps-quota", 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "0 B used of 1.00 GiB (0.0 %) in ") })
	waitText(t, pctx, "access in the caps", "#caps-access", 5*time.Second, func(s string) bool { return s == "public: any consumer" })
	if eval[int](t, pctx, `document.getElementById('caps-quota-bar').getClientRects().length`) == 0 {
		t.Fatal("the quota's progress bar is hidden although the provider has a quota")
	}
	checkAccessible(t, pctx, "provider page")

	// Change the price; the consumer daemon sees the new proposal.
	do(t, pctx,
		setValue("new-price-hour", "0.25"),
		chromedp.Click(chromedp.CSS(`#price-form button[type="submit"]`)),
	)
	waitText(t, pctx, "price change", "#price-status", 10*time.Second, func(s string) bool { return s == "New price published." })
	want, _ := money.ParseMYST("0.25")
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ps []market.Proposal
		if cons.getJSON(t, "/proposals?provider_id="+provID.Hex(), &ps) == 200 && len(ps) == 1 && ps[0].Price.PerHour.Int().Cmp(want) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consumer daemon's GET /proposals does not show the new price: %+v", ps)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitText(t, pctx, "new price shown", "#price-hour", 10*time.Second, func(s string) bool { return s == "0.25 MYST" })
	// A marker that a reload would lose: the session must arrive live.
	eval[bool](t, pctx, `window.__noReload = true`)

	// Consumer: log in (a second origin: its own cookie), filter, connect.
	cctx, ccancel := chromedp.NewContext(pctx) // a new tab
	defer ccancel()
	if err := chromedp.Do(cctx); err != nil {
		t.Fatal(err)
	}
	login(t, cctx, cons, outDir, "")
	do(t, cctx, chromedp.Navigate(cons.base+"/ui/consumer"))
	const rowsJS = `Array.from(document.querySelectorAll('#proposals tr[data-provider]')).map(r => r.dataset.provider).join(',')`
	filter := func(country, maxHour string) {
		do(t, cctx,
			setValue("f-country", country),
			setValue("f-max-hour", maxHour),
			chromedp.Click(chromedp.CSS(`#filter-form button[type="submit"]`)),
		)
	}
	// Both providers (DE from the devnet, FR the daemon) are listed.
	waitText(t, cctx, "two proposals", "#proposals", 20*time.Second, func(string) bool {
		filter("", "")
		time.Sleep(100 * time.Millisecond)
		return strings.Count(eval[string](t, cctx, rowsJS), ",") == 1
	})
	filter("fr", "")
	waitText(t, cctx, "filter FR", "#proposals", 10*time.Second, func(string) bool {
		return strings.EqualFold(eval[string](t, cctx, rowsJS), provID.Hex())
	})
	// Each row shows the access policy and the quality score (none yet).
	if q, a := qualityCell(t, cctx, provID), cellOf(t, cctx, provID, 4); q != "no reports yet" || a != "public" {
		t.Fatalf("proposal row of %s: quality %q, access %q; want no reports yet, public", provID.Hex(), q, a)
	}
	filter("fr", "0.2")
	waitText(t, cctx, "filter FR at most 0.2 MYST/h (the provider asks 0.25)", "#proposals", 10*time.Second, func(s string) bool { return s == "No proposal matches." })
	// The IP type and the price per GiB filter too (both providers are
	// residential; FR asks 0.5 MYST/GiB, DE 1).
	do(t, cctx, setValue("f-iptype", "hosting"))
	filter("", "")
	waitText(t, cctx, "filter hosting", "#proposals", 10*time.Second, func(s string) bool { return s == "No proposal matches." })
	do(t, cctx, setValue("f-iptype", "residential"), setValue("f-max-gib", "0.6"))
	filter("", "")
	waitText(t, cctx, "filter residential at most 0.6 MYST/GiB", "#proposals", 10*time.Second, func(string) bool {
		return strings.EqualFold(eval[string](t, cctx, rowsJS), provID.Hex())
	})
	// A filter the API refuses is shown in words.
	do(t, cctx, setValue("f-max-gib", "lots"))
	filter("", "")
	waitText(t, cctx, "refused filter in words", "#error", 10*time.Second, func(s string) bool {
		return strings.HasPrefix(s, "read proposals: ") && strings.Contains(s, "max_price_gib")
	})
	do(t, cctx, setValue("f-iptype", ""), setValue("f-max-gib", ""))
	// The rows on screen are the last render's: mark them, so that the
	// click below lands on the new render's button, not on one the
	// answer to this filter is about to replace (clearing the error
	// happens before the request, so it says nothing of the rows).
	eval[bool](t, cctx, `document.querySelectorAll('#proposals tr').forEach(r => r.dataset.stale = '1'), true`)
	filter("fr", "")
	waitText(t, cctx, "error cleared", "#error", 10*time.Second, func(s string) bool { return s == "" })
	const fresh = `#proposals tr[data-provider]:not([data-stale]) button.connect`
	waitText(t, cctx, "filter FR rendered", "#proposals", 10*time.Second, func(string) bool {
		return eval[bool](t, cctx, `document.querySelectorAll('#proposals tr[data-stale]').length === 0 && document.querySelectorAll('`+fresh+`').length === 1`)
	})
	do(t, cctx,
		chromedp.WaitVisible(chromedp.CSS(fresh)),
		chromedp.Click(chromedp.CSS(fresh)),
	)
	waitText(t, cctx, "connected", "#conn-state", 30*time.Second, func(s string) bool { return s == "connected" })
	// The connection says how its datagrams travel (GET /connection's path).
	path := waitText(t, cctx, "session path", "#conn-path", 5*time.Second, func(s string) bool {
		return strings.HasPrefix(s, "static ") || strings.HasPrefix(s, "direct ") || strings.HasPrefix(s, "relay ")
	})
	path = strings.Fields(path)[0]
	socks := waitText(t, cctx, "socks address", "#conn-socks", 5*time.Second, func(s string) bool { return strings.HasPrefix(s, "127.0.0.1:") })
	// The exit's address as the provider tells it (devnet: loopback), confirmed.
	waitText(t, cctx, "public address", "#conn-public-ip", 5*time.Second, func(s string) bool { return s == "127.0.0.1" })
	socksAddr, err := net.ResolveTCPAddr("tcp", socks)
	if err != nil {
		t.Fatal(err)
	}
	rx0 := waitText(t, cctx, "bytes received", "#conn-rx", 5*time.Second, func(s string) bool { return s != "–" })
	for i := 0; i < 2; i++ {
		got, err := download(ctx, socksAddr, srv.URL)
		if err != nil || len(got) != len(body) {
			t.Fatalf("download through the tunnel: %d bytes, %v", len(got), err)
		}
	}
	waitText(t, cctx, "bytes grow", "#conn-rx", 10*time.Second, func(s string) bool { return s != rx0 && strings.HasSuffix(s, "MiB") })
	waitText(t, cctx, "spent grows", "#conn-spent", 15*time.Second, func(s string) bool {
		v, err := money.ParseMYST(strings.TrimSuffix(s, " MYST"))
		return err == nil && v.Sign() > 0 && strings.HasSuffix(s, " MYST")
	})
	waitText(t, cctx, "duration", "#conn-duration", 5*time.Second, func(s string) bool { return regexp.MustCompile(`^([0-9]+m )?[0-9]+s$`).MatchString(s) })
	// The spend rate (spent over time, in MYST per hour) follows.
	waitText(t, cctx, "spend rate", "#conn-rate", 10*time.Second, func(s string) bool {
		v, err := money.ParseMYST(strings.TrimSuffix(s, " MYST/hour"))
		return err == nil && v.Sign() > 0 && strings.HasSuffix(s, " MYST/hour")
	})
	screenshot(t, cctx, outDir, "consumer")

	// The provider page got the session live, without a reload.
	waitText(t, pctx, "live session", "#live-count", 10*time.Second, func(s string) bool { return s == "1" })
	row, _ := textOf(pctx, "#sessions tr[data-session]")
	short := consID.Hex()[:8]
	if !strings.Contains(row, short) || !eval[bool](t, pctx, `window.__noReload === true`) {
		t.Fatalf("provider session row %q (want consumer %s…), or the page was reloaded", row, short)
	}
	waitText(t, pctx, "session traffic", `#sessions tr[data-session] td:nth-child(3)`, 10*time.Second, func(s string) bool { return strings.HasSuffix(s, "MiB") })
	// The caps card counts the running session (re-read every 5 s).
	waitText(t, pctx, "running session in the caps", "#caps-sessions", 15*time.Second, func(s string) bool { return s == "1 running of at most 1000" })
	screenshot(t, pctx, outDir, "provider")

	// Disconnect; the provider page sees the session end.
	do(t, cctx, chromedp.Click(chromedp.ID("disconnect")))
	waitText(t, cctx, "disconnected", "#conn-state", 20*time.Second, func(s string) bool { return s == "not connected" })
	waitText(t, pctx, "session ended", "#live-count", 10*time.Second, func(s string) bool { return s == "0" })
	waitText(t, pctx, "no running session in the caps", "#caps-sessions", 15*time.Second, func(s string) bool { return s == "0 running of at most 1000" })

	// History and charts: the ended session is in both pages' history
	// tables and in the charts of the current hour.
	// Both tables show the session's path.
	waitText(t, pctx, "provider history", "#history", 10*time.Second, func(s string) bool {
		return strings.Contains(s, short) && strings.Contains(s, "MiB") && strings.Contains(s, path)
	})
	waitText(t, cctx, "consumer history", "#history", 10*time.Second, func(s string) bool {
		return strings.Contains(s, provID.Hex()[:8]) && strings.Contains(s, "MiB") && strings.Contains(s, path)
	})
	for _, c := range []struct {
		ctx context.Context
		id  string
	}{{pctx, "chart-earnings"}, {pctx, "chart-traffic"}, {cctx, "chart-spent"}} {
		// The history follows payments (reloaded on earnings events).
		waitText(t, c.ctx, c.id+": the one session's bar", "#"+c.id, 15*time.Second, func(string) bool {
			label := eval[string](t, c.ctx, `document.querySelector('#`+c.id+` svg').getAttribute('aria-label')`)
			bars := eval[int](t, c.ctx, `Array.from(document.querySelectorAll('#`+c.id+` rect.bar')).filter(r => r.getAttribute('height') > 0).length`)
			return bars == 1 && !strings.Contains(label, ": 0 ")
		})
	}
	screenshot(t, cctx, outDir, "consumer-history")
	// The quota counts the session's traffic (the card re-reads it).
	waitText(t, pctx, "quota used", "#caps-quota", 15*time.Second, func(s string) bool {
		return regexp.MustCompile(`^[1-9][0-9.]* MiB used of 1\.00 GiB \(0\.[1-9] %\)`).MatchString(s)
	})
	if v := eval[float64](t, pctx, `document.getElementById('caps-quota-bar').value`); v < 2<<20 {
		t.Fatalf("quota progress bar at %v bytes after 2 MiB downloaded", v)
	}
	screenshot(t, pctx, outDir, "provider-caps")

	// Spending history across sessions: a second session, with the
	// devnet's DE provider; the consumer page sums both per day and per
	// month (GET /sessions/spending) and lists both.
	deID := d.Providers[0].Address()
	filter("de", "")
	waitText(t, cctx, "filter DE", "#proposals", 10*time.Second, func(string) bool {
		return strings.EqualFold(eval[string](t, cctx, rowsJS), deID.Hex())
	})
	do(t, cctx, chromedp.Click(chromedp.CSS(`#proposals button.connect`)))
	waitText(t, cctx, "connected to DE", "#conn-provider", 30*time.Second, func(s string) bool { return strings.EqualFold(s, deID.Hex()) })
	if got, err := download(ctx, socksAddr, srv.URL); err != nil || len(got) != len(body) {
		t.Fatalf("download through the second tunnel: %d bytes, %v", len(got), err)
	}
	do(t, cctx, chromedp.Click(chromedp.ID("disconnect")))
	waitText(t, cctx, "disconnected from DE", "#conn-state", 20*time.Second, func(s string) bool { return s == "not connected" })
	checkSpending(t, cctx, cons, provID, deID)
	screenshot(t, cctx, outDir, "consumer-spending")

	// Quality: the consumer daemon signed a report of the paid session and
	// gossiped it; both daemons count it (backed by the consumer's funded
	// channel). The consumer's table, sorted by quality by default, shows
	// the score; the provider page shows its own.
	scored := regexp.MustCompile(`^[01]\.\d\d \(1 report\)$`)
	waitText(t, cctx, "provider's quality in the proposals table", "#proposals", 20*time.Second, func(string) bool {
		filter("", "")
		time.Sleep(200 * time.Millisecond)
		return scored.MatchString(qualityCell(t, cctx, provID))
	})
	if got := eval[string](t, cctx, `document.querySelector('th[data-sort="quality"]').getAttribute('aria-sort')`); got != "descending" {
		t.Fatalf("quality column aria-sort %q, want descending (the default order)", got)
	}
	assertQualityOrder(t, cctx)
	screenshot(t, cctx, outDir, "consumer-quality")
	checkAccessible(t, cctx, "consumer page")
	// The MYST/GiB header sorts by price instead.
	do(t, cctx, chromedp.Click(chromedp.CSS(`th[data-sort="price"] button`)))
	waitText(t, cctx, "sorted by price per GiB", "#proposals", 10*time.Second, func(string) bool {
		return eval[string](t, cctx, `document.querySelector('th[data-sort="price"]').getAttribute('aria-sort')`) == "ascending" &&
			eval[bool](t, cctx, `(c => c.length === 2 && Number(c[0]) <= Number(c[1]))(Array.from(document.querySelectorAll('#proposals tr[data-provider] td:nth-child(6)')).map(td => td.textContent))`)
	})
	waitText(t, pctx, "provider's own quality score", "#quality-score", 20*time.Second, scored.MatchString)
	waitText(t, pctx, "provider's success rate", "#quality-success", 5*time.Second, func(s string) bool { return strings.HasSuffix(s, "%") && s != "0%" })
	waitText(t, pctx, "provider's median throughput", "#quality-throughput", 5*time.Second, func(s string) bool { return strings.HasSuffix(s, "/s") })
	screenshot(t, pctx, outDir, "provider-quality")

	// Settle: the page shows the fees first, then the transaction. (The
	// hermes first settles the consumer's promises, which funds it.)
	if _, err := d.Hermes.Service.SettleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	waitText(t, pctx, "unsettled earnings", "#unsettled", 15*time.Second, func(s string) bool { return s != "0 MYST" && s != "…" })
	do(t, pctx, chromedp.Click(chromedp.ID("settle-preview")), chromedp.WaitVisible(chromedp.ID("settle-confirm")))
	payout := waitText(t, pctx, "settlement payout", "#settle-payout", 5*time.Second, func(s string) bool { return s != "" && s != "–" })
	fee := waitText(t, pctx, "hermes fee", "#settle-fee-bps", 5*time.Second, func(s string) bool { return strings.HasSuffix(s, "%") })
	screenshot(t, pctx, outDir, "settle")
	do(t, pctx, chromedp.Click(chromedp.ID("settle-go")))
	status := waitText(t, pctx, "settled", "#settle-status", 30*time.Second, func(s string) bool { return strings.HasPrefix(s, "Settled: transaction 0x") })
	// The settlement history (GET /settlements) has the new row: settled,
	// with the transaction and the fees that were shown.
	tx := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(status, "Settled: transaction "))[0], ",")
	histRow := waitText(t, pctx, "settlement history row", "#settlements tr[data-settlement]", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "settled") && strings.Contains(s, "manual")
	})
	if n := eval[int](t, pctx, `document.querySelectorAll('#settlements tr[data-settlement]').length`); n != 1 ||
		eval[string](t, pctx, `document.querySelector('#settlements tr[data-settlement] td:nth-child(5)').title`) != tx {
		t.Fatalf("settlement history: %d rows, first %q; want one settled row with tx %s", n, histRow, tx)
	}
	screenshot(t, pctx, outDir, "settlements")
	waitText(t, pctx, "nothing left to settle", "#unsettled", 10*time.Second, func(s string) bool { return s == "0 MYST" })
	t.Logf("settled through the page: payout %s MYST, hermes fee %s", payout, fee)

	// Metrics count the session the browser watched.
	var m string
	if code := prov.getText(t, "/metrics", &m); code != 200 {
		t.Fatalf("GET /metrics = %d: %s", code, m)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(m))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, m)
	}
	value := func(name string, labels ...string) float64 {
		for _, mt := range fams[name].GetMetric() {
			ok := true
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range mt.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				ok = ok && found
			}
			if ok {
				if c := mt.GetCounter(); c != nil {
					return c.GetValue()
				}
				return mt.GetGauge().GetValue()
			}
		}
		t.Fatalf("metric %s%v missing:\n%s", name, labels, m)
		return 0
	}
	if value("openmyst_provider_sessions_total") != 1 || value("openmyst_provider_sessions_active") != 0 ||
		value("openmyst_provider_bytes_total") < 2<<20 || value("openmyst_provider_invoices_sent_total") < 1 ||
		value("openmyst_provider_earnings_myst", "state", "settled") <= 0 || value("openmyst_p2p_peers") < 1 ||
		value("openmyst_provider_payment_errors_total", "reason", "payment_timeout") != 0 ||
		value("openmyst_provider_invoices_paid_total") < 1 || value("openmyst_provider_invoices_refused_total") != 0 ||
		value("openmyst_provider_settlements", "status", "settled") != 1 || value("openmyst_provider_settlements", "status", "failed") != 0 ||
		value("openmyst_discovery_proposals") < 1 || value("openmyst_discovery_messages_total", "outcome", "accepted") < 1 {
		t.Fatalf("metrics after one paid, settled session:\n%s", m)
	}

	// Change the consumer daemon's password from the settings page, with
	// the keyboard only: every session is logged out, the new password
	// logs in.
	newPW := "a-new-password-" + strconv.Itoa(os.Getpid())
	do(t, cctx,
		chromedp.Navigate(cons.base+"/ui/settings"),
		chromedp.WaitVisible(chromedp.ID("current-password")),
	)
	checkAccessible(t, cctx, "settings page")
	screenshot(t, cctx, outDir, "settings")
	do(t, cctx,
		chromedp.Focus(chromedp.ID("current-password")),
		chromedp.SendKeys(chromedp.ID("current-password"), cons.pw+"\t"+newPW+"\t"+newPW+kb.Enter),
	)
	waitText(t, cctx, "password changed", "#password-status", 10*time.Second, func(s string) bool { return strings.HasPrefix(s, "Password changed") })
	do(t, cctx, chromedp.WaitVisible(chromedp.ID("login-form")))
	do(t, cctx, chromedp.SendKeys(chromedp.ID("password"), newPW+kb.Enter), chromedp.WaitVisible(chromedp.ID("logout")))
	cons.pw = newPW
	if code := cons.getJSON(t, "/identities", nil); code != 200 {
		t.Fatalf("the new password does not log in over the API: %d", code)
	}

	// Log out: the cookie no longer opens the pages.
	do(t, pctx,
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.Navigate(prov.base+"/ui/provider"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)
	if url, err := chromedp.Run(pctx, chromedp.Location()); err != nil || !strings.HasSuffix(url, "/ui/login") {
		t.Fatalf("after logout /ui/provider shows %s (%v)", url, err)
	}
	checkAccessible(t, pctx, "login page")

	// A provider without operator caps: the card says "none" in words.
	nctx, ncancel := chromedp.NewContext(pctx) // a new tab
	defer ncancel()
	if err := chromedp.Do(nctx); err != nil {
		t.Fatal(err)
	}
	login(t, nctx, nocaps, outDir, "")
	waitText(t, nctx, "no bandwidth cap", "#caps-bandwidth", 20*time.Second, func(s string) bool { return s == "none (unlimited)" })
	waitText(t, nctx, "default session cap", "#caps-sessions", 5*time.Second, func(s string) bool { return s == "0 running of at most 1000" })
	waitText(t, nctx, "no quota", "#caps-quota", 5*time.Second, regexp.MustCompile(`^none \(unlimited; 0 B used in 20[0-9]{2}-[01][0-9]\)$`).MatchString)
	waitText(t, nctx, "public access", "#caps-access", 5*time.Second, func(s string) bool { return s == "public: any consumer" })
	// Not on the network: the proposal's fields say so instead of loading forever.
	waitText(t, nctx, "not announced", "#service-status", 10*time.Second, func(s string) bool { return strings.HasPrefix(s, "not announced") })
	waitText(t, nctx, "no price without a proposal", "#price-hour", 5*time.Second, func(s string) bool { return s == "–" })
	// (hidden, not drawn: an author display rule would override the attribute)
	if eval[int](t, nctx, `document.getElementById('caps-quota-bar').getClientRects().length`) != 0 || eval[string](t, nctx, `document.getElementById('caps-status').textContent`) != "" {
		t.Fatal("provider without caps: the quota bar is drawn or the card reports a problem")
	}
	screenshot(t, nctx, outDir, "provider-nocaps")

	// The on/off switch: off stops the provider (DELETE /service), on
	// starts it again with its options (PUT /service).
	waitText(t, nctx, "switch offers off", "#service-toggle", 5*time.Second, func(s string) bool { return s == "Turn provider off" })
	do(t, nctx, chromedp.Click(chromedp.ID("service-toggle")))
	waitText(t, nctx, "provider stopped", "#service-toggle-status", 20*time.Second, func(s string) bool { return strings.HasPrefix(s, "Provider stopped: ") })
	waitText(t, nctx, "status off", "#service-status", 10*time.Second, func(s string) bool { return strings.HasPrefix(s, "off: ") })
	waitText(t, nctx, "switch offers on", "#service-toggle", 5*time.Second, func(s string) bool { return s == "Turn provider on" })
	if code := nocaps.getJSON(t, "/service/caps", nil); code != http.StatusNotFound {
		t.Fatalf("GET /service/caps after the switch turned the provider off = %d, want 404", code)
	}
	screenshot(t, nctx, outDir, "provider-off")
	do(t, nctx, chromedp.Click(chromedp.ID("service-toggle")))
	waitText(t, nctx, "provider started", "#service-toggle-status", 30*time.Second, func(s string) bool { return s == "Provider started." })
	waitText(t, nctx, "switch offers off again", "#service-toggle", 10*time.Second, func(s string) bool { return s == "Turn provider off" })
	waitText(t, nctx, "status no longer off", "#service-status", 10*time.Second, func(s string) bool { return !strings.HasPrefix(s, "off") && s != "…" })
	if code := nocaps.getJSON(t, "/service/caps", nil); code != http.StatusOK {
		t.Fatalf("GET /service/caps after the switch turned the provider on = %d, want 200", code)
	}
	t.Logf("screenshots in %s", outDir)
}

// cellOf is the text of column col (1-based) of the proposals row of
// provider on the consumer page ("" without such a row).
func cellOf(t *testing.T, ctx context.Context, provider common.Address, col int) string {
	t.Helper()
	return eval[string](t, ctx, `(r => r ? r.querySelector('td:nth-child(`+strconv.Itoa(col)+`)').textContent : '')(Array.from(document.querySelectorAll('#proposals tr[data-provider]')).find(r => r.dataset.provider.toLowerCase() === '`+strings.ToLower(provider.Hex())+`'))`)
}

// qualityCell is the quality column of provider's row.
func qualityCell(t *testing.T, ctx context.Context, provider common.Address) string {
	t.Helper()
	return cellOf(t, ctx, provider, 7)
}

// assertQualityOrder checks that the proposals table lists the scores
// best first, a provider without reports at the unknown value 0.25.
func assertQualityOrder(t *testing.T, ctx context.Context) {
	t.Helper()
	cells := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#proposals tr[data-provider] td:nth-child(7)')).map(td => td.textContent)`)
	prev := 2.0
	for _, c := range cells {
		v := 0.25
		if c != "no reports yet" {
			f, err := strconv.ParseFloat(strings.Fields(c)[0], 64)
			if err != nil {
				t.Fatalf("quality cell %q: %v", c, err)
			}
			v = f
		}
		if v > prev {
			t.Fatalf("proposals sorted by quality are not best first: %q", cells)
		}
		prev = v
	}
}

// freeLoopback returns a free 127.0.0.1 TCP address.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// token logs in with the password.
func (d testDaemon) token(t *testing.T) string {
	t.Helper()
	body, _ := json.Marshal(tequilapi.LoginRequest{Username: tequilapi.Username, Password: d.pw})
	resp, err := http.Post(d.base+"/auth/login", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lr tequilapi.LoginResponse
	if err := json.NewDecoder(resp.Body).Decode(&lr); err != nil {
		t.Fatal(err)
	}
	return lr.Token
}

// getText GETs path with a bearer token into out.
func (d testDaemon) getText(t *testing.T, path string, out *string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", d.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.token(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	*out = string(b)
	return resp.StatusCode
}

// checkSpending checks the consumer page's spending history after one
// ended session with each of providers: the total and the day's row
// count them all and show what GET /sessions/spending answers, their
// amount is the sum of the session rows' amounts (and of GET /sessions),
// and the month's row counts them too.
func checkSpending(t *testing.T, ctx context.Context, cons testDaemon, providers ...common.Address) {
	t.Helper()
	n := len(providers)
	offset := eval[int](t, ctx, `(-new Date().getTimezoneOffset()) || 0`)
	zone := time.FixedZone("", offset*60)
	var sp tequilapi.SpendingDTO
	// The page re-reads the totals every 10 s: a session's last payment
	// may land after it ended.
	waitText(t, ctx, "spending total", "#spending-total", 25*time.Second, func(s string) bool {
		if cons.getJSON(t, "/sessions/spending?by=day&utc_offset="+strconv.Itoa(offset), &sp) != 200 {
			return false
		}
		spent, err := money.ParseWei(sp.Total.Spent)
		return err == nil && sp.Total.Sessions == n && sp.Total.Running == 0 && spent.Sign() > 0 &&
			strings.HasPrefix(s, strconv.Itoa(n)+" sessions, ") && strings.HasSuffix(s, ", "+money.FormatMYST(spent)+" MYST spent")
	})
	total, _ := money.ParseWei(sp.Total.Spent)
	// The session rows (every session, both providers) add up to it.
	var hist tequilapi.SessionList
	if cons.getJSON(t, "/sessions", &hist) != 200 {
		t.Fatal("GET /sessions")
	}
	sum := new(big.Int)
	for _, s := range hist.Sessions {
		if s.Role == "consumer" {
			v, err := money.ParseWei(s.Paid)
			if err != nil {
				t.Fatalf("session %s paid %q: %v", s.ID, s.Paid, err)
			}
			sum.Add(sum, v)
		}
	}
	cells := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#history tr td:nth-child(5)')).map(td => td.textContent)`)
	rows := eval[string](t, ctx, `document.getElementById('history').textContent`)
	shown := new(big.Int)
	for _, c := range cells {
		v, err := money.ParseMYST(c)
		if err != nil {
			t.Fatalf("spent cell %q: %v", c, err)
		}
		shown.Add(shown, v)
	}
	if len(cells) != n || shown.Cmp(total) != 0 || sum.Cmp(total) != 0 {
		t.Fatalf("spending total %s wei; session rows %q (sum %s), GET /sessions sum %s", total, cells, shown, sum)
	}
	for _, p := range providers {
		if !strings.Contains(rows, p.Hex()[:8]) {
			t.Fatalf("session history %q lacks provider %s", rows, p.Hex())
		}
	}
	// Per day, then per month: the page's rows are the route's; the
	// newest row is the period the newest session started in (in the
	// browser's zone), and the rows add up to every session.
	newest := time.Time{}
	for _, s := range hist.Sessions {
		if st, err := time.Parse(time.RFC3339, s.Start); err == nil && s.Role == "consumer" && st.After(newest) {
			newest = st
		}
	}
	for _, by := range []struct{ by, layout string }{{"day", "2006-01-02"}, {"month", "2006-01"}} {
		if by.by == "month" {
			do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Evaluate[bool](`(s => { s.value = 'month'; s.dispatchEvent(new Event('change')); return true })(document.getElementById('spending-by'))`)(ctx, tg)
				return err
			}))
		}
		if cons.getJSON(t, "/sessions/spending?by="+by.by+"&utc_offset="+strconv.Itoa(offset), &sp) != 200 || len(sp.Periods) == 0 {
			t.Fatalf("GET /sessions/spending by %s: %+v", by.by, sp)
		}
		count, sum := 0, new(big.Int)
		for _, p := range sp.Periods {
			count += p.Sessions
			v, _ := money.ParseWei(p.Spent)
			sum.Add(sum, v)
		}
		first := sp.Periods[0]
		if count != n || sum.Cmp(total) != 0 || first.Period != newest.In(zone).Format(by.layout) {
			t.Fatalf("spending per %s: %+v; want %d sessions, %s wei, the newest in %s", by.by, sp.Periods, n, total, newest.In(zone).Format(by.layout))
		}
		sessions := strconv.Itoa(first.Sessions) + " session"
		if first.Sessions != 1 {
			sessions += "s"
		}
		spent, _ := money.ParseWei(first.Spent)
		waitText(t, ctx, "spending per "+by.by, "#spending-periods tr", 10*time.Second, func(s string) bool {
			return strings.HasPrefix(s, first.Period+sessions) && strings.HasSuffix(s, money.FormatMYST(spent)) &&
				eval[int](t, ctx, `document.querySelectorAll('#spending-periods tr[data-period]').length`) == len(sp.Periods)
		})
	}
}

// checkAccessible checks the page the browser shows for basic
// accessibility: every visible input and select has a label and every
// button a name; every visible text meets WCAG AA contrast (4.5:1, 3:1
// for large text) against the background it is drawn on; and Tab alone
// reaches every visible control, each with a visible focus outline.
func checkAccessible(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	problems := eval[[]string](t, ctx, a11yJS)
	if len(problems) > 0 {
		t.Fatalf("%s: accessibility: %s", what, strings.Join(problems, "; "))
	}
	// Keyboard: Tab through every control, once the page's requests have
	// settled (an answer arriving during the walk, e.g. of the last
	// filter, could replace the controls walked).
	waitText(t, ctx, "requests settled", "body", 10*time.Second, func(string) bool {
		return eval[int](t, ctx, `window.openmystUI.inflight()`) == 0
	})
	focused, unfocused, missed := tabWalk(t, ctx)
	if focused == 0 {
		t.Fatalf("%s: Tab focuses nothing", what)
	}
	if len(unfocused) > 0 || len(missed) > 0 {
		t.Fatalf("%s: keyboard: focus without a visible outline %q; controls Tab never reaches %q", what, unfocused, missed)
	}
}

// tabWalk presses Tab until a control comes round again (the whole
// cycle, whichever control it starts at: the browser may keep its
// starting point) and returns how many controls took the focus, those
// without a visible focus outline and the visible, enabled controls it
// never reached.
func tabWalk(t *testing.T, ctx context.Context) (focused int, unfocused, missed []string) {
	t.Helper()
	eval[bool](t, ctx, `(() => { document.querySelectorAll('[data-kb]').forEach(e => e.removeAttribute('data-kb')); if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); return true })()`)
	bodies := 0
	for i := 0; i < 300 && bodies < 3; i++ {
		do(t, ctx, chromedp.KeyEvent(kb.Tab))
		st := eval[string](t, ctx, `(e => {
			if (!e || e === document.body) return 'body';
			if (e.dataset.kb) return 'again';
			e.dataset.kb = '1';
			const cs = getComputedStyle(e);
			return cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2 ? 'ok' : 'no outline: ' + e.outerHTML.slice(0, 80);
		})(document.activeElement)`)
		if st == "body" {
			bodies++
			continue
		}
		if st == "again" {
			break
		}
		focused++
		if st != "ok" {
			unfocused = append(unfocused, st)
		}
	}
	missed = eval[[]string](t, ctx, `Array.from(document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')).filter(e =>
		!e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden' && !e.dataset.kb).map(e => e.outerHTML.slice(0, 80))`)
	return focused, unfocused, missed
}

// a11yJS lists the accessibility problems of the page: controls without
// a label or name, text below WCAG AA contrast.
const a11yJS = `(() => {
	const out = [];
	const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
	const desc = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' "' + (e.textContent || '').trim().slice(0, 30) + '"';
	for (const e of document.querySelectorAll('input, select, textarea')) {
		if (e.type === 'hidden' || !visible(e)) continue;
		const named = Array.from(e.labels || []).some(l => l.textContent.trim()) || (e.getAttribute('aria-label') || '').trim() || e.getAttribute('aria-labelledby');
		if (!named) out.push('no label: ' + desc(e));
	}
	for (const e of document.querySelectorAll('button')) {
		if (visible(e) && !e.textContent.trim() && !(e.getAttribute('aria-label') || '').trim()) out.push('button without a name: ' + desc(e));
	}
	const rgba = (c) => {
		const m = /rgba?\(([^)]+)\)/.exec(c || '');
		if (!m) return null;
		const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
		return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
	};
	const over = (top, under) => ({ r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1 });
	// background: the element's and its ancestors' colours composited over white.
	const background = (e) => {
		const layers = [];
		for (; e; e = e.parentElement) {
			const c = rgba(getComputedStyle(e).backgroundColor);
			if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
		}
		let bg = { r: 255, g: 255, b: 255, a: 1 };
		for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
		return bg;
	};
	const lum = (c) => {
		const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
		return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
	};
	const seen = new Set();
	const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	while (w.nextNode()) {
		const el = w.currentNode.parentElement;
		if (!w.currentNode.textContent.trim() || !el || seen.has(el)) continue;
		seen.add(el);
		if (!visible(el) || el.closest('.sr-only, title, option, noscript')) continue;
		const r = el.getBoundingClientRect();
		if (r.width === 0 || r.height === 0) continue;
		const cs = getComputedStyle(el);
		const svg = el instanceof SVGElement;
		const bg = background(svg ? el.ownerSVGElement : el);
		const fg0 = rgba(svg ? cs.fill : cs.color);
		if (!fg0) { out.push('no colour: ' + desc(el)); continue; }
		const fg = over(fg0, bg);
		const l1 = lum(fg), l2 = lum(bg);
		const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
		const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		if (ratio < need) out.push('contrast ' + ratio.toFixed(2) + ' < ' + need + ': ' + desc(el));
	}
	return out;
})()`
