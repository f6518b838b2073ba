package node

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/quality"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
	"github.com/openmyst/openmyst/tunnel"
)

// errDropped is how a dropping provider's sessions break.
var errDropped = errors.New("test: the provider drops the session")

// dropping makes a provider break every session once it has sent
// invoices invoices: its session ends with an error and its stream
// closes under the consumer.
func dropping(invoices int32) func(*ProviderConfig) {
	return func(pc *ProviderConfig) {
		pc.SendInvoice = func(w *sessionproto.Writer) func(context.Context, *payments.Invoice) error {
			send := paystream.InvoiceSender(w)
			var n atomic.Int32
			return func(ctx context.Context, inv *payments.Invoice) error {
				if n.Add(1) > invoices {
					return errDropped
				}
				return send(ctx, inv)
			}
		}
	}
}

// throttledExit admits every peer with a bandwidth limit: a provider with
// a slow uplink, enforced by the real exit's per-peer limiter.
type throttledExit struct {
	tunnel.Exit
	bytesPerSecond uint64
}

// AddPeer implements tunnel.Exit.
func (e throttledExit) AddPeer(ctx context.Context, cfg tunnel.PeerConfig) error {
	cfg.BandwidthLimit = e.bytesPerSecond
	return e.Exit.AddPeer(ctx, cfg)
}

// AttachConn implements tunnel.ConnAttacher (the devnet runs ICE).
func (e throttledExit) AttachConn(pub tunnel.PublicKey, c net.Conn) error {
	a, ok := e.Exit.(tunnel.ConnAttacher)
	if !ok {
		return errors.New("test: the exit attaches no connections")
	}
	return a.AttachConn(pub, c)
}

// slow makes a provider's exit carry at most bytesPerSecond per session
// and direction.
func slow(bytesPerSecond uint64) func(*ProviderConfig) {
	return func(pc *ProviderConfig) {
		pc.WrapExit = func(e tunnel.Exit) tunnel.Exit { return throttledExit{Exit: e, bytesPerSecond: bytesPerSecond} }
	}
}

// TestQualityPaidSessions is the real-session part of issue 16's network
// test (quality.TestThirtyNodes simulates its 120 sessions): one funded
// consumer runs real paid sessions through the devnet (hermes, chain,
// WireGuard over ICE, payments) against four providers: an honest one
// (the dearest), one that drops every session after its first invoice, a
// slow one (its exit limited to 32 KiB/s per peer) and one that triples
// its invoices. The consumer's signed reports and its overcharge proof go
// out over gossip; then on every node of the devnet (bootstrap, consumer,
// the four providers) the overcharger is blacklisted and not listed, and
// sort=quality puts the honest provider first and the dropper and the
// slow one last, although price order is the reverse.
func TestQualityPaidSessions(t *testing.T) {
	ctx := testenv.Long(t, "end-to-end devnet test; skipped with -short", 3*time.Minute)
	body := payload(1 << 20)
	srv, rule := startServer(t, body)
	const (
		honest = iota
		dropper
		slowOne
		overcharger
	)
	d, c := startDevnetConsumer(ctx, t, DevnetConfig{
		DataDir: t.TempDir(), Allow: []tunnel.Rule{rule}, Payment: testPayment, Log: testLog(),
		// The bad providers are the cheapest.
		Providers: []ProviderSpec{
			honest:      {Country: "DE", City: "Berlin", IPType: market.IPResidential, PerHour: "0.06", PerGiB: "0.4"},
			dropper:     {Country: "DE", City: "Munich", IPType: market.IPResidential, PerHour: "0.02", PerGiB: "0.1"},
			slowOne:     {Country: "DE", City: "Hamburg", IPType: market.IPResidential, PerHour: "0.03", PerGiB: "0.2"},
			overcharger: {Country: "DE", City: "Cologne", IPType: market.IPResidential, PerHour: "0.01", PerGiB: "0.05"},
		},
		AdjustProvider: map[int]func(*ProviderConfig){
			dropper: dropping(1),
			slowOne: slow(32 << 10),
			overcharger: overcharging(func(inv *payments.Invoice) {
				inv.AgreementTotal = new(big.Int).Add(new(big.Int).Mul(inv.AgreementTotal, big.NewInt(3)), big.NewInt(1e15))
			}),
		},
	})
	var err error
	if ps, err := c.WaitProposals(ctx, market.Filter{}, 4); err != nil || len(ps) != 4 {
		t.Fatalf("%d proposals (%v), want 4", len(ps), err)
	}
	addr := func(i int) common.Address { return d.Providers[i].Address() }

	connect := func(i int) *consumer.Connection {
		t.Helper()
		conn, err := c.Connect(ctx, market.Filter{ProviderID: addr(i)}, consumer.Options{SOCKSListen: "127.0.0.1:0"})
		if err != nil {
			t.Fatalf("connect to provider %d: %v", i, err)
		}
		return conn
	}
	waitPaid := func(conn *consumer.Connection, n int, what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for conn.PayerStats().Invoices < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d invoices paid, want %d (session error %v)", what, conn.PayerStats().Invoices, n, conn.Err())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitDone := func(conn *consumer.Connection, what string) error {
		t.Helper()
		select {
		case <-conn.Done():
			return conn.Err()
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the session did not end", what)
			return nil
		}
	}

	// Honest: the whole payload, two invoices paid, a clean disconnect.
	conn := connect(honest)
	if got, err := download(ctx, conn.SOCKSAddr(), srv.URL); err != nil || len(got) != len(body) {
		t.Fatalf("download through the honest provider: %d bytes, %v", len(got), err)
	}
	waitPaid(conn, 2, "honest provider")
	if err := conn.Disconnect(ctx); err != nil || conn.Err() != nil {
		t.Fatalf("disconnect from the honest provider: %v, %v", err, conn.Err())
	}

	// Dropper: the session breaks after the first invoice.
	conn = connect(dropper)
	if err := waitDone(conn, "dropping provider"); err == nil {
		t.Fatal("the dropped session ended without an error")
	} else {
		t.Logf("dropped session ended with: %v", err)
	}

	// Slow: what 3 s of downloading brings at 32 KiB/s, then disconnect.
	conn = connect(slowOne)
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	got, _ := download(dctx, conn.SOCKSAddr(), srv.URL)
	dcancel()
	if len(got) >= len(body) {
		t.Fatalf("the slow provider carried the whole %d-byte payload in 3 s", len(got))
	}
	waitPaid(conn, 1, "slow provider")
	dctx, dcancel = context.WithTimeout(ctx, 20*time.Second)
	err = conn.Disconnect(dctx)
	dcancel()
	if err != nil {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
		t.Fatalf("disconnect from the slow provider: %v\n%s", err, b.String())
	}

	// Overcharger: refused at its first invoice, nothing paid.
	conn = connect(overcharger)
	if err := waitDone(conn, "overcharging provider"); !errors.Is(err, pingpong.ErrOvercharge) {
		t.Fatalf("overcharged session ended with %v, want ErrOvercharge", err)
	}

	type observer struct {
		name  string
		trust *Trust
		disc  *discovery.Service
	}
	obs := []observer{{"bootstrap", d.bootTrust, d.bootDisc}, {"consumer", c.Trust, c.Discovery}}
	for i, p := range d.Providers {
		obs = append(obs, observer{fmt.Sprintf("provider %d", i), p.trust, p.Discovery})
	}
	judged := func(o observer) string {
		if !o.trust.Service.Blocked(addr(overcharger)) {
			return "overcharger not blacklisted"
		}
		for _, i := range []int{honest, dropper, slowOne} {
			if o.trust.Service.Score(addr(i)).Reports == 0 {
				return fmt.Sprintf("no report on provider %d", i)
			}
		}
		ps := o.disc.Cache().Query(market.Filter{Sort: market.SortQuality})
		if len(ps) < 3 {
			// A provider's node may have joined after the others
			// announced: it pulls them as a node does on joining.
			o.disc.SyncConnected(ctx, 3)
		}
		if len(ps) != 3 {
			return fmt.Sprintf("lists %d providers, want 3", len(ps))
		}
		if ps[0].ProviderID != addr(honest) {
			return "the honest provider is not first by quality"
		}
		return ""
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, o := range obs {
		for {
			why := judged(o)
			if why == "" {
				break
			}
			if time.Now().After(deadline) {
				for i := range d.Providers {
					t.Logf("%s: provider %d: %+v", o.name, i, o.trust.Service.Score(addr(i)))
				}
				t.Fatalf("%s: %s (report stats %+v)", o.name, why, o.trust.Service.ReportStats())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	byPrice := c.Discovery.Cache().Query(market.Filter{})
	if byPrice[len(byPrice)-1].ProviderID != addr(honest) {
		t.Fatal("the honest provider should be the dearest by price")
	}
	scores := map[string]quality.Score{}
	for name, i := range map[string]int{"honest": honest, "dropper": dropper, "slow": slowOne} {
		scores[name] = d.bootTrust.Service.Score(addr(i))
		t.Logf("bootstrap's score of the %s provider: %+v", name, scores[name])
	}
	// The dropped session paid its first small invoice: it still weighs
	// as a failure (FailWeight), not as the tiny payment.
	if s := scores["dropper"]; s.SuccessRate != 0 || s.Weight < 0.99 {
		t.Fatalf("dropper's score %+v: want success rate 0 with a failure's weight (about 1)", s)
	}
	if s := scores["slow"]; s.SuccessRate != 1 || s.MedianThroughput > 64<<10 {
		t.Fatalf("slow provider's score %+v: want every session successful at <= 64 KiB/s", s)
	}
}
