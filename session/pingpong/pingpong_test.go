package pingpong

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/payments"
)

var (
	chainID  = big.NewInt(1337)
	t0       = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	perHour  = new(big.Int).Mul(big.NewInt(1), big.NewInt(1e17)) // 0.1 MYST/h
	perGiB   = new(big.Int).Mul(big.NewInt(3), big.NewInt(1e17)) // 0.3 MYST/GiB
	fairRate = Price{PerHour: perHour, PerGiB: perGiB}
)

const mib = 1 << 20

type harness struct {
	t         testing.TB
	ev        *events
	hermes    *fakeHermes
	hashlocks *fakeHashlocks
	exchanges *fakeExchanges
	channel   *fakeChannel
	tracker   *InvoiceTracker
	payer     *InvoicePayer
	outbox    []*payments.Invoice
	// tamper, when set, rewrites an invoice before it reaches the consumer
	// (a dishonest provider re-signing with its own key).
	tamper  func(*payments.Invoice) *payments.Invoice
	settled []*big.Int // OnSettled totals
}

func newHarness(t testing.TB, edit func(*TrackerConfig, *PayerConfig)) *harness {
	t.Helper()
	h := &harness{t: t, ev: &events{}, hermes: newFakeHermes(t, 1e18), exchanges: &fakeExchanges{}, channel: newFakeChannel(1e18)}
	h.hashlocks = &fakeHashlocks{ev: h.ev}
	prov, cons := signer(t, 0x01), signer(t, 0x02)
	hermesID := h.hermes.operator.Address()
	tc := TrackerConfig{
		ChainID: chainID, Provider: prov, Consumer: cons.Address(), HermesID: hermesID,
		AgreementID: big.NewInt(424242), Price: fairRate, TransactorFee: big.NewInt(0), Start: t0,
		Interval: 10 * time.Second, Grace: 30 * time.Second, CheckEvery: time.Second,
		Hashlocks: h.hashlocks, Exchanges: h.exchanges, Hermes: h.hermes,
		Send: func(_ context.Context, inv *payments.Invoice) error {
			h.ev.add("send %x", inv.Hashlock[:4])
			h.outbox = append(h.outbox, inv)
			return nil
		},
		OnSettled: func(total *big.Int, _ *payments.Promise) { h.settled = append(h.settled, total) },
		Log:       slog.New(slog.DiscardHandler),
	}
	pc := PayerConfig{
		ChainID: chainID, Consumer: cons, Provider: prov.Address(), HermesID: hermesID,
		Channel: h.channel, Price: fairRate, MaxFee: big.NewInt(0), Tolerance: DefaultTolerance, Start: t0,
	}
	if edit != nil {
		edit(&tc, &pc)
	}
	var err error
	if h.tracker, err = NewInvoiceTracker(tc); err != nil {
		t.Fatal(err)
	}
	if h.payer, err = NewInvoicePayer(pc); err != nil {
		t.Fatal(err)
	}
	return h
}

// step ticks the tracker at now with bytes, then (if pay) lets the
// consumer pay every queued invoice as seen at consumerNow with
// consumerBytes. It returns the first error from either side.
func (h *harness) step(now time.Time, bytes uint64, pay bool, consumerNow time.Time, consumerBytes uint64) error {
	ctx := context.Background()
	if err := h.tracker.Tick(ctx, now, bytes); err != nil {
		return err
	}
	if !pay {
		return nil
	}
	queued := h.outbox
	h.outbox = nil
	for _, inv := range queued {
		if h.tamper != nil {
			inv = h.tamper(inv)
		}
		em, err := h.payer.HandleInvoice(ctx, consumerNow, consumerBytes, inv)
		if err != nil {
			return err
		}
		if em == nil {
			continue
		}
		if err := h.tracker.HandleExchange(ctx, now, em); err != nil {
			return err
		}
	}
	return nil
}

func TestPriceTotal(t *testing.T) {
	p := Price{PerHour: big.NewInt(3600), PerGiB: big.NewInt(1 << 30)}
	cases := []struct {
		elapsed time.Duration
		bytes   uint64
		want    int64
	}{
		{0, 0, 0},
		{time.Second, 0, 1},
		{time.Second - 1, 0, 0}, // floor
		{time.Hour, 1, 3601},
		{-time.Second, 5, 5},
		{90 * time.Minute, 1 << 30, 5400 + 1<<30},
	}
	for _, c := range cases {
		if got := p.Total(c.elapsed, c.bytes); got.Cmp(big.NewInt(c.want)) != 0 {
			t.Errorf("Total(%s, %d) = %s, want %d", c.elapsed, c.bytes, got, c.want)
		}
	}
	// Exact math with real prices: 0.1 MYST/h for 1 s and 0.3 MYST/GiB
	// for 1 MiB, each floored.
	got := fairRate.Total(time.Second, mib)
	want := new(big.Int).Add(
		new(big.Int).Quo(perHour, big.NewInt(3600)),
		new(big.Int).Quo(perGiB, big.NewInt(1024)))
	if got.Cmp(want) != 0 {
		t.Fatalf("Total = %s, want %s", got, want)
	}
	// Huge values do not overflow.
	huge := Price{PerHour: new(big.Int).Lsh(big.NewInt(1), 200), PerGiB: new(big.Int).Lsh(big.NewInt(1), 200)}
	if huge.Total(1<<62, 1<<63).Sign() <= 0 {
		t.Fatal("overflow")
	}
	if (Price{PerHour: big.NewInt(-1), PerGiB: big.NewInt(0)}).Validate() == nil {
		t.Fatal("negative price accepted")
	}
}

func TestFairSessionPaidExactly(t *testing.T) {
	h := newHarness(t, nil)
	var bytes uint64
	var now time.Time
	for i := 0; i <= 121; i++ {
		now = t0.Add(time.Duration(i) * time.Second)
		if i > 0 {
			bytes += 10 * mib
		}
		// The consumer sees the session start 150 ms later and counts 1%
		// fewer bytes: well within the tolerance.
		if err := h.step(now, bytes, true, now.Add(-150*time.Millisecond), bytes/100*99); err != nil {
			t.Fatalf("t=%ds: %v", i, err)
		}
	}
	want := fairRate.Total(now.Sub(t0), bytes)
	st := h.tracker.Stats()
	if st.Settled.Cmp(want) != 0 || st.Accepted.Cmp(want) != 0 || st.Invoiced.Cmp(want) != 0 {
		t.Fatalf("tracker stats %+v, want every total %s", st, want)
	}
	if paid := h.payer.Stats().Paid; paid.Cmp(want) != 0 {
		t.Fatalf("payer paid %s, want %s", paid, want)
	}
	if got := h.channel.promised(); got.Cmp(want) != 0 {
		t.Fatalf("channel promised %s, want exactly %s", got, want)
	}
	if got := h.hermes.providerTotal(); got.Cmp(want) != 0 {
		t.Fatalf("hermes promised provider %s, want %s", got, want)
	}
	if n := st.Invoices; n != 13 { // t=1, 11, ..., 121
		t.Fatalf("%d invoices, want 13", n)
	}
	if !st.UnpaidSince.IsZero() {
		t.Fatalf("unpaid since %s after a fully paid session", st.UnpaidSince)
	}
	if len(h.hermes.revealed) != st.Invoices {
		t.Fatalf("%d secrets revealed, want %d", len(h.hermes.revealed), st.Invoices)
	}
	if last := h.settled[len(h.settled)-1]; last.Cmp(want) != 0 {
		t.Fatalf("OnSettled last total %s, want %s", last, want)
	}
}

func TestHashlockStoredBeforeInvoiceSent(t *testing.T) {
	h := newHarness(t, nil)
	for i := 1; i <= 35; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		if err := h.step(now, uint64(i)*mib, true, now, uint64(i)*mib); err != nil {
			t.Fatal(err)
		}
	}
	log := h.ev.list()
	if len(log) != 8 { // 4 invoices: put, send each
		t.Fatalf("events %v, want 4 put/send pairs", log)
	}
	for i := 0; i < len(log); i += 2 {
		put, send := log[i], log[i+1]
		if !strings.HasPrefix(put, "put ") || !strings.HasPrefix(send, "send ") || put[4:] != send[5:] {
			t.Fatalf("events %v: each invoice's secret must be stored before it is sent", log)
		}
	}

	// A store that fails means no invoice leaves.
	h2 := newHarness(t, nil)
	h2.hashlocks.fail = errors.New("disk full")
	err := h2.step(t0.Add(5*time.Second), mib, true, t0.Add(5*time.Second), mib)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, want the store error", err)
	}
	if len(h2.outbox) != 0 || len(h2.ev.list()) != 0 || h2.tracker.Stats().Invoices != 0 {
		t.Fatalf("an invoice left without its secret stored: %v", h2.ev.list())
	}
}

func TestThresholdInvoicesEarly(t *testing.T) {
	h := newHarness(t, func(tc *TrackerConfig, _ *PayerConfig) {
		tc.Threshold = new(big.Int).Quo(perGiB, big.NewInt(10)) // 0.1 GiB worth
	})
	// 50 MiB/s: the threshold (~102 MiB of traffic) passes every ~2 s,
	// long before the 10 s interval.
	var bytes uint64
	for i := 1; i <= 20; i++ {
		bytes += 50 * mib
		now := t0.Add(time.Duration(i) * time.Second)
		if err := h.step(now, bytes, true, now, bytes); err != nil {
			t.Fatal(err)
		}
	}
	// The interval alone would give 2 invoices (t=1, 11); the threshold
	// passes about every 3 ticks.
	if n := h.tracker.Stats().Invoices; n < 6 {
		t.Fatalf("%d invoices in 20 s, want threshold invoicing (>= 6)", n)
	}
}

func TestConsumerStopsPaying(t *testing.T) {
	h := newHarness(t, nil)
	const rate = 20 * mib
	var bytes uint64
	var lastSettledAt time.Time
	var bytesAtLastSettled uint64
	var endErr error
	var now time.Time
	for i := 1; i <= 300; i++ {
		now = t0.Add(time.Duration(i) * time.Second)
		bytes += rate
		pay := i <= 40
		before := h.tracker.Stats().Settled
		endErr = h.step(now, bytes, pay, now, bytes)
		if h.tracker.Stats().Settled.Cmp(before) > 0 {
			lastSettledAt, bytesAtLastSettled = now, bytes
		}
		if endErr != nil {
			break
		}
	}
	if !errors.Is(endErr, ErrPaymentTimeout) {
		t.Fatalf("session ended with %v, want ErrPaymentTimeout", endErr)
	}
	cfg := h.tracker.cfg
	window := now.Sub(lastSettledAt)
	if max := cfg.Interval + cfg.Grace + cfg.CheckEvery; window > max {
		t.Fatalf("session ended %s after the last settled invoice, bound %s", window, max)
	}
	st := h.tracker.Stats()
	unpaid := new(big.Int).Sub(st.Owed, st.Settled)
	// The bound documented in docs/session.md (+2 wei: both totals are
	// floored).
	bound := cfg.Price.Total(cfg.Interval+cfg.Grace+cfg.CheckEvery, bytes-bytesAtLastSettled)
	bound.Add(bound, big.NewInt(2))
	if unpaid.Sign() <= 0 || unpaid.Cmp(bound) > 0 {
		t.Fatalf("unpaid %s wei, documented bound %s", unpaid, bound)
	}
	// And it did not end early: the first unpaid invoice got its grace.
	if waited := now.Sub(st.UnpaidSince); waited <= cfg.Grace {
		t.Fatalf("ended after %s of grace %s", waited, cfg.Grace)
	}
	if h.channel.promised().Cmp(st.Settled) != 0 {
		t.Fatalf("consumer promised %s, provider settled %s", h.channel.promised(), st.Settled)
	}
}

func TestUnpaidCapEndsSession(t *testing.T) {
	maxUnpaid := new(big.Int).Quo(perGiB, big.NewInt(2)) // 0.5 GiB worth
	h := newHarness(t, func(tc *TrackerConfig, _ *PayerConfig) {
		tc.MaxUnpaid = maxUnpaid
		tc.Threshold = new(big.Int).Quo(perGiB, big.NewInt(10))
	})
	const rate = 100 * mib // fast download: the cap, not the grace, ends it
	var bytes uint64
	var err error
	for i := 1; i <= 60 && err == nil; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		bytes += rate
		err = h.step(now, bytes, i <= 5, now, bytes)
	}
	if !errors.Is(err, ErrUnpaidLimit) {
		t.Fatalf("got %v, want ErrUnpaidLimit", err)
	}
	st := h.tracker.Stats()
	unpaid := new(big.Int).Sub(st.Owed, st.Settled)
	bound := new(big.Int).Add(maxUnpaid, fairRate.Total(time.Second, rate)) // cap + one check period
	bound.Add(bound, big.NewInt(2))
	if unpaid.Cmp(maxUnpaid) <= 0 || unpaid.Cmp(bound) > 0 {
		t.Fatalf("unpaid %s, want in (%s, %s]", unpaid, maxUnpaid, bound)
	}
}

func TestOverchargeRefused(t *testing.T) {
	prov := signer(t, 0x01)
	for _, c := range []struct {
		name    string
		factor  int64 // percent of the honest total
		refused bool
	}{
		{"within tolerance", 103, false},
		{"double", 200, true},
		{"ten percent", 110, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.tamper = func(inv *payments.Invoice) *payments.Invoice {
				bad := *inv
				bad.AgreementTotal = new(big.Int).Quo(new(big.Int).Mul(inv.AgreementTotal, big.NewInt(c.factor)), big.NewInt(100))
				if err := bad.Sign(prov); err != nil {
					t.Fatal(err)
				}
				return &bad
			}
			var err error
			var now time.Time
			var bytes uint64
			// 200 MiB a step: ten percent of it is more than the
			// tolerance's ByteSlack.
			for i := 1; i <= 30 && err == nil; i++ {
				now = t0.Add(time.Duration(i) * time.Second)
				bytes += 200 * mib
				err = h.step(now, bytes, true, now, bytes)
			}
			// The consumer's limit at the refusal; the allowance is
			// monotonic, so every earlier payment was within it too.
			allowed := DefaultTolerance.Allowed(fairRate, now.Sub(t0), bytes)
			if !c.refused {
				// The consumer pays within tolerance; the (honest) tracker
				// then refuses a total it never invoiced.
				if !errors.Is(err, ErrBadExchange) || h.payer.Stats().Invoices != 1 {
					t.Fatalf("got %v after %d paid, want the consumer to pay once within tolerance", err, h.payer.Stats().Invoices)
				}
				return
			}
			if !errors.Is(err, ErrOvercharge) {
				t.Fatalf("got %v, want ErrOvercharge", err)
			}
			if got := h.channel.promised(); got.Cmp(allowed) > 0 || got.Cmp(h.payer.Stats().Paid) != 0 {
				t.Fatalf("promised %s (paid %s), above the fair total with tolerance %s", got, h.payer.Stats().Paid, allowed)
			}
		})
	}
}

func TestHermesOutage(t *testing.T) {
	h := newHarness(t, nil)
	var bytes uint64
	var err error
	var now time.Time
	for i := 1; i <= 120 && err == nil; i++ {
		now = t0.Add(time.Duration(i) * time.Second)
		bytes += mib
		if i == 25 {
			h.hermes.setDown(true)
		}
		err = h.step(now, bytes, true, now, bytes)
	}
	// The consumer kept paying, but nothing settled: the session ends per
	// policy within the grace period.
	if !errors.Is(err, ErrPaymentTimeout) {
		t.Fatalf("got %v, want ErrPaymentTimeout", err)
	}
	st := h.tracker.Stats()
	if st.Accepted.Cmp(st.Settled) <= 0 {
		t.Fatalf("accepted %s, settled %s: want consumer payments awaiting the hermes", st.Accepted, st.Settled)
	}
	if h.exchanges.latest == nil || h.exchanges.latest.AgreementTotal.Cmp(st.Accepted) != 0 {
		t.Fatal("latest exchange message not stored durably")
	}
	ctx := context.Background()
	if err := h.tracker.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded while the hermes is down")
	}
	// The hermes returns while Settle retries: nothing is lost.
	time.AfterFunc(30*time.Millisecond, func() { h.hermes.setDown(false) })
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.tracker.Settle(sctx, 5*time.Millisecond); err != nil {
		t.Fatalf("settle after the hermes returned: %v", err)
	}
	st = h.tracker.Stats()
	if st.Settled.Cmp(st.Accepted) != 0 || h.hermes.providerTotal().Cmp(st.Accepted) != 0 {
		t.Fatalf("after recovery settled %s, hermes %s, want all %s accepted", st.Settled, h.hermes.providerTotal(), st.Accepted)
	}
	if h.channel.promised().Cmp(st.Settled) != 0 {
		t.Fatalf("consumer promised %s, provider settled %s", h.channel.promised(), st.Settled)
	}
}

func TestHermesRejectionEndsSession(t *testing.T) {
	h := newHarness(t, nil)
	h.hermes.reject = true
	err := h.step(t0.Add(time.Second), mib, true, t0.Add(time.Second), mib)
	if !errors.Is(err, ErrHermesRejected) {
		t.Fatalf("got %v, want ErrHermesRejected", err)
	}
}

func TestPermanentClassifier(t *testing.T) {
	errCode := errors.New("hermes: code insufficient_balance")
	h := newHarness(t, func(tc *TrackerConfig, _ *PayerConfig) {
		tc.Permanent = func(err error) bool { return errors.Is(err, errCode) }
	})
	h.tracker.cfg.Hermes = hermesFunc(func() error { return errCode })
	err := h.step(t0.Add(time.Second), mib, true, t0.Add(time.Second), mib)
	if !errors.Is(err, ErrHermesRejected) || !errors.Is(err, errCode) {
		t.Fatalf("got %v, want ErrHermesRejected wrapping the hermes error", err)
	}
	// An error the classifier calls transient is retried, not fatal.
	h2 := newHarness(t, func(tc *TrackerConfig, _ *PayerConfig) {
		tc.Permanent = func(err error) bool { return errors.Is(err, errCode) }
		tc.Log = slog.New(slog.DiscardHandler)
	})
	h2.tracker.cfg.Hermes = hermesFunc(func() error { return errHermesDown })
	if err := h2.step(t0.Add(time.Second), mib, true, t0.Add(time.Second), mib); err != nil {
		t.Fatalf("transient hermes error ended the session: %v", err)
	}
}

// hermesFunc is a Hermes whose every call fails with f().
type hermesFunc func() error

func (f hermesFunc) RequestPromise(context.Context, *payments.ExchangeMessage) (*payments.Promise, error) {
	return nil, f()
}

func (f hermesFunc) RevealR(context.Context, common.Address, [32]byte, [32]byte) error { return f() }

func TestResumeAfterRestart(t *testing.T) {
	h := newHarness(t, nil)
	h.hermes.setDown(true)
	for i := 1; i <= 12; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		if err := h.step(now, uint64(i)*mib, true, now, uint64(i)*mib); err != nil {
			t.Fatal(err)
		}
	}
	stored := h.exchanges.latest
	if stored == nil || h.hermes.providerTotal().Sign() != 0 {
		t.Fatal("want a stored, unforwarded exchange message")
	}
	r := h.hashlocks.secrets[stored.Promise.Hashlock]
	// The provider process restarts: a new tracker resumes from the stores.
	h.hermes.setDown(false)
	cfg := h.tracker.cfg
	cfg.Resume = &Resume{Exchange: stored, R: r}
	tr, err := NewInvoiceTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Tick(context.Background(), t0.Add(13*time.Second), 13*mib); err != nil {
		t.Fatal(err)
	}
	if got := h.hermes.providerTotal(); got.Cmp(stored.AgreementTotal) != 0 {
		t.Fatalf("hermes promised %s after resume, want %s", got, stored.AgreementTotal)
	}
	if !h.hermes.revealed[stored.Promise.Hashlock] {
		t.Fatal("secret not revealed after resume")
	}
	bad := cfg
	bad.Resume = &Resume{Exchange: stored, R: [32]byte{1}}
	if _, err := NewInvoiceTracker(bad); err == nil {
		t.Fatal("resume with the wrong secret accepted")
	}
}

func TestHermesOutageLoggedOnce(t *testing.T) {
	var buf strings.Builder
	h := newHarness(t, func(tc *TrackerConfig, _ *PayerConfig) {
		tc.Log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	for i := 1; i <= 25; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		h.hermes.setDown(i >= 2 && i < 20)
		if err := h.step(now, uint64(i)*mib, true, now, uint64(i)*mib); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Fatalf("%d warnings for one outage, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "hermes reachable again"); n != 1 {
		t.Fatalf("recovery logged %d times, want 1:\n%s", n, out)
	}
	st := h.tracker.Stats()
	if st.Settled.Cmp(st.Accepted) != 0 {
		t.Fatalf("settled %s, accepted %s after recovery", st.Settled, st.Accepted)
	}
}

func TestNoInvoiceBelowTransactorFee(t *testing.T) {
	fee := big.NewInt(50)
	cheap := Price{PerHour: big.NewInt(3600), PerGiB: big.NewInt(0)} // 1 wei per second
	h := newHarness(t, func(tc *TrackerConfig, pc *PayerConfig) {
		tc.Price, pc.Price = cheap, cheap
		tc.TransactorFee, pc.MaxFee = fee, fee
	})
	for i := 1; i <= 60; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		if err := h.step(now, 0, true, now, 0); err != nil {
			t.Fatalf("t=%ds: %v", i, err)
		}
		st := h.tracker.Stats()
		if i < 50 && st.Invoices != 0 {
			t.Fatalf("invoice for %s wei, below the %s fee", st.Invoiced, fee)
		}
	}
	st := h.tracker.Stats()
	if st.Invoices == 0 || st.Settled.Cmp(fee) < 0 {
		t.Fatalf("stats %+v: want invoices once the total covers the fee", st)
	}
}

// TestInvoicesCarryUsage checks that a tracker given its proposal's
// sequence number sends v2 invoices whose total is exactly the agreed
// price for the Usage they sign (so an honest invoice can never be taken
// for an overcharge), and that the payer hands a refused invoice back.
func TestInvoicesCarryUsage(t *testing.T) {
	h := newHarness(t, func(tc *TrackerConfig, _ *PayerConfig) {
		tc.ProposalSeq = 7
		tc.Threshold = big.NewInt(1e15)
		tc.Grace = time.Hour
	})
	var sent []*payments.Invoice
	var bytes uint64
	for i := 1; i <= 40; i++ {
		now := t0.Add(time.Duration(i)*time.Second + time.Duration(i)*1234567) // odd sub-millisecond times
		bytes += 7*mib + 13
		h.outbox = nil
		if err := h.step(now, bytes, false, now, bytes); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, h.outbox...)
	}
	if len(sent) < 5 {
		t.Fatalf("%d invoices, want several", len(sent))
	}
	for _, inv := range sent {
		u := inv.Usage
		if u == nil || u.ProposalSeq != 7 {
			t.Fatalf("invoice usage %+v, want proposal seq 7", u)
		}
		if want := payments.PriceTotal(perHour, perGiB, u.Elapsed(), u.Bytes); inv.AgreementTotal.Cmp(want) != 0 {
			t.Fatalf("invoice total %s for usage %+v, price gives %s", inv.AgreementTotal, *u, want)
		}
		if err := inv.Verify(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOverchargeErrorCarriesInvoice(t *testing.T) {
	prov := signer(t, 0x01)
	h := newHarness(t, func(tc *TrackerConfig, _ *PayerConfig) { tc.ProposalSeq = 3 })
	h.tamper = func(inv *payments.Invoice) *payments.Invoice {
		bad := *inv
		bad.AgreementTotal = new(big.Int).Mul(inv.AgreementTotal, big.NewInt(2))
		if err := bad.Sign(prov); err != nil {
			t.Fatal(err)
		}
		return &bad
	}
	var err error
	var bytes uint64
	for i := 1; i <= 30 && err == nil; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		bytes += 10 * mib
		err = h.step(now, bytes, true, now, bytes)
	}
	var oe *OverchargeError
	if !errors.As(err, &oe) || !errors.Is(err, ErrOvercharge) {
		t.Fatalf("got %v, want an OverchargeError wrapping ErrOvercharge", err)
	}
	if oe.Invoice == nil || oe.Invoice.Usage == nil || oe.Invoice.Verify() != nil {
		t.Fatalf("refused invoice %+v is not the signed v2 invoice", oe.Invoice)
	}
}

// TestBytesInFlightAccepted: early in a download the provider has sent
// (and invoices) far more than has reached the consumer. The first
// invoice of a session 1 s in, for 1 MiB of which the consumer has
// received 0.5 MiB, is fair and must be paid (it was refused as an
// overcharge, ending the session mid-download, before ByteSlack:
// TestNATLabPaidSession's truncated downloads over relayed paths); a
// total above what ByteSlack allows is still refused.
func TestBytesInFlightAccepted(t *testing.T) {
	h := newHarness(t, nil)
	now := t0.Add(time.Second)
	if err := h.step(now, mib, true, now, mib/2); err != nil {
		t.Fatalf("the first invoice with 0.5 MiB in flight: %v", err)
	}
	if h.payer.Stats().Invoices != 1 {
		t.Fatalf("paid %d invoices, want 1", h.payer.Stats().Invoices)
	}

	h = newHarness(t, nil)
	if err := h.step(now, 16*mib, true, now, 0); !errors.Is(err, ErrOvercharge) {
		t.Fatalf("16 MiB invoiced, none received: %v, want ErrOvercharge", err)
	}
}
