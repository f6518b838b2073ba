package discovery

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/internal/retry"
)

// syncRetry is how long SyncConnected leaves a peer alone after its
// syncs failed (refused, reset, invalid): 1 s after the first failure,
// doubling up to syncEvery, the period in which a peer's sync limit
// grants a new sync: waiting longer would only delay a late joiner's
// catch-up, which a consumer waiting for proposals depends on. Gossip
// still brings that peer's announcements meanwhile.
var syncRetry = retry.Backoff{Initial: time.Second, Max: syncEvery, Jitter: true}

// maxSyncBackoff bounds the peers whose failures are remembered, beyond
// the connections a node keeps: the least recently failed is forgotten
// (then asked again at once, as a new peer).
const maxSyncBackoff = 1024

// syncBackoff remembers, per peer, the syncs that failed in a row and
// when it may be asked again. It is safe for concurrent use.
type syncBackoff struct {
	b   retry.Backoff
	mu  sync.Mutex
	lru *simplelru.LRU[peer.ID, syncFailures]
}

// syncFailures are a peer's failed syncs in a row and its next attempt.
type syncFailures struct {
	n    int
	next time.Time
}

func newSyncBackoff(b retry.Backoff, max int) *syncBackoff {
	l, err := simplelru.NewLRU[peer.ID, syncFailures](max, nil)
	if err != nil { // only for a non-positive size
		panic(err)
	}
	return &syncBackoff{b: b, lru: l}
}

// ready reports whether p may be asked at now.
func (s *syncBackoff) ready(p peer.ID, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.lru.Peek(p)
	return !ok || !now.Before(f.next)
}

// failed records a failed sync with p at now and returns the wait
// before p is asked again.
func (s *syncBackoff) failed(p peer.ID, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, _ := s.lru.Get(p)
	f.n++
	d := s.b.Delay(f.n)
	f.next = now.Add(d)
	s.lru.Add(p, f)
	return d
}

// succeeded forgets p's failures.
func (s *syncBackoff) succeeded(p peer.ID) {
	s.mu.Lock()
	s.lru.Remove(p)
	s.mu.Unlock()
}
