package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/ratelimit"
)

// historyGossip is how many heartbeats a message's id is gossiped
// (IHAVE) after it was first seen: a node that joins within that window
// can still pull the message through gossip (IWANT), after it only
// through the sync protocol or the next re-announce.
const historyGossip = 6

// SyncProtocol is the stream protocol a late joiner uses to pull the
// current announcements from a peer: the responder writes each as a
// 4-byte big-endian length and the bytes, then closes the stream.
const SyncProtocol protocol.ID = "/openmyst/proposals/sync/1.0.0"

// Per-peer limit on serving sync.
const (
	syncBurst = 10
	syncEvery = 6 * time.Second
)

// maxSyncItems bounds one sync response.
const maxSyncItems = 4096

// Config configures a Service.
type Config struct {
	// Validator settings; ChainID selects the topic too.
	ValidatorConfig
	// Log receives the service's log lines; nil means slog.Default().
	Log *slog.Logger
	// Bootstrapper marks a node that others join through: it answers with
	// peer exchange on GossipSub prunes so joiners find each other.
	Bootstrapper bool
	// HeartbeatInterval is GossipSub's heartbeat; 0 keeps its default (1s).
	HeartbeatInterval time.Duration
	// SyncTimeout bounds one sync exchange; 0 means 10s.
	SyncTimeout time.Duration
}

// Service is a node's proposal gossip: topic, validator, cache and sync.
type Service struct {
	host   host.Host
	log    *slog.Logger
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	val    *Validator
	cache  *Cache
	syncTO time.Duration

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	syncLimit *ratelimit.Keyed[peer.ID] // per requesting peer
	// syncWait leaves the peers whose syncs failed alone for a while
	// (SyncConnected); now is its clock.
	syncWait *syncBackoff
	now      func() time.Time

	scoreMu sync.Mutex
	scores  map[peer.ID]float64

	closeOnce sync.Once
}

// scoring returns GossipSub peer-score parameters: every invalid message a
// peer forwards on the topic costs it (count^2 * 10) points, decaying over
// an hour; at -100 it gets no gossip, at -500 we stop publishing to it, at
// -1000 (10 invalid messages) everything from it is dropped unread.
func scoring(topic string) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	return &pubsub.PeerScoreParams{
			SkipAtomicValidation: true,
			Topics: map[string]*pubsub.TopicScoreParams{
				topic: p2p.InvalidMessageScore(),
			},
			AppSpecificScore: func(peer.ID) float64 { return 0 },
			DecayInterval:    time.Second,
			DecayToZero:      0.01,
			RetainScore:      time.Hour,
		}, &pubsub.PeerScoreThresholds{
			SkipAtomicValidation: true,
			GossipThreshold:      -100,
			PublishThreshold:     -500,
			GraylistThreshold:    -1000,
		}
}

// New starts proposal gossip on h: joins the chain's topic with the
// validator, subscribes, and serves SyncProtocol. Close stops it.
func New(h host.Host, cfg Config) (*Service, error) {
	if cfg.ChainID == 0 {
		return nil, errors.New("discovery: missing chain id")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		host:   h,
		log:    log,
		cache:  NewCache(cfg.Now),
		cancel: cancel,
		syncTO: cfg.SyncTimeout,
		scores: map[peer.ID]float64{},
		// A peer may pull the whole cache syncBurst times at once, then
		// once per syncEvery.
		syncLimit: newRateLimiter(syncBurst, syncEvery),
		syncWait:  newSyncBackoff(syncRetry, maxSyncBackoff),
		now:       cfg.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.syncTO == 0 {
		s.syncTO = 10 * time.Second
	}
	s.cache.blocked, s.cache.quality = cfg.Blocked, cfg.Quality
	s.val = NewValidator(cfg.ValidatorConfig, s.cache)
	topic := TopicName(cfg.ChainID)
	params, thresholds := scoring(topic)
	gp := pubsub.DefaultGossipSubParams()
	// Proposals are few and small: gossip their ids wider and longer so a
	// node outside every mesh still learns of an update within a few
	// heartbeats instead of waiting for the next re-announce.
	gp.Dlazy = 12
	gp.GossipFactor = 0.5
	gp.HistoryLength = 10
	gp.HistoryGossip = historyGossip
	if cfg.HeartbeatInterval > 0 {
		gp.HeartbeatInterval = cfg.HeartbeatInterval
	}
	opts := []pubsub.Option{
		pubsub.WithGossipSubParams(gp),
		pubsub.WithPeerExchange(cfg.Bootstrapper),
		// A node's own announcements go to every topic peer, not only its
		// mesh: faster first hop and harder to eclipse. They are rare.
		pubsub.WithFloodPublish(true),
		// Accept larger frames than MaxMessageSize so oversized announcements
		// reach the validator and are counted and penalised, not dropped silently.
		pubsub.WithMaxMessageSize(64 << 10),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(s.inspect), time.Second),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
	}
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("discovery: start gossipsub: %w", err)
	}
	s.ps = ps
	if err := ps.RegisterTopicValidator(topic, s.val.pubsubValidator); err != nil {
		cancel()
		return nil, fmt.Errorf("discovery: register validator: %w", err)
	}
	if s.topic, err = ps.Join(topic); err != nil {
		cancel()
		return nil, fmt.Errorf("discovery: join %s: %w", topic, err)
	}
	if s.sub, err = s.topic.Subscribe(); err != nil {
		cancel()
		return nil, fmt.Errorf("discovery: subscribe %s: %w", topic, err)
	}
	h.SetStreamHandler(SyncProtocol, s.serveSync)
	s.wg.Add(1)
	go s.receive(ctx)
	return s, nil
}

func (s *Service) inspect(m map[peer.ID]float64) {
	s.scoreMu.Lock()
	s.scores = m
	s.scoreMu.Unlock()
}

// receive moves accepted announcements into the cache until ctx ends.
func (s *Service) receive(ctx context.Context) {
	defer s.wg.Done()
	p2p.ReceiveValidated(ctx, s.sub, func(a *Announcement, msg *pubsub.Message) {
		if s.cache.Put(*a, msg.Data) {
			p := &a.Proposal.Proposal
			s.log.Debug("discovery: proposal", "provider", p.ProviderID.Hex(), "seq", p.Seq, "withdrawn", p.Withdrawn)
		}
	})
}

// PubSub is the node's GossipSub router, shared with other topics (fraud
// proofs, package quality).
func (s *Service) PubSub() *pubsub.PubSub { return s.ps }

// Cache is the node's proposal cache.
func (s *Service) Cache() *Cache { return s.cache }

// Stats returns the validation counters.
func (s *Service) Stats() Stats { return s.val.Stats() }

// Validator is the node's validator (its counters are Stats).
func (s *Service) Validator() *Validator { return s.val }

// TopicPeers are the connected peers subscribed to the proposal topic.
func (s *Service) TopicPeers() []peer.ID { return s.topic.ListPeers() }

// PeerScore is the latest GossipSub score of p (sampled every second).
func (s *Service) PeerScore(p peer.ID) (float64, bool) {
	s.scoreMu.Lock()
	defer s.scoreMu.Unlock()
	v, ok := s.scores[p]
	return v, ok
}

// Publish sends an encoded announcement on the topic. It passes the local
// validator first, so an invalid one is refused with an error.
func (s *Service) Publish(ctx context.Context, raw []byte) error {
	return s.publish(ctx, raw, false)
}

// publish sends raw; with waitPeer it first waits (bounded by ctx) until
// the node has a topic peer, so a just-started node's announcement is not
// published into the void.
func (s *Service) publish(ctx context.Context, raw []byte, waitPeer bool) error {
	var opts []pubsub.PubOpt
	if waitPeer {
		opts = append(opts, pubsub.WithReadiness(pubsub.MinTopicSize(1)))
	}
	if err := s.topic.Publish(ctx, raw, opts...); err != nil {
		return fmt.Errorf("discovery: publish: %w", err)
	}
	return nil
}

// Close stops the subscription, the sync handler and GossipSub. The host
// stays up (its owner closes it).
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.host.RemoveStreamHandler(SyncProtocol)
		s.sub.Cancel()
		s.cancel()
		s.wg.Wait()
		_ = s.topic.Close()
	})
	return nil
}

func (s *Service) serveSync(st network.Stream) {
	defer st.Close()
	if !s.syncLimit.Allow(st.Conn().RemotePeer(), time.Now()) {
		_ = st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(s.syncTO))
	if err := p2p.WriteFrames(st, s.cache.raws(maxSyncItems)); err != nil {
		s.log.Debug("discovery: sync serve", "peer", st.Conn().RemotePeer().String(), "err", err)
	}
}

// SyncFrom pulls p's current announcements, validates each (counted in
// Stats like gossip) and caches the valid ones. It returns how many were
// new. A peer that sends anything invalid is cut off.
func (s *Service) SyncFrom(ctx context.Context, p peer.ID) (int, error) {
	added := 0
	err := p2p.PullFrames(ctx, s.host, p, SyncProtocol, s.syncTO, maxSyncItems, MaxMessageSize, func(_ context.Context, raw []byte) error {
		a, reason, err := s.val.Check(raw, "")
		switch {
		case reason == ReasonAccepted:
			if s.cache.Put(a, raw) {
				added++
			}
		case reason.Reject():
			return err
		}
		return nil
	})
	if errors.Is(err, p2p.ErrFrameTooLarge) {
		s.val.counts[ReasonOversized].Add(1)
	}
	if err != nil {
		return added, fmt.Errorf("discovery: sync with %s: %w", p, err)
	}
	return added, nil
}

// SyncConnected syncs from up to max connected topic peers (or any
// connected peers if none has announced the topic yet) and returns how many
// announcements were new. The peers are synced concurrently, each bounded
// by ctx: a peer that never answers (unreachable behind a tun kill switch,
// overloaded, malicious) costs the others none of ctx's time. A peer whose
// syncs failed is skipped (another asked instead) until its backoff
// (syncRetry) has passed, so that callers polling for proposals do not ask
// a refusing or silent peer again at their own pace.
func (s *Service) SyncConnected(ctx context.Context, max int) int {
	peers := s.topic.ListPeers()
	if len(peers) == 0 {
		peers = s.host.Network().Peers()
	}
	now := s.now()
	ready := peers[:0:0]
	for _, p := range peers {
		if s.syncWait.ready(p, now) {
			ready = append(ready, p)
		}
	}
	peers = ready
	if len(peers) > max {
		peers = peers[:max]
	}
	var (
		wg    sync.WaitGroup
		total atomic.Int64
	)
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.SyncFrom(ctx, p)
			switch {
			case err == nil:
				s.syncWait.succeeded(p)
			case callerDone(ctx):
				// The caller gave up or its deadline passed (a loaded
				// machine, a short poll): not the peer's failure.
			default:
				d := s.syncWait.failed(p, s.now())
				s.log.Debug("discovery: sync", "peer", p.String(), "err", err, "next_in", d)
			}
			total.Add(int64(n))
		}()
	}
	wg.Wait()
	return int(total.Load())
}

// callerDone reports whether ctx has ended or its deadline has passed.
// The sync's stream carries ctx's deadline, so its read can time out a
// moment before ctx's own timer marks ctx done: checking ctx.Err() alone
// would then blame the peer for the caller's deadline.
func callerDone(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
