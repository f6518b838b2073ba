package tunnel

import "time"

// DefaultDeadAfter is how long a tunnel that sends may receive nothing
// before Liveness calls it dead.
const DefaultDeadAfter = 30 * time.Second

// IdleSendBytes is what a working but idle consumer tunnel may send
// without receiving anything in between: a persistent keepalive (32
// bytes) every DefaultKeepalive for the two minutes between rekeys, and
// the rekey's handshake initiation (148 bytes), with room to spare. A
// tunnel that sent more than this since it last received anything is
// waiting for an answer: its own traffic, or WireGuard's handshake
// retries after data went unanswered (every 5 s).
const IdleSendBytes = 512

// Liveness tells a dead tunnel from an idle one by the peer's counters,
// as Tailscale and Netbird do: a tunnel is dead when it received nothing
// (no data, keepalive or handshake response) for DeadAfter while it sent
// more than IdleSendBytes since it last received anything. WireGuard's
// keepalives alone do not show a stalled flow: a consumer sends them
// whether or not anything comes back. A working tunnel whose own traffic
// is one-way still receives within WireGuard's keepalive timeout (10 s:
// the peer's passive keepalive after data) or its rekey timeout (a
// handshake answered), so DeadAfter must be well above 15 s outside tests.
// The zero value uses DefaultDeadAfter. Not safe for concurrent use.
type Liveness struct {
	// DeadAfter is the silence that makes a sending tunnel dead.
	DeadAfter time.Duration

	started  bool
	rx, txRx uint64    // rx counter, and the tx counter when it last grew
	rxAt     time.Time // when rx last grew (or the first observation)
	hs       time.Time
}

// Observe records the peer's counters at now and reports whether the
// tunnel is dead (see Liveness).
func (l *Liveness) Observe(now time.Time, st PeerStats) bool {
	if !l.started || st.RxBytes != l.rx || st.LastHandshake.After(l.hs) || st.TxBytes < l.txRx {
		l.started, l.rx, l.txRx, l.rxAt, l.hs = true, st.RxBytes, st.TxBytes, now, st.LastHandshake
		return false
	}
	after := l.DeadAfter
	if after <= 0 {
		after = DefaultDeadAfter
	}
	return now.Sub(l.rxAt) >= after && st.TxBytes-l.txRx > IdleSendBytes
}
