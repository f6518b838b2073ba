package node

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
	"github.com/openmyst/openmyst/tunnel"
)

// TestProviderCaps runs a devnet with a capped free provider (DE:
// per-session bandwidth, monthly quota) and an uncapped paid one (NL) and
// checks the caps on real sessions: the bandwidth cap as a ratio of
// rates measured in this run, the quota ending a running session and
// refusing new ones with quota_exhausted, and a consumer's first
// connection moving on to the next provider when refused for quota.
func TestProviderCaps(t *testing.T) {
	ctx := testenv.Long(t, "devnet test; skipped with -short", 2*time.Minute)
	const (
		limit = 96 << 10 // bytes per second
		size  = 512 << 10
		quota = 3 * size / 2 // the first download fits, a second crosses it
	)
	body := payload(size)
	srv, rule := startServer(t, body)
	d, c := startDevnetConsumer(ctx, t, DevnetConfig{
		DataDir: t.TempDir(), Allow: []tunnel.Rule{rule}, Payment: testPayment, Log: testLog(), NoICE: true,
		Providers: []ProviderSpec{
			{Country: "DE", City: "Berlin", IPType: market.IPResidential, PerHour: "0", PerGiB: "0"},
			{Country: "NL", City: "Amsterdam", IPType: market.IPResidential, PerHour: "0.01", PerGiB: "0.01"},
		},
		AdjustProvider: map[int]func(*ProviderConfig){0: func(c *ProviderConfig) {
			c.Caps = ProviderCaps{SessionBandwidth: limit, MonthlyQuota: quota, Allow: []common.Address{devchain.DevAddress(devConsumerAccount), common.HexToAddress("0x0b")}}
			c.QuotaEvery = 100 * time.Millisecond
			// A free session has no invoices to answer: the consumer
			// only sends keepalives (every 10 s by default).
			c.Payment.ReadTimeout = paystream.DefaultReadTimeout
		}},
	})
	var err error
	capped, open := d.Providers[0], d.Providers[1]
	if _, err := c.WaitProposals(ctx, market.Filter{}, 2); err != nil {
		t.Fatal(err)
	}
	if p, ok := capped.Proposal(); !ok || p.Version != market.ProposalVersionCaps || p.Caps == nil || p.Caps.Bandwidth != limit {
		t.Fatalf("capped provider's proposal %+v (%t), want version 2 with the bandwidth cap", p, ok)
	}
	if p, _ := open.Proposal(); p.Version != market.ProposalVersion || p.Caps != nil {
		t.Fatalf("uncapped provider's proposal %+v, want version 1 without caps", p)
	}
	if p, _ := capped.Proposal(); p.Access.Kind != market.AccessAllowList || !p.Access.Allows(c.Address()) {
		t.Fatalf("capped provider's access %+v, want an allow-list with the consumer", p.Access)
	}
	if got := capped.Caps(); got.SessionBandwidth != limit || got.Quota.Limit != quota || got.Access != market.AccessAllowList || len(got.Allow) != 2 || got.MaxSessions != 1000 {
		t.Fatalf("capped provider's caps %+v", got)
	}

	// rate downloads the payload from the provider and returns bytes/s.
	rate := func(conn *consumer.Connection) float64 {
		t.Helper()
		start := time.Now()
		got, err := download(ctx, conn.SOCKSAddr(), srv.URL)
		if err != nil || len(got) != size {
			t.Fatalf("download: %d bytes, %v", len(got), err)
		}
		return size / time.Since(start).Seconds()
	}
	connect := func(f market.Filter) *consumer.Connection {
		t.Helper()
		conn, err := c.Connect(ctx, f, consumer.Options{SOCKSListen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}

	conn := connect(market.Filter{ProviderID: open.Address()})
	uncapped := rate(conn)
	if err := conn.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	conn = connect(market.Filter{ProviderID: capped.Address()})
	limited := rate(conn)
	t.Logf("%d KiB download: %.0f KiB/s uncapped, %.0f KiB/s with a %d KiB/s cap (ratio %.1f; capped/cap %.3f)", size>>10, uncapped/1024, limited/1024, limit>>10, uncapped/limited, limited/limit)
	// The exit's token bucket holds max(limit/8, 64 KiB) (its copy
	// buffer): size bytes need at least (size-burst)/limit seconds.
	burst := max(limit/8, 64<<10)
	if bound := float64(limit) * size / float64(size-burst); limited > bound {
		t.Errorf("capped download at %.2fx the cap, above the bucket's %.2fx", limited/limit, bound/limit)
	}
	if uncapped < 2*limited {
		t.Errorf("uncapped download only %.2fx the capped one; the cap is not what limits it", uncapped/limited)
	}

	// A second download crosses the quota: the provider ends the session.
	_, _ = download(ctx, conn.SOCKSAddr(), srv.URL)
	select {
	case <-conn.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the session outlived the quota")
	}
	var perr *sessionproto.Error
	if err := conn.Err(); !errors.As(err, &perr) || perr.Code != sessionproto.CodeQuotaExhausted {
		t.Fatalf("session ended with %v, want quota_exhausted", conn.Err())
	}
	st := capped.Caps().Quota
	if !st.Exhausted || st.Used < quota {
		t.Fatalf("quota after the session %+v", st)
	}
	if saved, err := (quotaStore{capped.DB}).LoadUsage(ctx); err != nil || saved.Used < quota {
		t.Fatalf("saved usage %+v, %v; want the quota's worth", saved, err)
	}

	// A restart keeps the month's count (the session's end may still add
	// to it): still exhausted.
	before := capped.Caps().Quota.Used
	if capped, err = d.RestartProvider(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := capped.WaitPublished(ctx); err != nil {
		t.Fatal(err)
	}
	if after := capped.Caps().Quota; after.Used < before || !after.Exhausted {
		t.Fatalf("quota after a restart %+v, want at least the %d bytes counted before", after, before)
	}
	// Refused with the code when asked directly ...
	p, ok := capped.Proposal()
	if !ok {
		t.Fatal("capped provider has no proposal")
	}
	if _, err := c.Sessions.Connect(ctx, p, consumer.Options{SOCKSListen: "127.0.0.1:0"}); !RefusedFull(err) || !errors.As(err, &perr) || perr.Code != sessionproto.CodeQuotaExhausted {
		t.Fatalf("connect to the exhausted provider: %v, want refused with quota_exhausted", err)
	}
	// ... and a first connection moves on: the capped provider is the
	// cheapest, so it is tried first (failure memory cleared).
	c.failMu.Lock()
	c.failed = nil
	c.failMu.Unlock()
	conn = connect(market.Filter{Sort: market.SortPrice})
	if conn.Proposal().ProviderID != open.Address() {
		t.Fatalf("connected to %s, want the uncapped provider", conn.Proposal().ProviderID.Hex())
	}
	if err := conn.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
}
