package hermes

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/hermes/store/storetest"
)

// gatedFetch is a fetch that records its batches and holds each until
// the test sends on gate (or closes it).
type gatedFetch struct {
	mu      sync.Mutex
	batches [][]int
	gate    chan struct{}
	err     error
}

func (g *gatedFetch) fetch(ctx context.Context, keys []int) ([]string, error) {
	g.mu.Lock()
	g.batches = append(g.batches, slices.Clone(keys))
	g.mu.Unlock()
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if g.err != nil {
		return nil, g.err
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprint("v", k)
	}
	return out, nil
}

func (g *gatedFetch) seen() [][]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.batches)
}

// queued is how many distinct keys wait in batches not started yet.
func (c *coalescer[K, V]) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// waiters is how many callers wait for batches not started yet.
func (c *coalescer[K, V]) waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, b := range c.queue {
		for _, w := range b.waiting {
			n += w
		}
	}
	return n
}

// eventually polls cond until it holds (or fails the test after 10 s).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestCoalescerBatches: loads asked for while a fetch runs go together
// into the next fetches, at most maxBatch keys each, every key once
// (callers of one key share it), and each caller gets its key's value.
func TestCoalescerBatches(t *testing.T) {
	g := &gatedFetch{gate: make(chan struct{})}
	c := newCoalescer(10, 1, g.fetch)
	defer c.close()
	type res struct {
		k   int
		v   string
		err error
	}
	results := make(chan res, 100)
	load := func(k int) {
		v, err := c.load(context.Background(), k)
		results <- res{k, v, err}
	}
	go load(-1) // starts the first fetch, which holds
	eventually(t, "the first fetch", func() bool { return len(g.seen()) == 1 })
	for i := range 50 {
		go load(i % 25) // 25 keys, each twice
	}
	eventually(t, "50 queued callers", func() bool { return c.waiters() == 50 })
	if q := c.queued(); q != 25 {
		t.Fatalf("%d keys queued for 50 callers of 25 keys", q)
	}
	close(g.gate)
	for range 51 {
		r := <-results
		if r.err != nil || r.v != fmt.Sprint("v", r.k) {
			t.Fatalf("load(%d) = %q, %v", r.k, r.v, r.err)
		}
	}
	batches := g.seen()
	if len(batches) != 4 { // [-1], then 25 keys in batches of at most 10
		t.Fatalf("%d fetches %v, want 4", len(batches), batches)
	}
	seen := map[int]bool{}
	for _, b := range batches[1:] {
		if len(b) > 10 {
			t.Fatalf("batch of %d keys, bound 10", len(b))
		}
		for _, k := range b {
			if seen[k] {
				t.Fatalf("key %d fetched twice: %v", k, batches)
			}
			seen[k] = true
		}
	}
	if c.started() != 4 {
		t.Fatalf("started() = %d", c.started())
	}
}

// TestCoalescerErrorsReachEveryCaller: a failed fetch fails every caller
// of its batch, and the next load fetches again.
func TestCoalescerErrorsReachEveryCaller(t *testing.T) {
	boom := errors.New("boom")
	g := &gatedFetch{gate: make(chan struct{}), err: boom}
	c := newCoalescer(100, 1, g.fetch)
	defer c.close()
	errs := make(chan error, 10)
	go func() { _, err := c.load(context.Background(), 0); errs <- err }()
	eventually(t, "the first fetch", func() bool { return len(g.seen()) == 1 })
	for i := range 9 {
		go func() { _, err := c.load(context.Background(), 1+i%3); errs <- err }()
	}
	eventually(t, "9 queued callers", func() bool { return c.waiters() == 9 })
	close(g.gate)
	for range 10 {
		if err := <-errs; !errors.Is(err, boom) {
			t.Fatalf("caller got %v, want %v", err, boom)
		}
	}
	g.mu.Lock()
	g.err = nil
	g.mu.Unlock()
	if v, err := c.load(context.Background(), 7); err != nil || v != "v7" {
		t.Fatalf("load after a failure: %q, %v", v, err)
	}
}

// TestCoalescerCancel: a caller whose context ends returns at once; a key
// nobody waits for any more is not fetched.
func TestCoalescerCancel(t *testing.T) {
	g := &gatedFetch{gate: make(chan struct{})}
	c := newCoalescer(100, 1, g.fetch)
	defer c.close()
	go func() { _, _ = c.load(context.Background(), 0) }()
	eventually(t, "the first fetch", func() bool { return len(g.seen()) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 2)
	for range 2 { // two callers of key 1, both give up
		go func() { _, err := c.load(ctx, 1); cancelled <- err }()
	}
	kept := make(chan error, 1)
	go func() { _, err := c.load(context.Background(), 2); kept <- err }()
	eventually(t, "3 queued callers", func() bool { return c.waiters() == 3 })
	cancel()
	for range 2 {
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller got %v", err)
		}
	}
	eventually(t, "key 1 dropped", func() bool { return c.queued() == 1 })
	close(g.gate)
	if err := <-kept; err != nil {
		t.Fatal(err)
	}
	if b := g.seen(); len(b) != 2 || !slices.Equal(b[1], []int{2}) {
		t.Fatalf("fetches %v, want [[0] [2]]", b)
	}
}

// TestCoalescerClose: close fails queued callers, cancels the running
// fetch and waits for it; later loads fail. (TestMain's goleak check
// finds a fetch goroutine left behind.)
func TestCoalescerClose(t *testing.T) {
	g := &gatedFetch{gate: make(chan struct{})} // never opened: only ctx ends the fetch
	c := newCoalescer(100, 1, g.fetch)
	errs := make(chan error, 2)
	go func() { _, err := c.load(context.Background(), 0); errs <- err }()
	eventually(t, "the first fetch", func() bool { return len(g.seen()) == 1 })
	go func() { _, err := c.load(context.Background(), 1); errs <- err }()
	eventually(t, "a queued key", func() bool { return c.queued() == 1 })
	c.close()
	got := []error{<-errs, <-errs}
	if !slices.ContainsFunc(got, func(err error) bool { return errors.Is(err, context.Canceled) }) ||
		!slices.ContainsFunc(got, func(err error) bool { return errors.Is(err, errLoadsClosed) }) {
		t.Fatalf("after close: %v, want the running fetch cancelled and the queued one closed", got)
	}
	if _, err := c.load(context.Background(), 2); !errors.Is(err, errLoadsClosed) {
		t.Fatalf("load after close: %v", err)
	}
	if n := len(g.seen()); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

// countingStore counts the statements that load consumers' state and
// holds each until gate is closed.
type countingStore struct {
	store.Store
	bl   store.BatchLoader
	gate chan struct{}

	mu      sync.Mutex
	loads   int // consumer state statements
	waiting int // consumers whose load is held at the gate
}

func (c *countingStore) enter(n int) {
	c.mu.Lock()
	c.loads++
	c.waiting += n
	c.mu.Unlock()
	<-c.gate
}

func (c *countingStore) counts() (loads, waiting int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads, c.waiting
}

func (c *countingStore) Consumer(ctx context.Context, id common.Address) (store.Consumer, []store.Agreement, error) {
	c.enter(1)
	return c.Store.Consumer(ctx, id)
}

func (c *countingStore) LoadConsumers(ctx context.Context, ids []common.Address) ([]store.ConsumerState, error) {
	c.enter(len(ids))
	return c.bl.LoadConsumers(ctx, ids)
}

func (c *countingStore) LoadProviders(ctx context.Context, ids []common.Address) ([]store.Provider, error) {
	return c.bl.LoadProviders(ctx, ids)
}

// TestFirstMessagesShareStateLoads: N consumers' concurrent first
// messages load their state with fewer than N statements (one per
// batch); before, each first message ran its own.
func TestFirstMessagesShareStateLoads(t *testing.T) {
	const n = 40
	sq, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hermes.db"))
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: sq, bl: sq.(store.BatchLoader), gate: make(chan struct{})}
	e := newEnvStore(t, cs, newFakeChain(testHermes), nil)
	prov := testSigner("provider").Address()
	errs := make(chan error, n)
	for i := range n {
		c := testSigner(fmt.Sprint("first message ", i))
		e.chain.register(c.Address(), 10_000)
		m := msg(t, c, prov, 1, 100, 100, secret(fmt.Sprint(i)))
		go func() { _, err := e.svc.Exchange(context.Background(), m); errs <- err }()
	}
	// Every consumer's load is asked for: held in the store or queued.
	eventually(t, "every consumer's load", func() bool {
		_, w := cs.counts()
		if e.svc.consumerLoads != nil {
			w += e.svc.consumerLoads.queued()
		}
		return w == n
	})
	close(cs.gate)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	loads, _ := cs.counts()
	// stateLoadFetches single loads started before the others queued,
	// then one statement for the rest.
	if want := stateLoadFetches + 1; loads > want {
		t.Fatalf("%d first messages loaded their state with %d statements, want at most %d", n, loads, want)
	}
	if got := storetest.Exchanges(t, sq); got != n {
		t.Fatalf("%d exchanges stored, want %d", got, n)
	}
}
