// Package ratelimit limits events per key — a peer, a source address, an
// identity — with one golang.org/x/time/rate token bucket per key. The
// buckets live in a least-recently-used cache of bounded size, so a
// stranger who invents keys cannot grow memory: at worst a key forgotten
// for being the least recently seen starts again with a full bucket.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// DefaultMaxKeys is the number of keys a Keyed remembers when New is given
// a non-positive cap.
const DefaultMaxKeys = 1 << 16

// Keyed is a set of token buckets, one per key, each refilled at the same
// rate and holding at most the same burst. It is safe for concurrent use.
type Keyed[K comparable] struct {
	limit   rate.Limit
	burst   int
	maxKeys int

	mu      sync.Mutex
	buckets *simplelru.LRU[K, *bucket]
}

// bucket is one key's limiter and the latest time it was asked about.
// x/time/rate moves a limiter's clock back when asked about an earlier
// time and then refills from there again, minting tokens; concurrent
// callers that read the clock before taking the lock arrive slightly out
// of order, so each key's time is clamped to never go backwards.
type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// at returns key's bucket, created full if unknown, and now clamped to be
// no earlier than any time the bucket was asked about before. k.mu is held.
func (k *Keyed[K]) at(key K, now time.Time) (*rate.Limiter, time.Time) {
	b, found := k.buckets.Get(key)
	if !found {
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		k.buckets.Add(key, b)
	}
	if now.Before(b.last) {
		now = b.last
	} else {
		b.last = now
	}
	return b.lim, now
}

// New returns buckets that each allow burst events at once and refill at
// limit events per second (rate.Inf: no limit), remembering at most
// maxKeys keys (DefaultMaxKeys if maxKeys <= 0).
func New[K comparable](limit rate.Limit, burst, maxKeys int) *Keyed[K] {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	l, err := simplelru.NewLRU[K, *bucket](maxKeys, nil)
	if err != nil { // only for a non-positive size, excluded above
		panic(err)
	}
	return &Keyed[K]{limit: limit, burst: burst, maxKeys: maxKeys, buckets: l}
}

// Every returns a Keyed whose buckets refill one event per interval.
func Every[K comparable](interval time.Duration, burst, maxKeys int) *Keyed[K] {
	return New[K](rate.Every(interval), burst, maxKeys)
}

// Allow reports whether one event for key at now is within the limit, and
// takes a token if it is.
func (k *Keyed[K]) Allow(key K, now time.Time) bool {
	ok, _ := k.Reserve(key, now)
	return ok
}

// Reserve is Allow that also says, when the event is refused, how long
// until a token will be available (the Retry-After of an HTTP 429; the
// largest Duration when no event is ever allowed). A refused event takes
// no token.
func (k *Keyed[K]) Reserve(key K, now time.Time) (ok bool, retryAfter time.Duration) {
	if k.limit == rate.Inf {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	b, now := k.at(key, now)
	if b.AllowN(now, 1) {
		return true, 0
	}
	if k.burst < 1 || k.limit <= 0 {
		return false, time.Duration(math.MaxInt64) // never
	}
	missing := 1 - b.TokensAt(now)
	return false, max(time.Duration(missing/float64(k.limit)*float64(time.Second)), time.Nanosecond)
}

// Charge takes n more tokens from key's bucket at now, into debt if need
// be (at most one burst's worth): a penalty that delays the key's next
// allowed events. It is a no-op without a limit.
func (k *Keyed[K]) Charge(key K, n int, now time.Time) {
	if k.limit == rate.Inf || n <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	b, now := k.at(key, now)
	b.ReserveN(now, min(n, k.burst)) // never cancelled: the tokens stay taken
}

// Len is the number of keys remembered.
func (k *Keyed[K]) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.buckets.Len()
}

// Cap is the most keys remembered at once.
func (k *Keyed[K]) Cap() int { return k.maxKeys }
