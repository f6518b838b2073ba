package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/strictjson"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/storage/storagetest"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

func TestParseSize(t *testing.T) {
	good := map[string]uint64{
		"": 0, "0": 0, "1024": 1024, "1KiB": 1024, "1.5 GiB": 3 << 29, "500GB": 500e9, "2TiB": 2 << 40,
		"10Mbit": 1_250_000, "1mib": 1 << 20, "7b": 7,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1GiB", "1XB", "GiB", "1e400", "NaN", "1..2MB", "99999999999TiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	rates := map[string]uint64{"": 0, "10Mbit": 1_250_000, "10Mbps": 1_250_000, "2MiB/s": 2 << 20, "1KiB": 1024}
	for in, want := range rates {
		if got, err := ParseBandwidth(in); err != nil || got != want {
			t.Errorf("ParseBandwidth(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseBandwidth("100B/s"); err == nil {
		t.Error("a 100 B/s cap accepted")
	}
}

func TestCapsOptions(t *testing.T) {
	a, b := "0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000b2"
	c, err := CapsOptions{Bandwidth: "8Mbit", MaxSessions: 3, MonthlyQuota: "1GiB", Allow: []string{a, b}}.Caps()
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionBandwidth != 1e6 || c.MaxSessions != 3 || c.MonthlyQuota != 1<<30 || len(c.Allow) != 2 {
		t.Fatalf("caps %+v", c)
	}
	if acc := c.Access(); acc.Kind != market.AccessAllowList || !acc.Allows(common.HexToAddress(b)) || acc.Allows(common.HexToAddress("0x01")) {
		t.Fatalf("access %+v", acc)
	}
	if (ProviderCaps{}).Access().Kind != market.AccessPublic {
		t.Fatal("no allow-list is not public")
	}
	for _, bad := range []CapsOptions{{Bandwidth: "fast"}, {MonthlyQuota: "-5GB"}, {MaxSessions: -1}, {Allow: []string{"0xnope"}}, {Allow: []string{a, a}}} {
		if _, err := bad.Caps(); err == nil || !strings.Contains(err.Error(), "--provider.") {
			t.Errorf("%+v: %v, want an error naming the flag", bad, err)
		}
	}
}

// TestQuotaSurvivesRestart: the month's count is in the node database,
// so a provider restart (a new Quota over the reopened file) keeps it.
func TestQuotaSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), storage.FileName)
	db := storagetest.Open(t, path)
	q, err := provider.NewQuota(ctx, quotaStore{db}, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	q.Add(700 << 10)
	if err := q.Save(ctx); err != nil {
		t.Fatal(err)
	}
	db = storagetest.Reopen(t, db, path)
	q, err = provider.NewQuota(ctx, quotaStore{db}, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := q.Status(); st.Used != 700<<10 || st.Exhausted {
		t.Fatalf("after a restart %+v, want 700 KiB used", st)
	}
	if !q.Add(400 << 10) {
		t.Fatal("1.1 MiB of a 1 MiB quota not exhausted")
	}
}

// TestDialFirstTriesAnotherWhenFull: a full provider's refusal makes the
// first connection try the next one; other errors do not.
func TestDialFirstTriesAnotherWhenFull(t *testing.T) {
	p1, p2, p3 := common.HexToAddress("0x01"), common.HexToAddress("0x02"), common.HexToAddress("0x03")
	order := []common.Address{p1, p2, p3}
	refusal := map[common.Address]error{
		p1: fmt.Errorf("consumer: provider refused: %w", &sessionproto.Error{Code: sessionproto.CodeQuotaExhausted}),
		p2: fmt.Errorf("consumer: provider refused: %w", &sessionproto.Error{Code: sessionproto.CodeCapacity}),
	}
	var tried []common.Address
	dial := func(_ context.Context, avoid map[common.Address]bool) (*consumer.Connection, common.Address, error) {
		for _, p := range order {
			if !avoid[p] {
				tried = append(tried, p)
				return nil, p, refusal[p]
			}
		}
		return nil, p1, refusal[p1]
	}
	if _, got, err := dialFirst(context.Background(), 3, dial); err != nil || got != p3 || len(tried) != 3 {
		t.Fatalf("connected to %s (%v) after %v; want p3 after p1 and p2 refused", got.Hex(), err, tried)
	}
	// Every provider full: the last refusal, counted.
	refusal[p3] = refusal[p2]
	tried = nil
	_, _, err := dialFirst(context.Background(), 3, dial)
	if !RefusedFull(err) || !strings.Contains(err.Error(), "3 providers tried") {
		t.Fatalf("all full: %v", err)
	}
	// Another error is returned at once.
	refusal[p1] = errors.New("no route")
	tried = nil
	if _, _, err := dialFirst(context.Background(), 3, dial); err == nil || RefusedFull(err) || len(tried) != 1 {
		t.Fatalf("other error: %v after %d tries", err, len(tried))
	}
	// A quota refusal mid-session excludes the provider from reconnects.
	ex := map[common.Address]bool{}
	if !shouldRetry(&sessionproto.Error{Code: sessionproto.CodeQuotaExhausted}, p1, ex) || !ex[p1] {
		t.Fatal("a provider out of quota is not excluded from the reconnect")
	}
}

// TestServiceViaDaemon: myst service beside a daemon reports the daemon's
// provider, and starts its own in a daemon that serves none (PUT
// /service with its options, as the daemon's default identity).
func TestServiceViaDaemon(t *testing.T) {
	t.Setenv(PassphraseEnv, "")
	var serving bool
	var started tequilapi.ServiceStartRequest
	caps := tequilapi.ServiceCapsDTO{Provider: "0xAb", MaxSessions: 3, Sessions: 1, Access: "public",
		Quota: tequilapi.QuotaDTO{Month: "2026-12", Limit: 100, Used: 40}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /service/caps":
			if !serving {
				tequilapi.WriteError(w, nil, tequilapi.NewError(http.StatusNotFound, tequilapi.CodeNotFound, "no provider"))
				return
			}
			tequilapi.WriteJSON(w, http.StatusOK, caps)
		case "GET /identities":
			tequilapi.WriteJSON(w, http.StatusOK, tequilapi.IdentityListResponse{Identities: []tequilapi.IdentityDTO{
				{ID: "0x00000000000000000000000000000000000000aa"}, {ID: "0x00000000000000000000000000000000000000ab", Default: true}}})
		case "PUT /service":
			if err := tequilapi.DecodeJSON(r, &started); err != nil {
				tequilapi.WriteError(w, nil, err)
				return
			}
			serving = true
			tequilapi.WriteJSON(w, http.StatusOK, caps)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r := ServiceRun{Out: &out, Location: LocationOptions{Country: "DE"},
		Options: ServeOptions{ExitMode: "userspace", PriceHour: "0.1", PriceGiB: "0.2", Advertise: "127.0.0.1", Caps: CapsOptions{MaxSessions: 3}}}
	bad := r
	bad.Location.Country = ""
	if err := ServiceViaDaemon(context.Background(), c, bad, "", ""); err == nil || serving {
		t.Fatalf("bad options started a provider in the daemon (%v)", err)
	}
	if err := ServiceViaDaemon(context.Background(), c, r, "", ""); err != nil || !strings.Contains(out.String(), "started provider 0xAb in the daemon") {
		t.Fatalf("start in the daemon: %v\n%s", err, out.String())
	}
	var got ServiceOptions
	if err := strictjson.Unmarshal(started.Options, &got); err != nil || got.Serve.PriceGiB != "0.2" || got.Location.Country != "DE" || got.Serve.Caps.MaxSessions != 3 ||
		!strings.EqualFold(started.Identity, "0x00000000000000000000000000000000000000ab") {
		t.Fatalf("PUT /service %+v (options %+v, %v): want the run's options as the default identity", started, got, err)
	}
	out.Reset()
	if err := ServiceViaDaemon(context.Background(), c, r, "", ""); err != nil || !strings.Contains(out.String(), "provider 0xAb is served by the daemon") ||
		!strings.Contains(out.String(), "1 of at most 3") || !strings.Contains(out.String(), "40 of 100 bytes") {
		t.Fatalf("daemon serving: %v\n%s", err, out.String())
	}
}

// TestAdmittedSkipsOtherAllowLists: a consumer never picks a provider
// whose allow-list leaves it out (the session would be refused).
func TestAdmittedSkipsOtherAllowLists(t *testing.T) {
	me, other := common.HexToAddress("0x0a"), common.HexToAddress("0x0b")
	ps := []market.Proposal{
		{ProviderID: common.HexToAddress("0x01"), Access: market.AccessPolicy{Kind: market.AccessAllowList, Allow: []common.Address{other}}},
		{ProviderID: common.HexToAddress("0x02"), Access: market.AccessPolicy{Kind: market.AccessPublic}},
		{ProviderID: common.HexToAddress("0x03"), Access: market.AccessPolicy{Kind: market.AccessAllowList, Allow: []common.Address{other, me}}},
	}
	got := admitted(ps, me)
	if len(got) != 2 || got[0].ProviderID != ps[1].ProviderID || got[1].ProviderID != ps[2].ProviderID {
		t.Fatalf("admitted %+v, want the public provider and the allow-list naming me", got)
	}
	if len(ps) != 3 || ps[0].ProviderID != common.HexToAddress("0x01") {
		t.Fatal("admitted changed its input")
	}
}

// TestDialFirstRedialsAStaleProposalOnce: a provider that re-announced
// between the consumer's read of its proposal and its check of the
// request (proposal_expired) is dialled once more, without using up a
// try; a second such refusal is returned.
func TestDialFirstRedialsAStaleProposalOnce(t *testing.T) {
	p1 := common.HexToAddress("0x01")
	stale := fmt.Errorf("consumer: provider refused: %w", &sessionproto.Error{Code: sessionproto.CodeProposalExpired, Message: "proposal 1 is not current (current 2)"})
	refusals := []error{stale, nil}
	var dials int
	dial := func(_ context.Context, avoid map[common.Address]bool) (*consumer.Connection, common.Address, error) {
		if avoid[p1] {
			t.Fatal("the provider that re-announced is avoided")
		}
		err := refusals[dials]
		dials++
		return nil, p1, err
	}
	if _, got, err := dialFirst(context.Background(), 1, dial); err != nil || got != p1 || dials != 2 {
		t.Fatalf("got %s, %v after %d dials; want p1 on the second dial", got.Hex(), err, dials)
	}
	// Stale twice: the second refusal is the answer.
	refusals, dials = []error{stale, stale, nil}, 0
	if _, _, err := dialFirst(context.Background(), 3, dial); !refusedStale(err) || dials != 2 {
		t.Fatalf("stale twice: %v after %d dials; want the refusal after 2", err, dials)
	}
}
