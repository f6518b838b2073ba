package pingpong

import (
	"math/big"
	"math/rand/v2"
	"testing"
	"time"
)

// TestHonestSessionsProperty runs many randomized honest sessions (random
// prices, traffic, tick jitter, consumer clock lag and byte undercount
// within the tolerance, short hermes outages) and checks the invariants:
// the consumer never refuses, the provider never ends the session, and
// every ledger agrees to the wei.
func TestHonestSessionsProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := 0; run < 40; run++ {
		perHour := new(big.Int).Mul(big.NewInt(rng.Int64N(1000)), big.NewInt(1e15))
		perGiB := new(big.Int).Mul(big.NewInt(rng.Int64N(1000)), big.NewInt(1e15))
		price := Price{PerHour: perHour, PerGiB: perGiB}
		threshold := new(big.Int).Quo(perGiB, big.NewInt(10))
		h := newHarness(t, func(tc *TrackerConfig, pc *PayerConfig) {
			tc.Price, pc.Price = price, price
			if rng.IntN(2) == 0 {
				tc.Threshold = threshold
			}
		})
		plenty := new(big.Int).Exp(big.NewInt(10), big.NewInt(24), nil)
		h.channel.balance, h.hermes.balance = plenty, plenty
		now := t0
		var bytes uint64
		lag := time.Duration(rng.Int64N(int64(time.Second)))
		outageLeft := 0
		steps := 50 + rng.IntN(150)
		for i := 0; i < steps; i++ {
			now = now.Add(time.Duration(200+rng.IntN(1600)) * time.Millisecond)
			bytes += uint64(rng.Int64N(50 * mib))
			if outageLeft == 0 && rng.IntN(60) == 0 {
				outageLeft = 1 + rng.IntN(8) // a few seconds, below the grace
				h.hermes.setDown(true)
			}
			if outageLeft > 0 {
				if outageLeft--; outageLeft == 0 {
					h.hermes.setDown(false)
				}
			}
			consumerBytes := bytes - bytes/uint64(50+rng.IntN(1000)) // up to 2% fewer
			if err := h.step(now, bytes, true, now.Add(-lag), consumerBytes); err != nil {
				t.Fatalf("run %d step %d (price %s/h %s/GiB): %v", run, i, perHour, perGiB, err)
			}
		}
		h.hermes.setDown(false)
		if err := h.tracker.Flush(t.Context()); err != nil {
			t.Fatalf("run %d: flush: %v", run, err)
		}
		st, paid := h.tracker.Stats(), h.payer.Stats().Paid
		promised := h.channel.promised()
		if st.Settled.Cmp(paid) != 0 || st.Accepted.Cmp(paid) != 0 || promised.Cmp(paid) != 0 || h.hermes.providerTotal().Cmp(paid) != 0 {
			t.Fatalf("run %d: settled %s accepted %s ledger %s hermes %s, paid %s", run, st.Settled, st.Accepted, promised, h.hermes.providerTotal(), paid)
		}
		if paid.Cmp(st.Owed) > 0 || paid.Cmp(st.Invoiced) > 0 {
			t.Fatalf("run %d: paid %s above owed %s or invoiced %s", run, paid, st.Owed, st.Invoiced)
		}
		if st.Invoiced.Cmp(price.Total(now.Sub(t0), bytes)) > 0 {
			t.Fatalf("run %d: invoiced %s above the exact total", run, st.Invoiced)
		}
	}
}
