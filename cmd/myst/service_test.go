package main

import (
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// TestServiceEndToEnd: `myst service` (a subprocess) registers a fresh
// identity on a devnet's chain, publishes its proposal, serves a paid
// session to an in-process consumer, shows it in GET /sessions and
// /earnings, and `myst service settle` settles it on chain through the
// service's Tequilapi.
func TestServiceEndToEnd(t *testing.T) {
	ctx, d, dd, provider, pf := devnetProviderDir(t, 3*time.Minute)
	port := mysttest.WebServer(t, strings.Repeat("x", 1<<20))
	apiPort := mysttest.FreePort(t)
	svcArgs := mysttest.ServiceArgs(d, pf, "--location.country", "FR", "--price.per-hour", "0.1", "--price.per-gib", "0.5", "--exit.allow", "tcp:127.0.0.1/32 port "+port)
	cmd, lines := mysttest.StartService(t, dd, apiPort, svcArgs...)
	var seen []string
	mysttest.WaitLine(t, lines, "registered", &seen)
	mysttest.WaitLine(t, lines, "tequilapi: http://", &seen)

	c, ps := mysttest.Proposals(ctx, t, d, "FR", 1)
	if !strings.EqualFold(ps[0].ProviderID.Hex(), provider) || ps[0].Price.PerGiB.MYST() != "0.5" {
		t.Fatalf("proposal %+v, want %s at 0.5 MYST/GiB", ps[0], provider)
	}
	conn, err := c.Sessions.Connect(ctx, ps[0], consumer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: conn.DialContext}
	for i := 0; i < 4; i++ {
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get("http://127.0.0.1:" + port)
		if err != nil {
			t.Fatalf("GET through the service's exit: %v", err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != 1<<20 {
			t.Fatalf("got %d bytes", n)
		}
	}
	tr.CloseIdleConnections()
	// Production timing invoices every 30 s; the threshold-free first
	// invoice may take that long, so wait for one to be paid.
	deadline := time.Now().Add(45 * time.Second)
	for conn.PayerStats().Invoices < 1 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if conn.PayerStats().Invoices < 1 {
		t.Fatal("no invoice paid")
	}
	base, token, paid := disconnectAndWaitEarned(ctx, t, conn, apiPort, dd)
	// The provider records the session's end after the consumer left and
	// its last payment reached the hermes, a step after /earnings counts
	// that payment: wait for the record to end, then check it.
	deadline = time.Now().Add(20 * time.Second)
	for {
		b, code := mysttest.GetAuth(t, base+"/sessions", token)
		var list tequilapi.SessionList
		if code == 200 && json.Unmarshal([]byte(b), &list) == nil && len(list.Sessions) == 1 && list.Sessions[0].End != "" {
			if s := list.Sessions[0]; s.Role != "provider" || s.Paid != paid.String() {
				t.Fatalf("GET /sessions: %s, want one ended provider session that was paid %s", b, paid)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /sessions: %d %s, want the session's end recorded", code, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := d.Hermes.Service.SettleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, dd, "--tequilapi.port", strconv.Itoa(apiPort), "service", "settle")
	if err != nil || !regexp.MustCompile(`settled `+paid.String()+` wei cumulative: tx 0x[0-9a-f]{64}`).MatchString(out) {
		t.Fatalf("myst service settle: %v %q", err, out)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
}

// devnetProviderDir starts a devnet for a test bounded by timeout and
// makes a data dir whose default identity is a fresh provider, with its
// passphrase file pf. With -short it skips the test: its callers run the
// devnet and a service or daemon subprocess.
func devnetProviderDir(t *testing.T, timeout time.Duration) (ctx context.Context, d *node.Devnet, dd, provider, pf string) {
	t.Helper()
	ctx = testenv.Long(t, "runs a devnet and a service or daemon subprocess", timeout)
	d = mysttest.Devnet(ctx, t)
	dd = t.TempDir()
	provider, pf = newDefaultIdentity(t, dd, "provider-pw")
	return ctx, d, dd, provider, pf
}

// disconnectAndWaitEarned ends the consumer's session conn and waits
// until the provider's Tequilapi on apiPort (data dir dd) reports earned
// exactly what the consumer paid; it returns the API's base URL, a login
// token and that amount.
func disconnectAndWaitEarned(ctx context.Context, t *testing.T, conn *consumer.Connection, apiPort int, dd string) (base, token string, paid *big.Int) {
	t.Helper()
	if err := conn.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	paid = conn.PayerStats().Paid
	base = "http://127.0.0.1:" + strconv.Itoa(apiPort)
	token = mysttest.Login(t, base, dd)
	mysttest.WaitEarned(t, base, token, paid)
	return base, token, paid
}

// TestServiceKilledMidSession: `myst service` is SIGKILLed while a
// consumer pays; restarted from the same data dir it recovers what it had
// stored, the hermes credits it, and `myst service settle` settles it on
// chain. At most the one exchange message in flight at the kill is lost.
func TestServiceKilledMidSession(t *testing.T) {
	ctx := testenv.Long(t, "runs a devnet and service subprocesses", 3*time.Minute)
	d := mysttest.Devnet(ctx, t)
	dd := t.TempDir()
	pf := passFile(t, "provider-pw")
	if _, err := runCLI(t, dd, "identity", "new", "--passphrase-file", pf, "--set-default"); err != nil {
		t.Fatal(err)
	}
	apiPort := mysttest.FreePort(t)
	args := mysttest.ServiceArgs(d, pf, "--location.country", "FR", "--price.per-hour", "3.6", "--price.per-gib", "0", "--payment.interval", "500ms", "--payment.grace", "5s")
	cmd, lines := mysttest.StartService(t, dd, apiPort, args...)
	var seen []string
	mysttest.WaitLine(t, lines, "tequilapi: http://", &seen)

	c, ps := mysttest.Proposals(ctx, t, d, "FR", 1)
	conn, err := c.Sessions.Connect(ctx, ps[0], consumer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for conn.PayerStats().Invoices < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d invoices paid", conn.PayerStats().Invoices)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	select {
	case <-conn.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("consumer did not notice the provider dying")
	}
	paid := conn.PayerStats().Paid

	_, lines = mysttest.StartService(t, dd, apiPort, args...)
	seen = nil
	mysttest.WaitLine(t, lines, "tequilapi: http://", &seen)
	base := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	token := mysttest.Login(t, base, dd)
	// 3.6 MYST/h is 1e15 wei per second: one 500 ms invoice is 5e14 wei;
	// allow two for the exchange in flight and clock slack.
	maxGap := big.NewInt(1e15)
	var earned *big.Int
	deadline = time.Now().Add(20 * time.Second)
	for {
		b, code := mysttest.GetAuth(t, base+"/earnings", token)
		var e tequilapi.EarningsDTO
		if code == 200 && json.Unmarshal([]byte(b), &e) == nil {
			earned, _ = new(big.Int).SetString(e.Earned, 10)
		}
		if earned != nil && new(big.Int).Sub(paid, earned).Cmp(maxGap) <= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart the hermes credits %v, consumer paid %s", earned, paid)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if earned.Cmp(paid) > 0 {
		t.Fatalf("hermes credits %s, more than the consumer paid (%s)", earned, paid)
	}
	if _, err := d.Hermes.Service.SettleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, dd, "--tequilapi.port", strconv.Itoa(apiPort), "service", "settle")
	if err != nil || !strings.Contains(out, "settled "+earned.String()+" wei cumulative: tx 0x") {
		t.Fatalf("myst service settle after the kill: %v %q (earned %s)", err, out, earned)
	}
	t.Logf("consumer paid %s wei; after SIGKILL and restart the provider settled %s wei", paid, earned)
}

// TestDaemonServesProvider: `myst daemon --provider.serve` runs a provider
// on the daemon's one libp2p host: its proposal carries the peer id of
// <data-dir>/p2p.key, an in-process consumer gets a paid session through
// it, and GET /earnings shows what the consumer paid.
func TestDaemonServesProvider(t *testing.T) {
	ctx, d, dd, provider, pf := devnetProviderDir(t, 3*time.Minute)
	port := mysttest.WebServer(t, strings.Repeat("x", 1<<20))
	apiPort := mysttest.FreePort(t)
	daemon, lines := mysttest.StartDaemon(t, dd, apiPort, "--p2p.bootstrap", d.BootstrapAddrs()[0],
		"--chain.rpc", d.Chain.URL(), "--chain.deployment", d.DeploymentPath(),
		"--provider.serve", "--provider.passphrase-file", pf, "--provider.hermes-url", d.Hermes.URL(),
		"--location.country", "FR", "--price.per-hour", "0.1", "--price.per-gib", "0.5",
		"--wg.port", "0", "--payment.interval", "1s", "--exit.allow", "tcp:127.0.0.1/32 port "+port,
		"--provider.max-sessions", "7", "--provider.bandwidth", "80Mbit", "--provider.monthly-quota", "1TiB")
	var seen []string
	mysttest.WaitLine(t, lines, "provider serving", &seen)

	daemonPeer := mysttest.DataDirPeer(t, dd)
	c, ps := mysttest.Proposals(ctx, t, d, "FR", 1)
	if !strings.EqualFold(ps[0].ProviderID.Hex(), provider) || ps[0].PeerID != daemonPeer.String() {
		t.Fatalf("proposal of %s on peer %s, want %s on the daemon's peer %s", ps[0].ProviderID.Hex(), ps[0].PeerID, provider, daemonPeer)
	}
	if ps[0].Caps == nil || ps[0].Caps.Bandwidth != 10_000_000 {
		t.Fatalf("proposal caps %+v, want the daemon's 80Mbit (10 MB/s) per session", ps[0].Caps)
	}
	conn, err := c.Sessions.Connect(ctx, ps[0], consumer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: conn.DialContext}
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get("http://127.0.0.1:" + port)
	if err != nil {
		t.Fatalf("GET through the daemon's exit: %v", err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	tr.CloseIdleConnections()
	if n != 1<<20 {
		t.Fatalf("got %d bytes", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for conn.PayerStats().Invoices < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if conn.PayerStats().Invoices < 2 {
		t.Fatalf("%d invoices paid, want 2", conn.PayerStats().Invoices)
	}
	base, token, _ := disconnectAndWaitEarned(ctx, t, conn, apiPort, dd)
	// The caps and this month's traffic, through the typed client.
	tc, err := client.New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc.SetToken(token)
	// (The session's traffic is counted every 2 s and at its end.)
	caps, err := tc.ServiceCaps(ctx)
	for deadline := time.Now().Add(10 * time.Second); err == nil && caps.Quota.Used < 1<<20 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		caps, err = tc.ServiceCaps(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(caps.Provider, provider) || caps.MaxSessions != 7 || caps.SessionBandwidth != 10_000_000 || caps.Quota.Limit != 1<<40 || caps.Quota.Used < 1<<20 || caps.Access != "public" {
		t.Fatalf("GET /service/caps %+v: want the daemon's caps and the session's traffic counted", caps)
	}
	// myst service on the daemon's data dir talks to the daemon instead
	// of starting a second provider that the daemon's locks refuse.
	out, err := runCLI(t, dd, "--tequilapi.port", strconv.Itoa(apiPort), "service", "--passphrase-file", pf, "--location.country", "FR",
		"--chain.rpc", d.Chain.URL(), "--chain.deployment", d.DeploymentPath(), "--hermes.url", d.Hermes.URL(), "--wg.port", "0")
	if err != nil || !strings.Contains(out, "is served by the daemon running for this data dir") || !strings.Contains(out, "of at most 7") {
		t.Fatalf("myst service beside the daemon: %v\n%s", err, out)
	}
	mysttest.Stop(t, daemon, lines)
}

// TestServiceStartsInDaemon: `myst service` beside a daemon that serves no
// provider starts its provider in the daemon (PUT /service), on the
// daemon's libp2p host, with its own flags (location, price, caps); a
// second `myst service` reports the daemon's provider instead of failing
// on its locks; a restarted daemon process serves that provider again
// with those flags (it remembers it in its database).
func TestServiceStartsInDaemon(t *testing.T) {
	ctx, d, dd, provider, pf := devnetProviderDir(t, 3*time.Minute)
	apiPort := mysttest.FreePort(t)
	daemonArgs := []string{"--p2p.bootstrap", d.BootstrapAddrs()[0], "--chain.rpc", d.Chain.URL(), "--chain.deployment", d.DeploymentPath(),
		"--provider.passphrase-file", pf} // unlocks the remembered provider after the restart
	daemon, lines := mysttest.StartDaemon(t, dd, apiPort, daemonArgs...)
	var seen []string
	mysttest.WaitLine(t, lines, "node started", &seen)
	go func() { // keep draining the daemon's log
		for range lines {
		}
	}()

	svc := func() (string, error) {
		return runCLI(t, dd, "--tequilapi.port", strconv.Itoa(apiPort), "service", "--passphrase-file", pf, "--location.country", "PT",
			"--price.per-hour", "0.2", "--price.per-gib", "0.3", "--hermes.url", d.Hermes.URL(), "--wg.port", "0", "--provider.max-sessions", "9")
	}
	out, err := svc()
	if err != nil || !strings.Contains(out, "started provider "+provider+" in the daemon") || !strings.Contains(out, "of at most 9") {
		t.Fatalf("myst service beside a daemon serving none: %v\n%s", err, out)
	}
	daemonPeer := mysttest.DataDirPeer(t, dd)
	_, ps := mysttest.Proposals(ctx, t, d, "PT", 1)
	if !strings.EqualFold(ps[0].ProviderID.Hex(), provider) || ps[0].PeerID != daemonPeer.String() || ps[0].Price.PerGiB.MYST() != "0.3" {
		t.Fatalf("proposal %+v: want %s at 0.3 MYST/GiB on the daemon's peer %s", ps[0], provider, daemonPeer)
	}
	if out, err := svc(); err != nil || !strings.Contains(out, "is served by the daemon running for this data dir") {
		t.Fatalf("second myst service: %v\n%s", err, out)
	}
	_ = daemon.Process.Signal(syscall.SIGTERM)
	if err := daemon.Wait(); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	// A new daemon process (no myst service this time) starts the
	// remembered provider with myst service's caps.
	daemon, lines = mysttest.StartDaemon(t, dd, apiPort, daemonArgs...)
	seen = nil
	mysttest.WaitLine(t, lines, "starting the provider started with PUT /service before the restart", &seen)
	mysttest.WaitLine(t, lines, "node started", &seen)
	go func() {
		for range lines {
		}
	}()
	base := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	token := mysttest.Login(t, base, dd)
	for {
		body, code := mysttest.GetAuth(t, base+"/service/caps", token)
		if code == 200 {
			if !strings.Contains(body, `"max_sessions":9`) {
				t.Fatalf("the restored provider's caps %s, want myst service's 9 sessions", body)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the restarted daemon does not serve the remembered provider: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = daemon.Process.Signal(syscall.SIGTERM)
	if err := daemon.Wait(); err != nil {
		t.Fatalf("daemon exit after the restart: %v", err)
	}
}
