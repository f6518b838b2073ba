package tunnel

import (
	"testing"
	"time"
)

// TestLiveness: an idle tunnel that only sends keepalives lives through
// many DeadAfter; one that keeps sending while nothing comes back is dead
// at DeadAfter after its last receipt and not before; anything received
// (data or a new handshake) revives it.
func TestLiveness(t *testing.T) {
	const after = 10 * time.Second
	t0 := time.Unix(1_000_000, 0)
	hs := t0
	l := Liveness{DeadAfter: after}
	st := PeerStats{RxBytes: 1000, TxBytes: 1000, LastHandshake: hs}
	if l.Observe(t0, st) {
		t.Fatal("dead at the first observation")
	}
	// Idle: a keepalive every 25 s for two minutes, nothing back.
	for i := 1; i <= 5; i++ {
		st.TxBytes += 32
		if l.Observe(t0.Add(time.Duration(i)*DefaultKeepalive), st) {
			t.Fatalf("an idle tunnel sending keepalives is dead after %d of them", i)
		}
	}
	// The rekey's initiation is answered: alive again.
	now := t0.Add(130 * time.Second)
	st.TxBytes += 148
	st.RxBytes += 92
	st.LastHandshake = now
	if l.Observe(now, st) {
		t.Fatal("dead right after a handshake")
	}
	// Traffic out, nothing back.
	for d := time.Second; d < after; d += time.Second {
		st.TxBytes += 1500
		if l.Observe(now.Add(d), st) {
			t.Fatalf("dead %v after the last receipt, before DeadAfter %v", d, after)
		}
	}
	st.TxBytes += 1500
	if !l.Observe(now.Add(after), st) {
		t.Fatal("a tunnel that sent and received nothing for DeadAfter is not dead")
	}
	// Anything received revives it.
	st.RxBytes += 32
	if l.Observe(now.Add(after+time.Second), st) {
		t.Fatal("dead although it just received")
	}
	// A new handshake alone too (a fresh client's counters start over).
	st = PeerStats{LastHandshake: now.Add(20 * time.Second)}
	if l.Observe(now.Add(30*time.Second), st) {
		t.Fatal("dead after counters reset")
	}
}
