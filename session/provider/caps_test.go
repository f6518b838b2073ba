package provider

import (
	"context"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
)

// memQuota is a QuotaStore in memory (the durable one is node's, over
// the node database).
type memQuota struct {
	mu    sync.Mutex
	u     QuotaUsage
	saves int
}

func (s *memQuota) LoadUsage(context.Context) (QuotaUsage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.u, nil
}

func (s *memQuota) SaveUsage(_ context.Context, u QuotaUsage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.u = u
	s.saves++
	return nil
}

func (s *memQuota) used() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.u.Used
}

func newQuota(t *testing.T, st QuotaStore, limit uint64) *Quota {
	t.Helper()
	q, err := NewQuota(context.Background(), st, limit, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// leave ends a session from the consumer's side (reading meanwhile, so
// the provider's writes on the unbuffered pipe never wait).
func leave(t *testing.T, r *sessionproto.Reader, w *sessionproto.Writer, done chan error) {
	t.Helper()
	go drain(r)
	_ = w.WriteMessage(context.Background(), &sessionproto.Destroy{Reason: "done"})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end on Destroy")
	}
}

var funded = fakeFunds{registered: true, balance: big.NewInt(1e18)}

// readUntilError reads the consumer end until the provider's Error.
func readUntilError(t *testing.T, r *sessionproto.Reader) *sessionproto.Error {
	t.Helper()
	for {
		m, err := r.ReadMessage(context.Background())
		if err != nil {
			t.Fatalf("read until the provider's error: %v", err)
		}
		if e, ok := m.(*sessionproto.Error); ok {
			return e
		}
	}
}

func TestQuotaExhaustedRefused(t *testing.T) {
	st := &memQuota{u: QuotaUsage{Month: month(time.Now()), Used: 5000}}
	e := newEnv(t, funded, true, func(c *Config) { c.Quota = newQuota(t, st, 4000) })
	msg, _, _, _, done := e.open(t, e.request(t))
	em, ok := msg.(*sessionproto.Error)
	if !ok || em.Code != sessionproto.CodeQuotaExhausted {
		t.Fatalf("got %T %v, want error quota_exhausted", msg, msg)
	}
	<-done
	if e.exit.added != 0 {
		t.Fatal("a consumer was admitted with the quota used up")
	}
	// Last month's count does not refuse this month.
	st2 := &memQuota{u: QuotaUsage{Month: "2001-01", Used: 5000}}
	e2 := newEnv(t, funded, true, func(c *Config) { c.Quota = newQuota(t, st2, 4000) })
	msg, _, r, w, done := e2.open(t, e2.request(t))
	if _, ok := msg.(*sessionproto.SessionResponse); !ok {
		t.Fatalf("new month: got %T %v, want a session response", msg, msg)
	}
	leave(t, r, w, done)
}

func TestQuotaCrossedEndsSession(t *testing.T) {
	st := &memQuota{}
	// The fake exit counts 3000 bytes per peer: one session crosses 2000.
	e := newEnv(t, funded, true, func(c *Config) { c.Quota, c.QuotaEvery = newQuota(t, st, 2000), 20*time.Millisecond })
	msg, _, r, _, done := e.open(t, e.request(t))
	if _, ok := msg.(*sessionproto.SessionResponse); !ok {
		t.Fatalf("got %T %v, want a session response", msg, msg)
	}
	if em := readUntilError(t, r); em.Code != sessionproto.CodeQuotaExhausted {
		t.Fatalf("session ended with %v, want quota_exhausted", em)
	}
	select {
	case err := <-done:
		if !errors.Is(err, paystream.ErrQuotaExhausted) {
			t.Fatalf("serve returned %v, want the quota exhausted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end when the quota was crossed")
	}
	if got := st.used(); got != 3000 {
		t.Fatalf("saved usage %d, want the session's 3000 bytes", got)
	}
	if e.exit.count() != 0 {
		t.Fatal("peer left on the exit")
	}
	// And the next request is refused.
	msg, _, _, _, done = e.open(t, e.request(t))
	if em, ok := msg.(*sessionproto.Error); !ok || em.Code != sessionproto.CodeQuotaExhausted {
		t.Fatalf("after the quota: got %T %v, want quota_exhausted", msg, msg)
	}
	<-done
}

func TestQuotaPersistsAndRolls(t *testing.T) {
	st := &memQuota{}
	now := time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	q, err := NewQuota(context.Background(), st, 1000, clock)
	if err != nil {
		t.Fatal(err)
	}
	if q.Add(600) {
		t.Fatal("600 of 1000 exhausted")
	}
	if err := q.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	saves := st.saves
	if err := q.Save(context.Background()); err != nil || st.saves != saves {
		t.Fatalf("an unchanged count was saved again (%v)", err)
	}
	// A restart reads the month's count back.
	q2, err := NewQuota(context.Background(), st, 1000, clock)
	if err != nil {
		t.Fatal(err)
	}
	if s := q2.Status(); s.Used != 600 || s.Month != "2026-12" || s.Exhausted || !s.Resets.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after restart %+v", s)
	}
	if !q2.Add(400) || !q2.Exhausted() {
		t.Fatal("1000 of 1000 not exhausted")
	}
	// The next month starts from zero.
	now = now.Add(2 * time.Hour)
	if q2.Exhausted() {
		t.Fatal("still exhausted in the next month")
	}
	if s := q2.Status(); s.Used != 0 || s.Month != "2027-01" {
		t.Fatalf("next month %+v", s)
	}
	// Unlimited: counted, never exhausted.
	q3, _ := NewQuota(context.Background(), &memQuota{}, 0, nil)
	if q3.Add(1<<62) || q3.Status().Used != 1<<62 {
		t.Fatal("an unlimited quota is exhausted or does not count")
	}
}

func TestMaxSessions(t *testing.T) {
	e := newEnv(t, funded, true, func(c *Config) { c.MaxSessions = 1 })
	msg, _, r, w, done := e.open(t, e.request(t))
	if _, ok := msg.(*sessionproto.SessionResponse); !ok {
		t.Fatalf("first: got %T %v, want a session response", msg, msg)
	}
	msg2, _, _, _, done2 := e.open(t, e.request(t))
	if em, ok := msg2.(*sessionproto.Error); !ok || em.Code != sessionproto.CodeCapacity {
		t.Fatalf("second: got %T %v, want capacity", msg2, msg2)
	}
	<-done2
	leave(t, r, w, done)
	msg3, _, r3, w3, done3 := e.open(t, e.request(t))
	if _, ok := msg3.(*sessionproto.SessionResponse); !ok {
		t.Fatalf("after the first ended: got %T %v, want a session response", msg3, msg3)
	}
	leave(t, r3, w3, done3)
}

func TestSessionBandwidthOnExit(t *testing.T) {
	e := newEnv(t, funded, true, func(c *Config) { c.SessionBandwidth = 123456 })
	msg, _, r, w, done := e.open(t, e.request(t))
	if _, ok := msg.(*sessionproto.SessionResponse); !ok {
		t.Fatalf("got %T %v, want a session response", msg, msg)
	}
	e.exit.mu.Lock()
	for _, p := range e.exit.peers {
		if p.BandwidthLimit != 123456 {
			t.Errorf("peer admitted with bandwidth limit %d, want 123456", p.BandwidthLimit)
		}
	}
	e.exit.mu.Unlock()
	leave(t, r, w, done)
}
