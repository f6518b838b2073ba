package discovery

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/ratelimit"
)

// Reason is the outcome of validating one announcement.
type Reason int

// Validation outcomes. Those marked "reject" make GossipSub drop the message
// and lower the forwarding peer's score; "ignore" drops it without penalty.
const (
	ReasonAccepted    Reason = iota // valid and newer than what we hold
	ReasonStale                     // ignore: sequence not newer than the cached one
	ReasonRateLimited               // ignore: origin peer over its message rate
	ReasonBlocked                   // ignore: provider blacklisted by a fraud proof
	ReasonOversized                 // reject: larger than MaxMessageSize
	ReasonMalformed                 // reject: not a well-formed announcement
	ReasonVersion                   // reject: unknown envelope or proposal version
	ReasonSignature                 // reject: proposal signature not by its provider
	ReasonBinding                   // reject: binding bad, or not for this provider/peer/chain, or sender is another peer
	ReasonExpired                   // reject: proposal or binding past expiry
	ReasonFuture                    // reject: issued in the future beyond the clock skew
	ReasonWrongChain                // reject: proposal for another chain
	numReasons
)

var reasonNames = [numReasons]string{
	"accepted", "stale", "rate_limited", "blocked", "oversized", "malformed", "version",
	"signature", "binding", "expired", "future", "wrong_chain",
}

// String is the reason's metric label.
func (r Reason) String() string {
	if r < 0 || r >= numReasons {
		return fmt.Sprintf("reason(%d)", int(r))
	}
	return reasonNames[r]
}

// Reject reports whether the reason makes GossipSub reject the message.
func (r Reason) Reject() bool { return r >= ReasonOversized }

func classify(err error, sigReason Reason) Reason {
	switch {
	case errors.Is(err, identity.ErrBadSignature):
		return sigReason
	case errors.Is(err, market.ErrExpired), errors.Is(err, p2p.ErrBindingExpired):
		return ReasonExpired
	case errors.Is(err, market.ErrFuture):
		return ReasonFuture
	}
	return ReasonMalformed
}

// Stats counts validation outcomes since the Validator was made; every
// message seen over gossip or sync is counted exactly once.
type Stats struct {
	Accepted    uint64 `json:"accepted"`
	Stale       uint64 `json:"stale"`
	RateLimited uint64 `json:"rate_limited"`
	Blocked     uint64 `json:"blocked"`
	Oversized   uint64 `json:"oversized"`
	Malformed   uint64 `json:"malformed"`
	Version     uint64 `json:"version"`
	Signature   uint64 `json:"signature"`
	Binding     uint64 `json:"binding"`
	Expired     uint64 `json:"expired"`
	Future      uint64 `json:"future"`
	WrongChain  uint64 `json:"wrong_chain"`
}

// Rejected is the number of rejected messages of any reason.
func (s Stats) Rejected() uint64 {
	return s.Oversized + s.Malformed + s.Version + s.Signature + s.Binding + s.Expired + s.Future + s.WrongChain
}

// ValidatorConfig configures a Validator.
type ValidatorConfig struct {
	// ChainID is the only chain whose proposals are accepted.
	ChainID uint64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ClockSkew tolerates issue times this far in the future; 0 means 1m.
	ClockSkew time.Duration
	// RateBurst and RateInterval limit each origin peer to RateBurst
	// messages at once, refilled by one every RateInterval; 0 means 8 and
	// 30s.
	RateBurst    int
	RateInterval time.Duration
	// Blocked, when set, names provider identities never listed again
	// (blacklisted by a fraud proof, package quality): their
	// announcements are ignored and cached ones hidden.
	Blocked func(provider common.Address) bool
	// OnConflict, when set, is called with two verified proposals of one
	// provider that carry the same sequence number but differ: the
	// provider equivocated, and the pair is a fraud proof. It must not
	// block (it runs inside validation).
	OnConflict func(held, got market.SignedProposal)
	// Quality, when set, scores a provider in [0, 1] for
	// market.SortQuality (package quality's Service.Score).
	Quality func(provider common.Address) float64
}

// Validator checks announcements. It is safe for concurrent use.
type Validator struct {
	chainID    uint64
	now        func() time.Time
	skew       time.Duration
	cache      *Cache
	blocked    func(common.Address) bool
	onConflict func(held, got market.SignedProposal)
	rate       *ratelimit.Keyed[peer.ID]
	counts     [numReasons]atomic.Uint64
}

// NewValidator returns a validator that consults cache for sequence
// numbers.
func NewValidator(cfg ValidatorConfig, cache *Cache) *Validator {
	v := &Validator{chainID: cfg.ChainID, now: cfg.Now, skew: cfg.ClockSkew, cache: cache, blocked: cfg.Blocked, onConflict: cfg.OnConflict}
	if v.now == nil {
		v.now = time.Now
	}
	if v.skew == 0 {
		v.skew = time.Minute
	}
	burst, every := cfg.RateBurst, cfg.RateInterval
	if burst == 0 {
		burst = 8
	}
	if every == 0 {
		every = 30 * time.Second
	}
	v.rate = newRateLimiter(burst, every)
	return v
}

// Check validates raw as received from origin (the peer that published it
// on GossipSub; empty for announcements pulled over sync, where the binding
// alone proves the peer). The outcome is counted.
func (v *Validator) Check(raw []byte, origin peer.ID) (Announcement, Reason, error) {
	a, r, err := v.check(raw, origin)
	v.counts[r].Add(1)
	return a, r, err
}

func (v *Validator) check(raw []byte, origin peer.ID) (Announcement, Reason, error) {
	now := v.now()
	if len(raw) > MaxMessageSize {
		return Announcement{}, ReasonOversized, fmt.Errorf("discovery: announcement is %d bytes, max %d", len(raw), MaxMessageSize)
	}
	if origin != "" && !v.rate.Allow(origin, now) {
		return Announcement{}, ReasonRateLimited, fmt.Errorf("discovery: origin %s over rate limit", origin)
	}
	a, r, err := DecodeAnnouncement(raw)
	if err != nil {
		return Announcement{}, r, err
	}
	p := &a.Proposal.Proposal
	if p.ChainID != v.chainID {
		return Announcement{}, ReasonWrongChain, fmt.Errorf("discovery: proposal for chain %d, want %d", p.ChainID, v.chainID)
	}
	if origin != "" && origin != a.Binding.PeerID {
		return Announcement{}, ReasonBinding, fmt.Errorf("discovery: published by %s, bound peer is %s", origin, a.Binding.PeerID)
	}
	if err := a.Binding.Verify(now, v.skew); err != nil {
		return Announcement{}, classify(err, ReasonBinding), err
	}
	if err := p.CheckTime(now, v.skew); err != nil {
		return Announcement{}, classify(err, ReasonMalformed), err
	}
	if v.blocked != nil && v.blocked(p.ProviderID) {
		return Announcement{}, ReasonBlocked, fmt.Errorf("discovery: provider %s is blacklisted", p.ProviderID.Hex())
	}
	if held, ok := v.cache.held(p.ProviderID); ok && p.Seq <= held.Proposal.Seq {
		if p.Seq == held.Proposal.Seq && v.onConflict != nil && conflicting(&held, &a.Proposal) {
			v.onConflict(held, a.Proposal)
		}
		return Announcement{}, ReasonStale, fmt.Errorf("discovery: seq %d not newer than %d", p.Seq, held.Proposal.Seq)
	}
	return a, ReasonAccepted, nil
}

// Stats returns the counters.
func (v *Validator) Stats() Stats {
	c := func(r Reason) uint64 { return v.counts[r].Load() }
	return Stats{
		Accepted: c(ReasonAccepted), Stale: c(ReasonStale), RateLimited: c(ReasonRateLimited), Blocked: c(ReasonBlocked),
		Oversized: c(ReasonOversized), Malformed: c(ReasonMalformed), Version: c(ReasonVersion),
		Signature: c(ReasonSignature), Binding: c(ReasonBinding), Expired: c(ReasonExpired),
		Future: c(ReasonFuture), WrongChain: c(ReasonWrongChain),
	}
}

// Count returns the counter for one reason.
func (v *Validator) Count(r Reason) uint64 { return v.counts[r].Load() }

// pubsubValidator adapts Check to GossipSub. The decoded announcement
// travels to the subscriber in msg.ValidatorData.
func (v *Validator) pubsubValidator(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	a, r, _ := v.Check(msg.Data, msg.GetFrom())
	switch {
	case r == ReasonAccepted:
		msg.ValidatorData = &a
		return pubsub.ValidationAccept
	case r.Reject():
		return pubsub.ValidationReject
	default:
		return pubsub.ValidationIgnore
	}
}

// maxBuckets bounds the per-peer rate limiters' memory: the least recently
// seen peers are forgotten first (and start again with a full bucket).
const maxBuckets = 10000

func newRateLimiter(burst int, every time.Duration) *ratelimit.Keyed[peer.ID] {
	return ratelimit.Every[peer.ID](every, burst, maxBuckets)
}

// conflicting reports whether a and b, same provider and sequence number,
// are different proposals (not the same one signed twice).
func conflicting(a, b *market.SignedProposal) bool {
	da, err1 := a.Proposal.Digest()
	db, err2 := b.Proposal.Digest()
	return err1 == nil && err2 == nil && da != db
}
