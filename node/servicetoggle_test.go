package node

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// TestDaemonServiceStopStart: DELETE /service stops a daemon's provider
// (--provider.serve) while a consumer is in a paid session: the session
// ends, the proposal is withdrawn and not announced again, the WireGuard
// port is free and the earnings are kept; PUT /service without options
// starts the same provider again, which the consumer finds and connects
// to; a second DELETE stops it again.
func TestDaemonServiceStopStart(t *testing.T) {
	ctx := testenv.Long(t, "runs a devnet and a daemon; skipped with -short", 40*time.Second)
	b := newProviderBed(t, ctx, "127.0.0.2")
	c, provID, cfg := b.consumer, b.provider, b.cfg
	price, _ := money.ParseMYSTAmount("3600") // 1 MYST a second: every invoice earns
	const ttl = 3 * time.Second               // re-announced every second while it runs
	cfg.Provider.Serve = &ProviderConfig{HermesURL: b.devnet.Hermes.URL(), Price: market.Price{PerHour: price, PerGiB: price},
		Payment: testPayment, ProposalTTL: ttl}
	prov, stopDaemon := startTestDaemon(t, cfg)
	t.Cleanup(stopDaemon)
	api, err := client.New(prov.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Login(ctx, prov.pw); err != nil {
		t.Fatal(err)
	}
	mine := market.Filter{ProviderID: provID}
	listed := func() bool { return len(c.Proposals(ctx, mine)) == 1 }
	earned := func() *big.Int {
		t.Helper()
		var e tequilapi.EarningsDTO
		if code := prov.getJSON(t, "/earnings", &e); code != 200 {
			t.Fatalf("GET /earnings = %d", code)
		}
		v, ok := new(big.Int).SetString(e.Earned, 10)
		if !ok {
			t.Fatalf("earned %q", e.Earned)
		}
		return v
	}
	wgAddr := func() *net.UDPAddr {
		t.Helper()
		var st tequilapi.ProviderStatusDTO
		if code := prov.getJSON(t, "/provider", &st); code != 200 {
			t.Fatalf("GET /provider = %d", code)
		}
		a, err := net.ResolveUDPAddr("udp", st.WireGuard)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	session := func(round int) (*consumer.Connection, *net.UDPAddr) {
		t.Helper()
		if _, err := c.WaitProposals(ctx, mine, 1); err != nil {
			t.Fatalf("round %d: the consumer finds no proposal: %v", round, err)
		}
		conn, err := c.Connect(ctx, mine, consumer.Options{})
		if err != nil {
			t.Fatalf("round %d: connect: %v", round, err)
		}
		waitInvoices(t, conn, 2)
		wg := wgAddr()
		if ln, err := net.ListenUDP("udp", wg); err == nil {
			ln.Close()
			t.Fatalf("round %d: the running provider's WireGuard port %s is free", round, wg)
		}
		return conn, wg
	}
	stop := func(round int, conn *consumer.Connection, wg *net.UDPAddr) {
		t.Helper()
		if earned().Sign() <= 0 {
			t.Fatalf("round %d: nothing earned in a paid session", round)
		}
		if err := api.StopService(ctx); err != nil {
			t.Fatalf("round %d: DELETE /service: %v", round, err)
		}
		// The consumer's session ends: the provider ended it (DELETE
		// returns once the provider closed).
		select {
		case <-conn.Done():
		case <-ctx.Done():
			t.Fatalf("round %d: the session outlives the provider", round)
		}
		if _, err := api.ServiceCaps(ctx); !client.IsCode(err, tequilapi.CodeNotFound) {
			t.Fatalf("round %d: GET /service/caps after DELETE: %v, want 404 not_found", round, err)
		}
		if err := api.StopService(ctx); !client.IsCode(err, tequilapi.CodeNotFound) {
			t.Fatalf("round %d: DELETE /service without a provider: %v, want 404 not_found", round, err)
		}
		ln, err := net.ListenUDP("udp", wg)
		if err != nil {
			t.Fatalf("round %d: the stopped provider's WireGuard port is not free: %v", round, err)
		}
		ln.Close()
		endedNormally(t, prov, round)
		// Withdrawn, then not announced again (it was every second).
		for listed() {
			if ctx.Err() != nil {
				t.Fatalf("round %d: the stopped provider's proposal stays listed", round)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for end := time.Now().Add(2 * ttl); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if listed() {
				t.Fatalf("round %d: the stopped provider's proposal was announced again", round)
			}
		}
	}

	conn, wg := session(1)
	before := earned()
	stop(1, conn, wg)

	// Bad restarts are refused in words, and start nothing.
	if err := api.Do(ctx, "PUT", "/service", json.RawMessage(`{"options":[1]}`), nil); !client.IsCode(err, tequilapi.CodeValidation) {
		t.Fatalf("PUT /service with options [1]: %v, want 400 %s", err, tequilapi.CodeValidation)
	}
	if _, err := api.ServiceCaps(ctx); !client.IsCode(err, tequilapi.CodeNotFound) {
		t.Fatalf("a refused PUT /service started a provider: %v", err)
	}
	// Start again, with the options it ran with.
	caps, err := api.StartService(ctx, tequilapi.ServiceStartRequest{})
	if err != nil {
		t.Fatalf("PUT /service (again): %v", err)
	}
	if !strings.EqualFold(caps.Provider, provID.Hex()) {
		t.Fatalf("restarted provider %s, want %s", caps.Provider, provID.Hex())
	}
	if _, err := api.StartService(ctx, tequilapi.ServiceStartRequest{}); !client.IsCode(err, "already_serving") {
		t.Fatalf("PUT /service while serving: %v, want 409 already_serving", err)
	}
	// The earnings survived the stop (the provider's database).
	if got := earned(); got.Cmp(before) < 0 {
		t.Fatalf("earned %s after the restart, %s before the stop", got, before)
	}
	conn, wg = session(2)
	stop(2, conn, wg)
}

// endedNormally checks the daemon's GET /metrics: n provider sessions
// ended, every one "normal" (a provider stopped by DELETE /service ends
// its sessions cleanly), none under another reason.
func endedNormally(t *testing.T, d testDaemon, n int) {
	t.Helper()
	var m string
	if code := d.getText(t, "/metrics", &m); code != 200 {
		t.Fatalf("GET /metrics = %d: %s", code, m)
	}
	checkEnded(t, m, "openmyst_provider_sessions_ended_total", n)
}

// checkEnded checks the scrape m: the counter name (a sessions ended by
// reason counter) has n under "normal" and 0 under every other reason.
func checkEnded(t *testing.T, m, name string, n int) {
	t.Helper()
	for _, r := range paystream.EndReasons() {
		want := 0
		if r == paystream.EndNormal {
			want = n
		}
		if line := fmt.Sprintf("%s{reason=%q} %d\n", name, r, want); !strings.Contains(m, line) {
			t.Fatalf("after %d sessions ended normally, GET /metrics lacks %q:\n%s", n, line, m)
		}
	}
}
