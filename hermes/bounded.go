package hermes

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultMaxTracked is the default of Config.MaxTracked.
const DefaultMaxTracked = 1 << 16

// stateCache keeps per-identity in-memory state (a consumer's or a
// provider's cached store rows and its lock) for a bounded number of
// identities. An entry is pinned while a request uses it (acquire until
// release), so two requests for one identity always share one entry and
// its lock; unpinned entries wait in an LRU of at most max entries and the
// least recently used is forgotten first (its state is reloaded from the
// store when it is next needed). The total is at most max plus the number
// of requests in flight.
type stateCache[V any] struct {
	mu    sync.Mutex
	inUse map[common.Address]*pinned[V]
	idle  *simplelru.LRU[common.Address, *V]
}

type pinned[V any] struct {
	v    *V
	refs int
}

func newStateCache[V any](max int) *stateCache[V] {
	idle, err := simplelru.NewLRU[common.Address, *V](max, nil)
	if err != nil { // only for max <= 0, which New excludes
		panic(err)
	}
	return &stateCache[V]{inUse: make(map[common.Address]*pinned[V]), idle: idle}
}

// acquire returns id's entry, pinned until the matching release.
func (c *stateCache[V]) acquire(id common.Address) *V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.inUse[id]; ok {
		p.refs++
		return p.v
	}
	v, ok := c.idle.Peek(id)
	if ok {
		c.idle.Remove(id)
	} else {
		v = new(V)
	}
	c.inUse[id] = &pinned[V]{v: v, refs: 1}
	return v
}

// release unpins id's entry; the last release moves it to the LRU.
func (c *stateCache[V]) release(id common.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.inUse[id]
	if !ok {
		panic("hermes: stateCache.release without acquire")
	}
	if p.refs--; p.refs == 0 {
		delete(c.inUse, id)
		c.idle.Add(id, p.v)
	}
}

// len is the number of identities held (pinned and idle).
func (c *stateCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inUse) + c.idle.Len()
}
