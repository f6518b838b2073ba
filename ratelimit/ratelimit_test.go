package ratelimit

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestKeyedBurstRefillAndKeys(t *testing.T) {
	l := Every[string](10*time.Second, 3, 0)
	now := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		if !l.Allow("a", now) {
			t.Fatalf("burst event %d refused", i)
		}
	}
	ok, after := l.Reserve("a", now)
	if ok || after != 10*time.Second {
		t.Fatalf("4th event in a burst of 3: ok=%v retry after %v, want refused and 10s", ok, after)
	}
	if !l.Allow("b", now) {
		t.Fatal("another key was limited")
	}
	ok, after = l.Reserve("a", now.Add(9*time.Second))
	if ok || after <= 0 || after > time.Second {
		t.Fatalf("at 9s: ok=%v retry after %v, want refused and about 1s", ok, after)
	}
	if !l.Allow("a", now.Add(10*time.Second)) {
		t.Fatal("not refilled after one interval")
	}
}

func TestKeyedBounded(t *testing.T) {
	const max = 100
	l := New[int](1, 1, max)
	now := time.Unix(1000, 0)
	for i := 0; i < 10*max; i++ {
		if !l.Allow(i, now) {
			t.Fatalf("first event of key %d refused", i)
		}
		if n := l.Len(); n > max {
			t.Fatalf("%d keys remembered, cap %d", n, max)
		}
	}
	if l.Len() != max || l.Cap() != max {
		t.Fatalf("len %d cap %d, want %d", l.Len(), l.Cap(), max)
	}
	// The most recent key is remembered, so it is still limited.
	if l.Allow(10*max-1, now) {
		t.Fatal("recent key forgotten")
	}
}

func TestKeyedUnlimitedAndNever(t *testing.T) {
	inf := New[int](rate.Inf, 0, 1)
	for i := 0; i < 1000; i++ {
		if !inf.Allow(1, time.Unix(0, 0)) {
			t.Fatal("rate.Inf refused an event")
		}
	}
	if inf.Len() != 0 {
		t.Fatal("rate.Inf remembered keys")
	}
	never := New[int](0, 0, 1)
	if ok, after := never.Reserve(1, time.Unix(0, 0)); ok || after < time.Hour {
		t.Fatalf("zero limit and burst: ok=%v after=%v", ok, after)
	}
}

func TestKeyedCharge(t *testing.T) {
	l := New[string](1, 5, 0)
	now := time.Unix(1000, 0)
	if !l.Allow("a", now) {
		t.Fatal("first event refused")
	}
	l.Charge("a", 10, now) // clamped to the burst: 4 - 5 = -1 tokens
	ok, after := l.Reserve("a", now)
	if ok || after != 2*time.Second {
		t.Fatalf("after a penalty: ok=%v retry after %v, want refused for 2s", ok, after)
	}
	if !l.Allow("b", now) {
		t.Fatal("the penalty hit another key")
	}
	if !l.Allow("a", now.Add(2*time.Second)) {
		t.Fatal("not allowed once the debt is paid")
	}
}

// Callers read the clock before taking the lock, so concurrent events for
// one key arrive slightly out of order. x/time/rate alone moves its clock
// back on such an event and refills the gap again on the next one: an
// origin that keeps events in flight would mint tokens.
func TestKeyedOutOfOrderTimesMintNothing(t *testing.T) {
	l := Every[string](time.Second, 10, 0)
	t0 := time.Unix(1000, 0)
	late := t0.Add(900 * time.Millisecond)
	allowed := 0
	for i := 0; i < 20; i++ {
		// Alternate an event stamped late with one stamped early.
		if l.Allow("a", late) {
			allowed++
		}
		if l.Allow("a", t0) {
			allowed++
		}
	}
	// The burst of 10 plus nothing refilled by 900ms of one per second.
	if allowed != 10 {
		t.Fatalf("%d events allowed within 900ms, want the burst of 10", allowed)
	}
	if !l.Allow("a", late.Add(time.Second)) {
		t.Fatal("not refilled after the interval")
	}
}
