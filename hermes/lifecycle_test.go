package hermes

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/payments"
)

// TestSettlementWorkerRuns: the worker owned by Run settles on its own.
func TestSettlementWorkerRuns(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SettleInterval = 20 * time.Millisecond })
	ctx := context.Background()
	c := testSigner("c")
	e.chain.register(c.Address(), 1000)
	prov := testSigner("p").Address()
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
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	c := testSigner("c")
	chain.register(c.Address(), 1000)
	if _, err := svc.Exchange(context.Background(), msg(t, c, testSigner("p").Address(), 1, 10, 10, secret("a"))); err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
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
