package quality

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/ratelimit"
)

// TopicName is the GossipSub topic carrying fraud proofs for a chain.
func TopicName(chainID uint64) string {
	return fmt.Sprintf("/openmyst/fraudproofs/1/%d", chainID)
}

// SyncProtocol is the stream protocol a node uses to pull every proof a
// peer holds: the responder writes each as a 4-byte big-endian length and
// the bytes, then closes the stream. A node pulls from each peer it
// connects to (at most once per syncEvery per peer), so a late joiner
// learns the whole blacklist from its first neighbours.
const SyncProtocol protocol.ID = "/openmyst/fraudproofs/sync/1.0.0"

// Limits of the sync protocol.
const (
	syncEvery   = 10 * time.Minute // per peer, both directions
	syncBurst   = 2
	syncTimeout = 20 * time.Second
	syncQueue   = 64 // connections waiting for a pull; more are skipped
	maxBuckets  = 10000
)

// Config configures a Service.
type Config struct {
	// ChainID selects the topic; proofs about other chains' proposals
	// are rejected.
	ChainID uint64
	// Host serves and pulls SyncProtocol.
	Host host.Host
	// PubSub is the node's GossipSub router (discovery.Service.PubSub).
	PubSub *pubsub.PubSub
	// Store is the durable blacklist.
	Store *Store
	// RateBurst and RateInterval limit the proofs each origin peer may
	// publish: RateBurst at once, one more every RateInterval; 0 means 4
	// and 1m.
	RateBurst    int
	RateInterval time.Duration
	// Backing, when set, turns quality reports on: reports are gossiped
	// on ReportTopicName, and a report counts only when the consumer's
	// channel (and the evidence of payment it carries) backs it.
	Backing Backing
	// Scorer aggregates counted reports (default NewScorer with defaults).
	Scorer *Scorer
	// ReportPeerBurst/ReportPeerInterval limit reports per origin peer
	// (0: 32 and 2s); ReportIDBurst/ReportIDInterval per consumer
	// identity (0: 8 and 1m).
	ReportPeerBurst    int
	ReportPeerInterval time.Duration
	ReportIDBurst      int
	ReportIDInterval   time.Duration
	// OnBlacklist, when set, is called once for each provider newly
	// blacklisted (from gossip, sync or Publish).
	OnBlacklist func(provider common.Address)
	// Log receives the service's log lines; nil means slog.Default().
	Log *slog.Logger
}

// Stats counts proof validation outcomes.
type Stats struct {
	// Accepted proofs were valid and convicted a new provider.
	Accepted uint64 `json:"accepted"`
	// Known proofs were valid but their provider was already blacklisted.
	Known uint64 `json:"known"`
	// RateLimited proofs came from an origin over its rate.
	RateLimited uint64 `json:"rate_limited"`
	// Invalid proofs were oversized, malformed or proved nothing.
	Invalid uint64 `json:"invalid"`
}

// Service is a node's fraud proof gossip, sync and blacklist.
type Service struct {
	cfg   Config
	log   *slog.Logger
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	rate  *ratelimit.Keyed[peer.ID]
	serve *ratelimit.Keyed[peer.ID]
	pull  *ratelimit.Keyed[peer.ID]
	queue chan peer.ID
	found chan Proof // conflicts seen by discovery, to publish
	rep   *reports   // nil when reports are off

	accepted, known, limited, invalid atomic.Uint64

	notifiee *network.NotifyBundle
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
}

// New joins the proof topic with its validator, serves SyncProtocol and
// pulls proofs from every peer the host connects to. Close stops it.
func New(cfg Config) (*Service, error) {
	if cfg.ChainID == 0 || cfg.Host == nil || cfg.PubSub == nil || cfg.Store == nil {
		return nil, errors.New("quality: chain id, host, pubsub and store are required")
	}
	cfg.RateBurst = defaults.Positive(cfg.RateBurst, 4)
	cfg.RateInterval = defaults.Positive(cfg.RateInterval, time.Minute)
	log := cmp.Or(cfg.Log, slog.Default())
	s := &Service{
		cfg: cfg, log: log,
		rate:  ratelimit.Every[peer.ID](cfg.RateInterval, cfg.RateBurst, maxBuckets),
		serve: ratelimit.Every[peer.ID](syncEvery, syncBurst, maxBuckets),
		pull:  ratelimit.Every[peer.ID](syncEvery, 1, maxBuckets),
		queue: make(chan peer.ID, syncQueue),
		found: make(chan Proof, 16),
	}
	name := TopicName(cfg.ChainID)
	if err := cfg.PubSub.RegisterTopicValidator(name, s.validate); err != nil {
		return nil, fmt.Errorf("quality: register validator: %w", err)
	}
	var err error
	if s.topic, err = cfg.PubSub.Join(name); err != nil {
		_ = cfg.PubSub.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("quality: join %s: %w", name, err)
	}
	// Every invalid proof a peer forwards costs it, as on the proposal
	// topic (discovery's scoring).
	if err := s.topic.SetScoreParams(p2p.InvalidMessageScore()); err != nil {
		log.Debug("quality: topic scoring not enabled", "err", err)
	}
	if s.sub, err = s.topic.Subscribe(); err != nil {
		_ = s.topic.Close()
		_ = cfg.PubSub.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("quality: subscribe %s: %w", name, err)
	}
	if cfg.Backing != nil {
		if err := s.startReports(); err != nil {
			s.sub.Cancel()
			_ = s.topic.Close()
			_ = cfg.PubSub.UnregisterTopicValidator(name)
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	cfg.Host.SetStreamHandler(SyncProtocol, s.serveSync)
	if s.rep != nil {
		cfg.Host.SetStreamHandler(ReportSyncProtocol, s.serveReports)
	}
	s.notifiee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		select {
		case s.queue <- c.RemotePeer():
		default: // busy: this peer is pulled from on a later connection
		}
	}}
	cfg.Host.Network().Notify(s.notifiee)
	// Peers connected before the service started (a host that dials its
	// bootstrap or relay peers at construction) are pulled from too.
	for _, p := range cfg.Host.Network().Peers() {
		select {
		case s.queue <- p:
		default:
		}
	}
	s.wg.Add(3)
	go s.receive(ctx)
	go s.puller(ctx)
	go s.publisher(ctx)
	if s.rep != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.rep.receive(ctx) }()
	}
	return s, nil
}

// Close stops gossip, sync and the pulls; the host and router stay up.
func (s *Service) Close() error {
	s.once.Do(func() {
		s.cfg.Host.Network().StopNotify(s.notifiee)
		s.cfg.Host.RemoveStreamHandler(SyncProtocol)
		s.cfg.Host.RemoveStreamHandler(ReportSyncProtocol)
		s.sub.Cancel()
		if s.rep != nil {
			s.rep.sub.Cancel()
		}
		s.cancel()
		s.wg.Wait()
		_ = s.topic.Close()
		_ = s.cfg.PubSub.UnregisterTopicValidator(TopicName(s.cfg.ChainID))
		if s.rep != nil {
			_ = s.rep.topic.Close()
			_ = s.cfg.PubSub.UnregisterTopicValidator(ReportTopicName(s.cfg.ChainID))
		}
	})
	return nil
}

// Blocked reports whether provider is blacklisted.
func (s *Service) Blocked(provider common.Address) bool { return s.cfg.Store.Blocked(provider) }

// Stats returns the validation counters.
func (s *Service) Stats() Stats {
	return Stats{Accepted: s.accepted.Load(), Known: s.known.Load(), RateLimited: s.limited.Load(), Invalid: s.invalid.Load()}
}

// checked is a proof that passed the validator, handed to receive.
type checked struct {
	provider common.Address
	raw      []byte
}

// validate is the topic validator: size first, then the origin's rate,
// then the full decode and verification; a proof convicting an identity
// already blacklisted is dropped without forwarding (the network has it).
func (s *Service) validate(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if len(msg.Data) > MaxProofSize {
		s.invalid.Add(1)
		return pubsub.ValidationReject
	}
	if from := msg.GetFrom(); from != s.cfg.Host.ID() && !s.rate.Allow(from, time.Now()) {
		s.limited.Add(1)
		return pubsub.ValidationIgnore
	}
	p, provider, err := DecodeProof(msg.Data)
	if err != nil {
		s.invalid.Add(1)
		return pubsub.ValidationReject
	}
	if err := s.checkChain(&p); err != nil {
		s.invalid.Add(1)
		return pubsub.ValidationReject
	}
	if s.cfg.Store.Blocked(provider) {
		s.known.Add(1)
		return pubsub.ValidationIgnore
	}
	msg.ValidatorData = checked{provider: provider, raw: msg.Data}
	return pubsub.ValidationAccept
}

func (s *Service) checkChain(p *Proof) error {
	if c := p.Proposals[0].Proposal.ChainID; c != s.cfg.ChainID {
		return invalid("proof about chain %d, want %d", c, s.cfg.ChainID)
	}
	return nil
}

// receive stores accepted proofs until ctx ends.
func (s *Service) receive(ctx context.Context) {
	defer s.wg.Done()
	p2p.ReceiveValidated(ctx, s.sub, func(c checked, _ *pubsub.Message) {
		if _, err := s.add(ctx, c.provider, c.raw); err != nil {
			s.log.Warn("quality: store proof", "provider", c.provider.Hex(), "err", err)
		}
	})
}

// add stores a verified proof and reports a new conviction.
func (s *Service) add(ctx context.Context, provider common.Address, raw []byte) (bool, error) {
	added, err := s.cfg.Store.Put(ctx, provider, raw)
	if err != nil || !added {
		return false, err
	}
	s.accepted.Add(1)
	s.log.Warn("quality: provider blacklisted by fraud proof", "provider", provider.Hex())
	if s.cfg.OnBlacklist != nil {
		s.cfg.OnBlacklist(provider)
	}
	return true, nil
}

// Publish verifies p, stores it (durably) and publishes it on the topic.
// It returns the convicted provider; a provider already blacklisted is
// not published again.
func (s *Service) Publish(ctx context.Context, p Proof) (common.Address, error) {
	provider, err := p.Verify()
	if err != nil {
		return common.Address{}, err
	}
	if err := s.checkChain(&p); err != nil {
		return common.Address{}, err
	}
	raw, err := p.Encode()
	if err != nil {
		return common.Address{}, err
	}
	if s.cfg.Store.Blocked(provider) {
		return provider, nil
	}
	// Publish before storing: the validator drops proofs of identities
	// already blacklisted, this node's own included.
	if err := s.topic.Publish(ctx, raw); err != nil {
		return provider, fmt.Errorf("quality: publish proof: %w", err)
	}
	if _, err := s.add(ctx, provider, raw); err != nil {
		return provider, err
	}
	return provider, nil
}

// ReportConflict publishes the proof that a and b, two verified
// proposals of one provider with one sequence number, conflict. It never
// blocks (discovery calls it from its validator): the proof is built and
// published from the service's own goroutine, and dropped when 16 are
// already waiting.
func (s *Service) ReportConflict(a, b market.SignedProposal) {
	if s.Blocked(a.Proposal.ProviderID) {
		return
	}
	p, err := NewConflict(a, b)
	if err != nil {
		s.log.Debug("quality: not a conflict", "err", err)
		return
	}
	select {
	case s.found <- p:
	default:
	}
}

// ReportOvercharge publishes the proof that inv, refused by this node's
// consumer, overcharges at the price of sp, the signed proposal its
// session was opened on. It returns ErrInvalidProof (wrapped) when the
// invoice does not prove it (a v1 invoice, or one consistent with its own
// usage: the provider then lied about time or bytes, which only the
// consumer can see).
func (s *Service) ReportOvercharge(ctx context.Context, sp market.SignedProposal, inv *payments.Invoice) (common.Address, error) {
	p, err := NewOvercharge(sp, inv)
	if err != nil {
		return common.Address{}, err
	}
	return s.Publish(ctx, p)
}

// publisher publishes the conflicts ReportConflict queued until ctx ends.
func (s *Service) publisher(ctx context.Context) {
	defer s.wg.Done()
	each(ctx, s.found, func(p Proof) {
		if provider, err := s.Publish(ctx, p); err != nil {
			s.log.Warn("quality: publish conflict proof", "provider", provider.Hex(), "err", err)
		}
	})
}

// each calls fn with every value ch delivers until ctx ends; it never
// calls fn after (when both are ready, the end wins).
func each[T any](ctx context.Context, ch <-chan T, fn func(T)) {
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-ch:
			if ctx.Err() != nil {
				return
			}
			fn(v)
		}
	}
}

func (s *Service) serveSync(st network.Stream) {
	defer st.Close()
	if !s.serve.Allow(st.Conn().RemotePeer(), time.Now()) {
		_ = st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(syncTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	raws, err := s.cfg.Store.Proofs(ctx, MaxProofs)
	if err != nil {
		s.log.Warn("quality: sync serve", "err", err)
		_ = st.Reset()
		return
	}
	_ = p2p.WriteFrames(st, raws)
}

// SyncFrom pulls every proof p holds, verifies each and stores the new
// ones; it returns how many providers were newly blacklisted. A peer that
// sends anything invalid is cut off at once.
func (s *Service) SyncFrom(ctx context.Context, p peer.ID) (int, error) {
	added := 0
	err := s.pullFrames(ctx, p, SyncProtocol, MaxProofs, MaxProofSize, func(ctx context.Context, raw []byte) error {
		proof, provider, err := DecodeProof(raw)
		if err == nil {
			err = s.checkChain(&proof)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errBadPeer, err)
		}
		ok, err := s.add(ctx, provider, raw)
		if err != nil {
			return err // local store failure, not the peer's fault
		}
		if ok {
			added++
		} else {
			s.known.Add(1)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, errBadPeer) {
			s.invalid.Add(1)
		}
		return added, fmt.Errorf("quality: sync with %s: %w", p, err)
	}
	return added, nil
}

// pullFrames opens proto with p (bounded by syncTimeout), reads at most maxItems
// frames of at most maxSize bytes and hands each to fn. When fn refuses a
// frame with errBadPeer, or a frame is over the limits (then wrapped in
// errBadPeer), the stream is reset: the peer is cut off (p2p.PullFrames).
func (s *Service) pullFrames(ctx context.Context, p peer.ID, proto protocol.ID, maxItems int, maxSize uint32, fn func(ctx context.Context, raw []byte) error) error {
	err := p2p.PullFrames(ctx, s.cfg.Host, p, proto, syncTimeout, maxItems, maxSize, fn)
	if errors.Is(err, p2p.ErrFrameLimit) {
		err = fmt.Errorf("%w: %w", errBadPeer, err)
	}
	return err
}

// puller pulls proofs from newly connected peers, one at a time, each
// peer at most once per syncEvery, until ctx ends.
func (s *Service) puller(ctx context.Context) {
	defer s.wg.Done()
	each(ctx, s.queue, func(p peer.ID) {
		// Give identify a moment so the peer's protocols are known.
		ok := false
		for i := 0; i < 20 && !ok; i++ {
			if ok = s.supports(p, SyncProtocol); !ok {
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		if !ok || !s.pull.Allow(p, time.Now()) {
			return
		}
		if n, err := s.SyncFrom(ctx, p); err != nil {
			s.log.Debug("quality: sync", "peer", p.String(), "err", err)
		} else if n > 0 {
			s.log.Info("quality: fraud proofs pulled", "peer", p.String(), "new", n)
		}
		if s.rep == nil || !s.supports(p, ReportSyncProtocol) {
			return
		}
		if n, err := s.SyncReportsFrom(ctx, p); err != nil {
			s.log.Debug("quality: report sync", "peer", p.String(), "err", err)
		} else if n > 0 {
			s.log.Info("quality: reports pulled", "peer", p.String(), "counted", n)
		}
	})
}

// supports reports whether p announced proto (peers that do not, such as
// plain DHT nodes, are not asked).
func (s *Service) supports(p peer.ID, proto protocol.ID) bool {
	protos, err := s.cfg.Host.Peerstore().SupportsProtocols(p, proto)
	return err == nil && len(protos) > 0
}

// startReports joins the report topic with its validator.
func (s *Service) startReports() error {
	cfg := s.cfg
	if cfg.Scorer == nil {
		cfg.Scorer = NewScorer(ScorerConfig{})
	}
	pb := defaults.Positive(cfg.ReportPeerBurst, 32)
	pi := defaults.Positive(cfg.ReportPeerInterval, 2*time.Second)
	ib := defaults.Positive(cfg.ReportIDBurst, 8)
	ii := defaults.Positive(cfg.ReportIDInterval, time.Minute)
	q := &reports{
		backing: cfg.Backing, scorer: cfg.Scorer, now: time.Now,
		byPeer: ratelimit.Every[peer.ID](pi, pb, maxBuckets),
		byID:   ratelimit.Every[common.Address](ii, ib, maxBuckets),
		serve:  ratelimit.Every[peer.ID](syncEvery, syncBurst, maxBuckets),
		seen:   map[[32]byte]int64{},
	}
	name := ReportTopicName(cfg.ChainID)
	self := cfg.Host.ID()
	if err := cfg.PubSub.RegisterTopicValidator(name, func(ctx context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		return q.validate(ctx, self, cfg.ChainID, msg)
	}); err != nil {
		return fmt.Errorf("quality: register report validator: %w", err)
	}
	var err error
	if q.topic, err = cfg.PubSub.Join(name); err != nil {
		_ = cfg.PubSub.UnregisterTopicValidator(name)
		return fmt.Errorf("quality: join %s: %w", name, err)
	}
	if err := q.topic.SetScoreParams(p2p.InvalidMessageScore()); err != nil {
		s.log.Debug("quality: report topic scoring not enabled", "err", err)
	}
	if q.sub, err = q.topic.Subscribe(); err != nil {
		_ = q.topic.Close()
		_ = cfg.PubSub.UnregisterTopicValidator(name)
		return fmt.Errorf("quality: subscribe %s: %w", name, err)
	}
	s.rep = q
	return nil
}
