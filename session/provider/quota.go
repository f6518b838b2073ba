package provider

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultQuotaEvery is Config.QuotaEvery's default: how often the running
// sessions' traffic is added to the quota and saved.
const DefaultQuotaEvery = 2 * time.Second

// QuotaUsage is the traffic a provider served in one calendar month.
type QuotaUsage struct {
	// Month is the calendar month in UTC, "2006-01".
	Month string `json:"month"`
	// Used is the traffic of every session in that month (up plus down),
	// in bytes.
	Used uint64 `json:"used"`
}

// QuotaStore keeps a provider's QuotaUsage durably across restarts.
type QuotaStore interface {
	// LoadUsage returns the saved usage (the zero value when none).
	LoadUsage(ctx context.Context) (QuotaUsage, error)
	// SaveUsage durably replaces the saved usage.
	SaveUsage(ctx context.Context, u QuotaUsage) error
}

// QuotaStatus is a snapshot of a Quota.
type QuotaStatus struct {
	QuotaUsage
	// Limit is the monthly quota in bytes (0: unlimited, only counted).
	Limit uint64
	// Resets is when the next month starts (UTC).
	Resets time.Time
	// Exhausted is whether Limit is reached: new sessions are refused
	// with quota_exhausted and running ones are ended.
	Exhausted bool
}

// Quota counts a provider's traffic per calendar month (UTC) against a
// monthly limit and keeps the count in a QuotaStore. It is safe for
// concurrent use.
type Quota struct {
	limit uint64
	store QuotaStore
	now   func() time.Time

	// saveMu orders Saves, so an older count never overwrites a newer.
	saveMu sync.Mutex
	mu     sync.Mutex
	cur    QuotaUsage
	dirty  bool
}

// NewQuota loads the month's usage from store. limit is the monthly quota
// in bytes (0: unlimited; the traffic is still counted). now is the clock
// (nil: time.Now).
func NewQuota(ctx context.Context, store QuotaStore, limit uint64, now func() time.Time) (*Quota, error) {
	if store == nil {
		return nil, fmt.Errorf("provider: quota: no store")
	}
	if now == nil {
		now = time.Now
	}
	u, err := store.LoadUsage(ctx)
	if err != nil {
		return nil, fmt.Errorf("provider: quota: load usage: %w", err)
	}
	q := &Quota{limit: limit, store: store, now: now, cur: u}
	q.mu.Lock()
	q.rollLocked()
	q.mu.Unlock()
	return q, nil
}

func month(t time.Time) string { return t.UTC().Format("2006-01") }

// rollLocked starts a new month's count when the month changed.
func (q *Quota) rollLocked() {
	if m := month(q.now()); q.cur.Month != m {
		q.cur, q.dirty = QuotaUsage{Month: m}, true
	}
}

// Add counts n more bytes and reports whether the quota is now exhausted.
func (q *Quota) Add(n uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rollLocked()
	if n > 0 {
		q.cur.Used += n
		q.dirty = true
	}
	return q.exhaustedLocked()
}

func (q *Quota) exhaustedLocked() bool { return q.limit > 0 && q.cur.Used >= q.limit }

// Exhausted reports whether this month's quota is used up.
func (q *Quota) Exhausted() bool { return q.Add(0) }

// Status returns the month's usage and limit.
func (q *Quota) Status() QuotaStatus {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rollLocked()
	t := q.now().UTC()
	next := time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	return QuotaStatus{QuotaUsage: q.cur, Limit: q.limit, Resets: next, Exhausted: q.exhaustedLocked()}
}

// Save writes the usage to the store when it changed since the last Save.
func (q *Quota) Save(ctx context.Context) error {
	q.saveMu.Lock()
	defer q.saveMu.Unlock()
	q.mu.Lock()
	if !q.dirty {
		q.mu.Unlock()
		return nil
	}
	u := q.cur
	q.dirty = false
	q.mu.Unlock()
	if err := q.store.SaveUsage(ctx, u); err != nil {
		q.mu.Lock()
		q.dirty = true
		q.mu.Unlock()
		return fmt.Errorf("provider: quota: save usage: %w", err)
	}
	return nil
}
