package discovery

import (
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/market"
)

// Cache holds the newest valid announcement of each provider until it
// expires. Withdrawals are kept as tombstones until their own expiry so an
// older proposal cannot come back. It is safe for concurrent use.
type Cache struct {
	now     func() time.Time
	limit   int
	blocked func(common.Address) bool    // hidden providers (nil: none)
	quality func(common.Address) float64 // score for market.SortQuality (nil: price order)

	mu      sync.RWMutex
	entries map[common.Address]*cacheEntry
}

type cacheEntry struct {
	ann Announcement
	raw []byte // the announcement as received, served to syncing peers
}

// NewCache returns an empty cache using now as its clock (nil: time.Now).
func NewCache(now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{now: now, limit: MaxCacheEntries, entries: make(map[common.Address]*cacheEntry)}
}

// MaxCacheEntries bounds the providers a cache holds (tombstones
// included); when full, proposals of new providers are refused until
// entries expire, so a flood of fresh identities cannot exhaust memory.
const MaxCacheEntries = 50000

// Put stores a validated announcement (raw is its wire form) if its
// sequence number is newer than the provider's cached one and it has not
// expired. It reports whether the cache changed.
func (c *Cache) Put(a Announcement, raw []byte) bool {
	p := &a.Proposal.Proposal
	if c.now().Unix() >= p.ExpiresAt {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[p.ProviderID]
	if ok && e.ann.Proposal.Proposal.Seq >= p.Seq {
		return false
	}
	if !ok && len(c.entries) >= c.limit {
		c.pruneLocked()
		if len(c.entries) >= c.limit {
			return false
		}
	}
	c.entries[p.ProviderID] = &cacheEntry{ann: a, raw: append([]byte(nil), raw...)}
	return true
}

// held returns the newest unexpired signed proposal held for provider,
// withdrawals included.
func (c *Cache) held(provider common.Address) (market.SignedProposal, bool) {
	now := c.now().Unix()
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[provider]
	if !ok || now >= e.ann.Proposal.Proposal.ExpiresAt {
		return market.SignedProposal{}, false
	}
	return e.ann.Proposal, true
}

// hidden reports whether provider is blacklisted.
func (c *Cache) hidden(provider common.Address) bool {
	return c.blocked != nil && c.blocked(provider)
}

// Seq returns the newest sequence number held for provider, including a
// withdrawal's, while it has not expired.
func (c *Cache) Seq(provider common.Address) (uint64, bool) {
	now := c.now().Unix()
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[provider]
	if !ok || now >= e.ann.Proposal.Proposal.ExpiresAt {
		return 0, false
	}
	return e.ann.Proposal.Proposal.Seq, true
}

// Get returns the live (unexpired, not withdrawn) proposal of provider.
func (c *Cache) Get(provider common.Address) (market.Proposal, bool) {
	now := c.now().Unix()
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[provider]
	if !ok || e.ann.Proposal.Proposal.Withdrawn || now >= e.ann.Proposal.Proposal.ExpiresAt || c.hidden(provider) {
		return market.Proposal{}, false
	}
	return e.ann.Proposal.Proposal, true
}

// Announcement returns the full live announcement of provider (with its
// binding and signature), e.g. to start a session.
func (c *Cache) Announcement(provider common.Address) (Announcement, bool) {
	now := c.now().Unix()
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[provider]
	if !ok || e.ann.Proposal.Proposal.Withdrawn || now >= e.ann.Proposal.Proposal.ExpiresAt || c.hidden(provider) {
		return Announcement{}, false
	}
	return e.ann, true
}

// Query returns the live proposals matching f in f's order. It also drops
// expired entries.
func (c *Cache) Query(f market.Filter) []market.Proposal {
	c.prune()
	c.mu.RLock()
	ps := make([]market.Proposal, 0, len(c.entries))
	for id, e := range c.entries {
		if !c.hidden(id) {
			ps = append(ps, e.ann.Proposal.Proposal)
		}
	}
	c.mu.RUnlock()
	out := f.Apply(ps)
	if f.Sort == market.SortQuality {
		market.Sort(out, market.SortPrice) // price breaks ties between equal scores
	}
	if f.Sort == market.SortQuality && c.quality != nil {
		score := make(map[common.Address]float64, len(out))
		for _, p := range out {
			score[p.ProviderID] = c.quality(p.ProviderID)
		}
		sort.SliceStable(out, func(i, j int) bool { return score[out[i].ProviderID] > score[out[j].ProviderID] })
	}
	return out
}

// Len is the number of live proposals.
func (c *Cache) Len() int {
	now := c.now().Unix()
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for id, e := range c.entries {
		if !e.ann.Proposal.Proposal.Withdrawn && now < e.ann.Proposal.Proposal.ExpiresAt && !c.hidden(id) {
			n++
		}
	}
	return n
}

// prune drops expired entries, tombstones included.
func (c *Cache) prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pruneLocked()
}

func (c *Cache) pruneLocked() {
	now := c.now().Unix()
	for id, e := range c.entries {
		if now >= e.ann.Proposal.Proposal.ExpiresAt {
			delete(c.entries, id)
		}
	}
}

// raws returns up to limit unexpired announcements (withdrawals included)
// in wire form, for a syncing peer.
func (c *Cache) raws(limit int) [][]byte {
	c.prune()
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([][]byte, 0, min(limit, len(c.entries)))
	for id, e := range c.entries {
		if len(out) == limit {
			break
		}
		if !c.hidden(id) {
			out = append(out, e.raw)
		}
	}
	return out
}
