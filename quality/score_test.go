package quality

import (
	"fmt"
	"math"
	"math/big"
	"runtime"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/clocktest"
	"github.com/openmyst/openmyst/internal/keytest"
)

func TestScorerWeightsCapsAndDecay(t *testing.T) {
	clk := clocktest.New(time.Unix(1_800_000_000, 0))
	s := NewScorer(ScorerConfig{Now: clk.Now, HalfLife: time.Hour})
	funded := big.NewInt(1e18)
	c, good, bad := keytest.Signer(t), keytest.Signer(t).Address(), keytest.Signer(t).Address()

	// Unbacked: no funded channel, or a promise above what it can pay.
	if w := s.Add(rep(t, c, good, clk.Now(), OutcomeConnected, 5e15, 100, 1e6), nil); w != 0 {
		t.Fatalf("unbacked report weighed %v", w)
	}
	if w := s.Add(rep(t, c, good, clk.Now(), OutcomeConnected, 5e15, 100, 1e6), big.NewInt(4e15)); w != 0 {
		t.Fatalf("report paying more than the channel holds weighed %v", w)
	}
	// Weighted by amount: 0.005 MYST = 5 units.
	if w := s.Add(rep(t, c, good, clk.Now(), OutcomeConnected, 5e15, 100, 1e6), funded); w != 5 {
		t.Fatalf("weight %v, want 5", w)
	}
	// Capped per consumer/provider/day at 10: the next 8 units give 5.
	if w := s.Add(rep(t, c, good, clk.Now(), OutcomeConnected, 8e15, 300, 3e6), funded); w != 5 {
		t.Fatalf("weight %v, want the 5 left under the cap", w)
	}
	if w := s.Add(rep(t, c, good, clk.Now(), OutcomeConnected, 8e15, 100, 1e6), funded); w != 0 {
		t.Fatalf("weight %v over the daily cap", w)
	}
	// Unpaid failures weigh FailWeight.
	for i := 0; i < 3; i++ {
		if w := s.Add(rep(t, c, bad, clk.Now(), OutcomeUnreachable, 0, 0, 0), funded); w != 1 {
			t.Fatalf("failure weight %v, want 1", w)
		}
	}
	g, b, u := s.Score(good), s.Score(bad), s.Score(keytest.Signer(t).Address())
	if !(g.Value > u.Value && u.Value > b.Value) {
		t.Fatalf("values good %v, unknown %v, bad %v: want good > unknown > bad", g.Value, u.Value, b.Value)
	}
	if g.SuccessRate != 1 || b.SuccessRate != 0 || g.MedianConnectMs != 300 || g.MedianThroughput != 3e6 || g.Reports != 2 {
		t.Fatalf("good %+v, bad %+v", g, b)
	}
	// Decay: after one half-life the weight halves, the rate stays.
	clk.Add(time.Hour)
	if g2 := s.Score(good); math.Abs(g2.Weight-g.Weight/2) > 1e-9 || g2.SuccessRate != 1 {
		t.Fatalf("after a half-life %+v, want weight %v", g2, g.Weight/2)
	}
	// A new day opens a new cap.
	clk.Add(24 * time.Hour)
	if w := s.Add(rep(t, c, good, clk.Now(), OutcomeConnected, 2e15, 100, 1e6), funded); w != 2 {
		t.Fatalf("next day weight %v, want 2", w)
	}
}

// TestScorerConsumerBudget: the payments a consumer's reports claim, to
// all providers together, cannot exceed what its channel can pay.
// TestPaidFailureWeighsAsAFailure: a session that failed after a tiny
// payment (dropped after its first invoice) weighs FailWeight like an
// unpaid failure, not its 0.0001 units; a tiny successful one keeps its
// payment's weight.
func TestPaidFailureWeighsAsAFailure(t *testing.T) {
	s := NewScorer(ScorerConfig{})
	c, p := keytest.Signer(t), keytest.Signer(t).Address()
	funded := big.NewInt(1e18)
	if w := s.Weight(rep(t, c, p, time.Now(), OutcomeStalled, 1e11, 100, 1e6), funded); w != 1 {
		t.Fatalf("a stalled session that paid 0.0001 units weighs %v, want FailWeight 1", w)
	}
	if w := s.Weight(rep(t, c, p, time.Now(), OutcomeStalled, 0, 0, 0), funded); w != 1 {
		t.Fatalf("an unpaid failure weighs %v, want 1", w)
	}
	if w := s.Weight(rep(t, c, p, time.Now(), OutcomeConnected, 1e11, 100, 1e6), funded); math.Abs(w-1e-4) > 1e-12 {
		t.Fatalf("a tiny successful session weighs %v, want its 0.0001 units", w)
	}
}

func TestScorerConsumerBudget(t *testing.T) {
	s := NewScorer(ScorerConfig{})
	c := keytest.Signer(t)
	limit := big.NewInt(10e15)
	now := time.Now()
	counted := 0
	for i := 0; i < 5; i++ {
		if s.Add(rep(t, c, keytest.Signer(t).Address(), now, OutcomeConnected, 4e15, 100, 1e6), limit) > 0 {
			counted++
		}
	}
	if counted != 2 {
		t.Fatalf("%d reports of 0.004 MYST counted on a 0.01 MYST channel, want 2", counted)
	}
}

// BenchmarkScoresMemory reports the heap used per 10,000 providers'
// scores (each with a full sample ring).
func BenchmarkScoresMemory(b *testing.B) {
	c := keytest.Signer(b)
	r := report(b, c, common.Address{1}, time.Now(), OutcomeConnected, 1e15, 100, 1e6).Report
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := NewScorer(ScorerConfig{MaxWeight: 1e9})
		limit := new(big.Int).Lsh(big.NewInt(1), 200)
		// Recent reports: the scorer decays a report by its age.
		base := time.Now().Unix()
		for j := 0; j < 10000; j++ {
			r.Provider = common.BigToAddress(big.NewInt(int64(j + 1)))
			for k := 0; k < samples; k++ {
				r.IssuedAt = base - int64(k) // one pair-day per provider
				s.Add(&r, limit)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/10k-scores")
		if s.Len() != 10000 {
			b.Fatal(fmt.Sprint("scores: ", s.Len()))
		}
		runtime.KeepAlive(s)
	}
}

// rep is report(...).Report by pointer.
func rep(t testing.TB, c identity.Signer, provider common.Address, now time.Time, o Outcome, paid int64, connectMs, tput uint64) *Report {
	t.Helper()
	sr := report(t, c, provider, now, o, paid, connectMs, tput)
	return &sr.Report
}
