package quality

import (
	"math"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/defaults"
)

// ScorerConfig configures a Scorer; zero fields take the defaults.
type ScorerConfig struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HalfLife is how fast old reports fade (default 24h).
	HalfLife time.Duration
	// Unit is the payment worth one unit of weight, in wei (default
	// 10^15, 0.001 MYST).
	Unit *big.Int
	// MaxWeight caps the weight one consumer gives one provider per UTC
	// day, all its reports together (default 10).
	MaxWeight float64
	// FailWeight is the weight of an unpaid report (a failed attempt)
	// from a consumer with a funded channel (default 1).
	FailWeight float64
	// MaxProviders and MaxPairs bound the memory (defaults 50,000 and
	// 200,000); past them new providers and consumer/provider days are
	// not counted until old ones age out.
	MaxProviders int
	MaxPairs     int
}

// SpeedScale is the throughput (bytes/s) at which the speed factor of a
// score is one half.
const SpeedScale = 256 << 10

// unknownValue is the Value of a provider without reports.
const unknownValue = 0.25

// samples is how many recent successful sessions the medians look at.
const samples = 16

// providerState is one provider's aggregate.
type providerState struct {
	succ, total float64   // decayed weight of successful / all reports
	at          time.Time // when succ and total were last decayed
	connectMs   [samples]uint32
	throughput  [samples]uint64
	n, next     int // filled samples, next slot
	reports     int // counted reports
}

// pairDay keys the per consumer, provider and day cap.
type pairDay struct {
	consumer, provider common.Address
	day                int64
}

// Score is a provider's quality as this node sees it.
type Score struct {
	// Provider is the provider identity.
	Provider common.Address `json:"provider"`
	// Reports is the number of reports counted.
	Reports int `json:"reports"`
	// Weight is the decayed weight behind the score.
	Weight float64 `json:"weight"`
	// SuccessRate is the weighted, decayed share of successful sessions.
	SuccessRate float64 `json:"success_rate"`
	// MedianConnectMs is the median connect → first byte of recent
	// successful sessions, in ms (0: none).
	MedianConnectMs uint32 `json:"median_connect_ms"`
	// MedianThroughput is the median throughput of recent successful
	// sessions, in bytes per second (0: none).
	MedianThroughput uint64 `json:"median_throughput"`
	// Value is the sort key in [0, 1]: the success rate pulled towards
	// 0.5 by a prior of weight 1, times a speed factor
	// MedianThroughput / (MedianThroughput + SpeedScale) (0.5 without
	// samples), so a reliable but slow provider ranks low and an unknown
	// one sits between good and bad ones.
	Value float64 `json:"value"`
}

// Scorer aggregates counted reports into per-provider scores. It is safe
// for concurrent use. It trusts its caller for signatures and backing
// (Service checks them); it enforces the caps and the decay.
type Scorer struct {
	cfg ScorerConfig

	mu        sync.Mutex
	providers map[common.Address]*providerState
	pairs     map[pairDay]float64 // weight used per consumer/provider/day
	spent     map[common.Address]*big.Int
}

// NewScorer returns an empty Scorer.
func NewScorer(cfg ScorerConfig) *Scorer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.HalfLife = defaults.Positive(cfg.HalfLife, 24*time.Hour)
	if cfg.Unit == nil || cfg.Unit.Sign() <= 0 {
		cfg.Unit = big.NewInt(1e15)
	}
	cfg.MaxWeight = defaults.Positive(cfg.MaxWeight, 10)
	cfg.FailWeight = defaults.Positive(cfg.FailWeight, 1)
	cfg.MaxProviders = defaults.Positive(cfg.MaxProviders, 50000)
	cfg.MaxPairs = defaults.Positive(cfg.MaxPairs, 200000)
	return &Scorer{cfg: cfg, providers: map[common.Address]*providerState{}, pairs: map[pairDay]float64{}, spent: map[common.Address]*big.Int{}}
}

// Weight is the weight a report backed by a channel worth limit wei
// (balance plus settled; nil or zero: no funded channel) may carry before
// the caps: its payment in Units (at most MaxWeight), or FailWeight for an
// unpaid report of a funded consumer; a failure weighs at least
// FailWeight even when it paid less (a session dropped after its first
// small invoice is no weaker evidence than a failed connect); 0 when
// unbacked.
func (s *Scorer) Weight(r *Report, limit *big.Int) float64 {
	if limit == nil || limit.Sign() <= 0 {
		return 0
	}
	paid := r.Paid.Int()
	if paid.Sign() == 0 {
		return s.cfg.FailWeight
	}
	if r.Evidence == nil || r.Evidence.Promise.Amount.Cmp(limit) > 0 {
		return 0 // a promise above what the channel can ever pay backs nothing
	}
	units, _ := new(big.Rat).SetFrac(paid, s.cfg.Unit).Float64()
	w := math.Min(units, s.cfg.MaxWeight)
	if !r.Outcome.Success() {
		w = math.Max(w, s.cfg.FailWeight)
	}
	return w
}

// Add counts a verified report backed by a channel worth limit wei and
// returns the weight it got (0: not counted: unbacked, over a cap, or the
// consumer's payments to all providers would exceed its channel). A
// report issued before now (one pulled by a late joiner) enters decayed
// by its age, as if it had been counted when issued.
func (s *Scorer) Add(r *Report, limit *big.Int) float64 {
	w := s.Weight(r, limit)
	if w == 0 {
		return 0
	}
	now := s.cfg.Now()
	if age := now.Sub(time.Unix(r.IssuedAt, 0)); age > 0 {
		w *= math.Exp2(-float64(age) / float64(s.cfg.HalfLife))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := pairDay{consumer: r.Consumer, provider: r.Provider, day: time.Unix(r.IssuedAt, 0).UTC().Unix() / 86400}
	used, ok := s.pairs[key]
	if !ok && len(s.pairs) >= s.cfg.MaxPairs {
		s.prunePairsLocked(now)
		if len(s.pairs) >= s.cfg.MaxPairs {
			return 0
		}
	}
	w = math.Min(w, s.cfg.MaxWeight-used)
	if w <= 0 {
		return 0
	}
	// Everything a consumer's reports claim as paid, to all providers,
	// must fit in what its channel can pay.
	paid := r.Paid.Int()
	spent := s.spent[r.Consumer]
	if spent == nil {
		spent = new(big.Int)
	}
	if total := new(big.Int).Add(spent, paid); total.Cmp(limit) > 0 {
		return 0
	} else if paid.Sign() > 0 {
		if len(s.spent) >= s.cfg.MaxPairs {
			return 0
		}
		s.spent[r.Consumer] = total
	}
	p := s.providers[r.Provider]
	if p == nil {
		if len(s.providers) >= s.cfg.MaxProviders {
			return 0
		}
		p = &providerState{at: now}
		s.providers[r.Provider] = p
	}
	s.decayLocked(p, now)
	s.pairs[key] = used + w
	p.total += w
	p.reports++
	if r.Outcome.Success() {
		p.succ += w
		p.connectMs[p.next] = uint32(min(r.ConnectMs, math.MaxUint32))
		p.throughput[p.next] = r.Throughput
		p.next = (p.next + 1) % samples
		p.n = min(p.n+1, samples)
	}
	return w
}

func (s *Scorer) decayLocked(p *providerState, now time.Time) {
	if dt := now.Sub(p.at); dt > 0 {
		f := math.Exp2(-float64(dt) / float64(s.cfg.HalfLife))
		p.succ *= f
		p.total *= f
		p.at = now
	}
}

// prunePairsLocked forgets caps of days before yesterday.
func (s *Scorer) prunePairsLocked(now time.Time) {
	today := now.UTC().Unix() / 86400
	for k := range s.pairs {
		if k.day < today-1 {
			delete(s.pairs, k)
		}
	}
}

// Score returns provider's score (Value 0.25 and no reports when unknown).
func (s *Scorer) Score(provider common.Address) Score {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.providers[provider]
	if p == nil {
		return Score{Provider: provider, Value: unknownValue}
	}
	s.decayLocked(p, s.cfg.Now())
	sc := Score{Provider: provider, Reports: p.reports, Weight: p.total}
	speed := 0.5
	if p.total > 0 {
		sc.SuccessRate = p.succ / p.total
	}
	if p.n > 0 {
		c := slices.Clone(p.connectMs[:p.n])
		t := slices.Clone(p.throughput[:p.n])
		slices.Sort(c)
		slices.Sort(t)
		sc.MedianConnectMs, sc.MedianThroughput = c[p.n/2], t[p.n/2]
		speed = float64(sc.MedianThroughput) / float64(sc.MedianThroughput+SpeedScale)
	}
	sc.Value = (p.succ + 0.5) / (p.total + 1) * speed
	return sc
}

// Len is the number of providers with a score.
func (s *Scorer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.providers)
}
