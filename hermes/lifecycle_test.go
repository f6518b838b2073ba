package hermes

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/payments"
)

// TestSettlementWorkerRuns: the worker owned by Run settles on its own.
func TestSettlementWorkerRuns(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SettleInterval = 20 * time.Millisecond })
	ctx := context.Background()
	c, prov := parties(e.chain)
	r := secret("1")
	if _, err := e.svc.Exchange(ctx, msg(t, c, prov, 1, 100, 100, r)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Reveal(ctx, prov, payments.Hashlock(r), r); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.chain.mu.Lock()
		n := len(e.chain.settles)
		e.chain.mu.Unlock()
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("%d settlements", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Later passes find nothing new to settle.
	time.Sleep(100 * time.Millisecond)
	e.chain.mu.Lock()
	defer e.chain.mu.Unlock()
	if len(e.chain.settles) != 1 {
		t.Fatalf("settled %d times", len(e.chain.settles))
	}
}

// TestExchangeAfterShutdown: once Run has returned, Exchange fails fast
// with a retryable code and stores nothing.
func TestExchangeAfterShutdown(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	chain := newFakeChain(testHermes)
	svc, err := New(Config{ChainID: testChainID, HermesID: testHermes, Operator: testSigner("operator"), Metrics: NewMetrics(prometheus.NewRegistry())}, st, chain)
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(svc)
	c := testSigner("c")
	chain.register(c.Address(), 1000)
	if _, err := svc.Exchange(context.Background(), msg(t, c, testSigner("p").Address(), 1, 10, 10, secret("a"))); err != nil {
		t.Fatal(err)
	}
	stop()
	done := make(chan error, 1)
	go func() {
		_, err := svc.Exchange(context.Background(), msg(t, c, testSigner("p").Address(), 1, 20, 20, secret("b")))
		done <- err
	}()
	select {
	case err := <-done:
		if CodeOf(err) != CodeUnavailable {
			t.Fatalf("after shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Exchange hung after shutdown")
	}
	if s, _ := st.Stats(context.Background()); s.Exchanges != 1 {
		t.Fatalf("%d exchanges stored", s.Exchanges)
	}
	if err := svc.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

// TestSettleRacesAreHarmless: settlement passes of one hermes run one at a
// time (the worker and an explicit SettleOnce used to send the same
// promise twice, and the second reverted with NothingToSettle), and a
// promise settled on chain by someone else between the hermes' read and
// its transaction (another hermes process on the same database) is
// reconciled, not reported as a failure.
func TestSettleRacesAreHarmless(t *testing.T) {
	setup := func(t *testing.T) (*env, *payments.ExchangeMessage, []byte) {
		e := newEnv(t, nil)
		c, prov := parties(e.chain)
		r := secret("1")
		m := msg(t, c, prov, 1, 100, 100, r)
		if _, err := e.svc.Exchange(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Reveal(context.Background(), prov, payments.Hashlock(r), r); err != nil {
			t.Fatal(err)
		}
		return e, m, r
	}
	t.Run("concurrent passes in one hermes", func(t *testing.T) {
		e, _, _ := setup(t)
		// Widen the window between a pass's reads and its transaction.
		e.chain.beforeSettle = func(common.Address, payments.Promise, []byte) { time.Sleep(20 * time.Millisecond) }
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.svc.SettleOnce(context.Background()); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent settlement pass: %v", err)
		}
		e.chain.mu.Lock()
		defer e.chain.mu.Unlock()
		if e.chain.settleCalls != 1 || len(e.chain.settles) != 1 {
			t.Fatalf("%d settlement transactions sent, %d settled; want exactly one", e.chain.settleCalls, len(e.chain.settles))
		}
	})
	t.Run("settled by someone else meanwhile", func(t *testing.T) {
		e, m, r := setup(t)
		c := testSigner("c").Address()
		e.chain.beforeSettle = func(common.Address, payments.Promise, []byte) {
			e.chain.mu.Lock()
			e.chain.beforeSettle = nil // only once: the next call is the other settler's
			e.chain.mu.Unlock()
			if _, err := e.chain.SettleConsumerPromise(context.Background(), c, m.Promise, r); err != nil {
				t.Errorf("the other settler: %v", err)
			}
		}
		n, err := e.svc.SettleOnce(context.Background())
		if err != nil || n != 0 {
			t.Fatalf("SettleOnce after someone else settled: %d, %v; want 0 and no error", n, err)
		}
		cs, _, err := e.st.Consumer(context.Background(), c)
		if err != nil || cs.Settled.Int64() != 100 {
			t.Fatalf("stored settled %v %v, want 100 from the chain", cs.Settled, err)
		}
		if n, err := e.svc.SettleOnce(context.Background()); err != nil || n != 0 {
			t.Fatalf("next pass: %d %v, want nothing to do", n, err)
		}
	})
}

// TestSettlementLeaseAcrossProcesses: two hermes services sharing one
// database (as two `myst hermes` processes on one PostgreSQL do) settle one
// at a time: while one holds the settlement lease the other sends nothing,
// and it takes over when the holder stops or its lease runs out.
func TestSettlementLeaseAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hermes.db")
	open := func() store.Store {
		st, err := store.OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	chain := newFakeChain(testHermes)
	var now atomic.Int64
	now.Store(time.Unix(1_800_000_000, 0).UnixNano())
	clock := func(c *Config) {
		c.clock = func() time.Time { return time.Unix(0, now.Load()) }
		c.SettleLeaseTTL = time.Minute
	}
	a := newEnvStore(t, open(), chain, clock)
	b := newEnvStore(t, open(), chain, clock)

	prov := testSigner("p").Address()
	settleable := func(label string) {
		t.Helper()
		c := testSigner("c " + label)
		chain.register(c.Address(), 1000)
		r := secret(label)
		if _, err := a.svc.Exchange(ctx, msg(t, c, prov, 1, 100, 100, r)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.svc.Reveal(ctx, prov, payments.Hashlock(r), r); err != nil {
			t.Fatal(err)
		}
	}
	calls := func() int {
		chain.mu.Lock()
		defer chain.mu.Unlock()
		return chain.settleCalls
	}

	settleable("1")
	// Both passes read the consumer before either sends: without the lease
	// both would send a transaction.
	chain.beforeSettle = func(common.Address, payments.Promise, []byte) { time.Sleep(50 * time.Millisecond) }
	var wg sync.WaitGroup
	sent := make([]int, 2)
	for i, e := range []*env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := e.svc.SettleOnce(ctx)
			if err != nil {
				t.Errorf("pass %d: %v", i, err)
			}
			sent[i] = n
		}()
	}
	wg.Wait()
	if calls() != 1 || sent[0]+sent[1] != 1 {
		t.Fatalf("%d settlement transactions sent (passes reported %v); want exactly one", calls(), sent)
	}
	holder, other := a, b
	if sent[1] == 1 {
		holder, other = b, a
	}

	// The holder keeps the lease: the other sends nothing for new work.
	settleable("2")
	if n, err := other.svc.SettleOnce(ctx); err != nil || n != 0 {
		t.Fatalf("non-holder pass: %d %v; want 0 while the lease is held", n, err)
	}
	if calls() != 1 {
		t.Fatalf("non-holder sent a transaction")
	}
	// Until the holder's lease runs out (it paused, or died without
	// releasing): then the other takes over.
	now.Add(int64(61 * time.Second))
	if n, err := other.svc.SettleOnce(ctx); err != nil || n != 1 {
		t.Fatalf("takeover pass: %d %v; want the pending settlement sent", n, err)
	}
	// The old holder, back from its pause, no longer sends.
	settleable("3")
	if n, err := holder.svc.SettleOnce(ctx); err != nil || n != 0 {
		t.Fatalf("old holder pass: %d %v; want 0 after losing the lease", n, err)
	}
	if calls() != 2 {
		t.Fatalf("%d settlement transactions, want 2", calls())
	}
	// A holder that stops hands the lease over at once.
	other.stop()
	if n, err := holder.svc.SettleOnce(ctx); err != nil || n != 1 {
		t.Fatalf("pass after the holder stopped: %d %v; want the pending settlement sent", n, err)
	}
}
