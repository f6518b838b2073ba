package quality

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/ratelimit"
)

// ReportTopicName is the GossipSub topic carrying quality reports for a
// chain.
func ReportTopicName(chainID uint64) string {
	return fmt.Sprintf("/openmyst/quality/1/%d", chainID)
}

// Report freshness: older reports are ignored by gossip (not
// forwarded), reports from further in the future are rejected.
const (
	MaxReportAge    = time.Hour
	MaxReportFuture = time.Minute
)

// MaxSyncAge is how old a report pulled over ReportSyncProtocol may be:
// the scores' default half-life, so a late joiner gets the reports that
// still weigh at least half (and decays each by its age, see Scorer.Add);
// gossip keeps the short MaxReportAge.
const MaxSyncAge = 24 * time.Hour

// maxSeen bounds the replay filter (report ids within MaxSyncAge).
const maxSeen = 200000

// Backing says what a consumer's reports are backed by: its channel on
// the chain.
type Backing interface {
	// ChannelLimit returns the id of consumer's channel with hermes and
	// the most its promises can ever be worth (balance plus settled), zero
	// for a consumer without a registered, funded channel.
	ChannelLimit(ctx context.Context, consumer, hermes common.Address) (channelID [32]byte, limit *big.Int, err error)
}

// ReportStats counts report validation outcomes.
type ReportStats struct {
	// Counted reports were accepted and added to the scores with weight.
	Counted uint64 `json:"counted"`
	// Unbacked reports had no funded channel or evidence behind them.
	Unbacked uint64 `json:"unbacked"`
	// Stale reports were past MaxReportAge, or replays of a report seen.
	Stale uint64 `json:"stale"`
	// RateLimited reports came from a peer or identity over its rate.
	RateLimited uint64 `json:"rate_limited"`
	// Invalid reports were oversized, malformed, badly signed or from the
	// future.
	Invalid uint64 `json:"invalid"`
}

// reports is the report half of a Service.
type reports struct {
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	backing Backing
	scorer  *Scorer
	now     func() time.Time
	byPeer  *ratelimit.Keyed[peer.ID]
	byID    *ratelimit.Keyed[common.Address]

	serve *ratelimit.Keyed[peer.ID] // ReportSyncProtocol requests

	mu     sync.Mutex
	seen   map[[32]byte]int64 // report id -> issued_at
	recent []recentReport     // counted, for ReportSyncProtocol

	counted, unbacked, stale, limited, invalid atomic.Uint64
}

// checkedReport is a report that passed the validator, with its backing.
type checkedReport struct {
	r     SignedReport
	limit *big.Int
}

func (q *reports) validate(ctx context.Context, self peer.ID, chainID uint64, msg *pubsub.Message) pubsub.ValidationResult {
	from := msg.GetFrom()
	if from == self {
		from = "" // own reports spend no peer rate
	}
	c, res := q.check(ctx, from, chainID, msg.Data, MaxReportAge)
	if res == pubsub.ValidationAccept {
		msg.ValidatorData = c
	}
	return res
}

// check validates one encoded report (gossip or sync) not older than
// maxAge; from, when not empty, is the peer whose message rate it spends.
func (q *reports) check(ctx context.Context, from peer.ID, chainID uint64, data []byte, maxAge time.Duration) (checkedReport, pubsub.ValidationResult) {
	if len(data) > MaxReportSize {
		q.invalid.Add(1)
		return checkedReport{}, pubsub.ValidationReject
	}
	now := q.now()
	if from != "" && !q.byPeer.Allow(from, now) {
		q.limited.Add(1)
		return checkedReport{}, pubsub.ValidationIgnore
	}
	sr, err := DecodeReport(data)
	if err != nil || sr.Report.ChainID != chainID {
		q.invalid.Add(1)
		return checkedReport{}, pubsub.ValidationReject
	}
	r := &sr.Report
	switch age := sr.Age(now); {
	case age < -MaxReportFuture:
		q.invalid.Add(1)
		return checkedReport{}, pubsub.ValidationReject
	case age > maxAge:
		q.stale.Add(1)
		return checkedReport{}, pubsub.ValidationIgnore
	}
	// Replays first: a replayed report must not spend its consumer's
	// rate (that would let anyone silence an honest consumer).
	if !q.firstSeen(sr.ID(), r.IssuedAt, now) {
		q.stale.Add(1)
		return checkedReport{}, pubsub.ValidationIgnore
	}
	if !q.byID.Allow(r.Consumer, now) {
		q.limited.Add(1)
		return checkedReport{}, pubsub.ValidationIgnore
	}
	id, limit, err := q.backing.ChannelLimit(ctx, r.Consumer, r.Hermes)
	if err != nil || limit == nil || limit.Sign() <= 0 ||
		(r.Evidence != nil && r.Evidence.Promise.ChannelID != id) || q.scorer.Weight(r, limit) == 0 {
		q.unbacked.Add(1)
		return checkedReport{}, pubsub.ValidationIgnore
	}
	return checkedReport{r: sr, limit: limit}, pubsub.ValidationAccept
}

// count adds an accepted report to the scores and keeps it for sync;
// it reports whether it was counted with weight.
func (q *reports) count(c checkedReport, raw []byte) bool {
	if q.scorer.Add(&c.r.Report, c.limit) > 0 {
		q.counted.Add(1)
		q.remember(raw, c.r.Report.IssuedAt)
		return true
	}
	q.unbacked.Add(1)
	return false
}

// firstSeen records id and reports whether it is new. When full, the
// filter forgets ids older than MaxSyncAge (gossip and sync ignore those
// anyway), then, if that is not enough (more than maxSeen reports a day),
// ids older than MaxReportAge: fresh gossip keeps being counted, and a
// synced report older than the gossip window could then count twice, as
// far as the per-day caps and the consumer's channel budget let it.
func (q *reports) firstSeen(id [32]byte, issuedAt int64, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.seen[id]; ok {
		return false
	}
	for _, keep := range []time.Duration{MaxSyncAge, MaxReportAge} {
		if len(q.seen) < maxSeen {
			break
		}
		cut := now.Add(-keep - MaxReportFuture).Unix()
		for k, at := range q.seen {
			if at < cut {
				delete(q.seen, k)
			}
		}
	}
	if len(q.seen) >= maxSeen {
		return false
	}
	q.seen[id] = issuedAt
	return true
}

// receive counts accepted reports until ctx ends.
func (q *reports) receive(ctx context.Context) {
	for {
		msg, err := q.sub.Next(ctx)
		if err != nil {
			return
		}
		c, ok := msg.ValidatorData.(checkedReport)
		if !ok {
			continue
		}
		q.count(c, msg.Data)
	}
}

// PublishReport publishes a signed report on the report topic (it passes
// this node's own validator first, backing included).
func (s *Service) PublishReport(ctx context.Context, sr SignedReport) error {
	if s.rep == nil {
		return fmt.Errorf("quality: reports are not enabled")
	}
	raw, err := sr.Encode()
	if err != nil {
		return err
	}
	if err := s.rep.topic.Publish(ctx, raw); err != nil {
		return fmt.Errorf("quality: publish report: %w", err)
	}
	return nil
}

// Score returns a provider's quality score (see Scorer.Score); without
// reports enabled every provider scores as unknown.
func (s *Service) Score(provider common.Address) Score {
	if s.rep == nil {
		return Score{Provider: provider, Value: unknownValue}
	}
	return s.rep.scorer.Score(provider)
}

// ReportStats returns the report validation counters.
func (s *Service) ReportStats() ReportStats {
	if s.rep == nil {
		return ReportStats{}
	}
	q := s.rep
	return ReportStats{Counted: q.counted.Load(), Unbacked: q.unbacked.Load(), Stale: q.stale.Load(), RateLimited: q.limited.Load(), Invalid: q.invalid.Load()}
}
