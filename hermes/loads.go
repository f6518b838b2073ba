package hermes

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// errLoadsClosed is the error of a state load asked for or queued after
// the loads stopped (Run returned).
var errLoadsClosed = errors.New("hermes: state loads stopped")

// coalescer loads values for keys in batches, one fetch call per batch
// (for PostgreSQL, one statement for many identities' state instead of
// one each: the group commit's idea for reads). A load that finds fewer
// than maxInflight fetches running starts its batch at once (a quiet
// hermes never waits); otherwise it joins the next batch, which starts
// when a running fetch ends. A batch holds at most maxBatch keys and
// each key once: callers loading the same key share its load. A batch
// never includes a caller that arrived after its fetch started, so every
// caller's value is read after its call began (the state is as fresh as
// a load of its own would be).
type coalescer[K comparable, V any] struct {
	fetch       func(ctx context.Context, keys []K) ([]V, error)
	maxBatch    int
	maxInflight int
	// ctx is the fetches' context, cancelled by close (a fetch serves
	// several callers, so no caller's context can stop it).
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // running fetches

	mu       sync.Mutex
	closed   bool
	inflight int
	queue    []*loadBatch[K, V] // not started, oldest first
	pending  map[K]*loadBatch[K, V]
	fetches  int // fetch calls started (tests, diagnostics)
}

type loadBatch[K comparable, V any] struct {
	keys []K
	// waiting counts the callers waiting for each key, until the batch
	// starts: a key nobody waits for any more is dropped from it.
	waiting map[K]int
	done    chan struct{} // closed when vals or err is set
	vals    map[K]V
	err     error
}

func newCoalescer[K comparable, V any](maxBatch, maxInflight int, fetch func(ctx context.Context, keys []K) ([]V, error)) *coalescer[K, V] {
	ctx, cancel := context.WithCancel(context.Background())
	return &coalescer[K, V]{fetch: fetch, maxBatch: max(1, maxBatch), maxInflight: max(1, maxInflight),
		ctx: ctx, cancel: cancel, pending: make(map[K]*loadBatch[K, V])}
}

// load returns k's value from a batch fetch that starts after this call
// began. It returns early with ctx's error when ctx ends first, and
// errLoadsClosed after close.
func (c *coalescer[K, V]) load(ctx context.Context, k K) (V, error) {
	var zero V
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return zero, errLoadsClosed
	}
	b := c.pending[k]
	if b == nil {
		if n := len(c.queue); n > 0 && len(c.queue[n-1].keys) < c.maxBatch {
			b = c.queue[n-1]
		} else {
			b = &loadBatch[K, V]{waiting: make(map[K]int), done: make(chan struct{})}
			c.queue = append(c.queue, b)
		}
		b.keys = append(b.keys, k)
		c.pending[k] = b
	}
	b.waiting[k]++
	c.startLocked()
	c.mu.Unlock()
	select {
	case <-b.done:
		if b.err != nil {
			return zero, b.err
		}
		return b.vals[k], nil
	case <-ctx.Done():
		c.leave(b, k)
		return zero, ctx.Err()
	}
}

// leave drops a caller of k that stopped waiting; when b has not started
// and nobody else waits for k, k leaves b (and b the queue when empty).
func (c *coalescer[K, V]) leave(b *loadBatch[K, V], k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[k] != b {
		return // started (or closed): the fetch runs anyway
	}
	if b.waiting[k]--; b.waiting[k] > 0 {
		return
	}
	delete(b.waiting, k)
	delete(c.pending, k)
	for i, x := range b.keys {
		if x == k {
			b.keys = append(b.keys[:i], b.keys[i+1:]...)
			break
		}
	}
	if len(b.keys) == 0 {
		for i, x := range c.queue {
			if x == b {
				c.queue = append(c.queue[:i], c.queue[i+1:]...)
				break
			}
		}
	}
}

// startLocked starts queued batches while fewer than maxInflight fetches
// run. Caller holds mu.
func (c *coalescer[K, V]) startLocked() {
	for !c.closed && c.inflight < c.maxInflight && len(c.queue) > 0 {
		b := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		for _, k := range b.keys {
			delete(c.pending, k)
		}
		c.inflight++
		c.fetches++
		c.wg.Add(1)
		go c.run(b)
	}
}

// run fetches b, answers its callers and starts the next batch.
func (c *coalescer[K, V]) run(b *loadBatch[K, V]) {
	defer c.wg.Done()
	vals, err := c.fetch(c.ctx, b.keys)
	if err == nil && len(vals) != len(b.keys) {
		err = fmt.Errorf("hermes: %d values loaded for %d keys", len(vals), len(b.keys))
	}
	if err == nil {
		b.vals = make(map[K]V, len(b.keys))
		for i, k := range b.keys {
			b.vals[k] = vals[i]
		}
	}
	b.err = err
	close(b.done)
	c.mu.Lock()
	c.inflight--
	c.startLocked()
	c.mu.Unlock()
}

// close fails the queued batches with errLoadsClosed, cancels the running
// fetches and waits for them to end. Later loads fail at once.
func (c *coalescer[K, V]) close() {
	c.mu.Lock()
	c.closed = true
	queue := c.queue
	c.queue, c.pending = nil, make(map[K]*loadBatch[K, V])
	c.mu.Unlock()
	for _, b := range queue {
		b.err = errLoadsClosed
		close(b.done)
	}
	c.cancel()
	c.wg.Wait()
}

// started is how many fetches have started.
func (c *coalescer[K, V]) started() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}
