package hermes

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/ratelimit"
)

// Config configures a hermes Service.
type Config struct {
	// ChainID is the chain every message must be bound to.
	ChainID *big.Int
	// HermesID is this hermes's contract address.
	HermesID common.Address
	// Operator signs the hermes promises to providers.
	Operator identity.Signer
	// FeeBasisPoints is the hermes fee the contract deducts when a provider
	// settles (reported by the info endpoint).
	FeeBasisPoints uint16
	// MinConsumerFee is the lowest transactor fee a consumer promise may
	// carry (it pays the hermes's settlement gas); nil means 0.
	MinConsumerFee *big.Int
	// ProviderPromiseFee is the transactor fee put on hermes promises; nil
	// means 0.
	ProviderPromiseFee *big.Int
	// MaxUnrevealed caps how many of a provider's promises may wait for
	// their secret R before it gets new ones (the hermes's exposure); 0
	// means no cap.
	MaxUnrevealed int
	// SettleThreshold is the smallest revealed, unsettled consumer amount
	// worth a settlement transaction; nil means 1.
	SettleThreshold *big.Int
	// SettleInterval is how often the settlement worker runs (default 30s).
	SettleInterval time.Duration
	// SettleLeaseTTL is how long one hermes process keeps the settlement
	// lease without renewing it (default 2×SettleInterval + 1m). Processes
	// sharing a store settle one at a time: whoever holds the lease; the
	// others take over when it runs out (its holder stopped or died).
	SettleLeaseTTL time.Duration
	// ChannelCacheTTL bounds how long an on-chain channel read is trusted
	// without an event (default 1m).
	ChannelCacheTTL time.Duration
	// Limits bound what strangers can make the hermes spend (memory, chain
	// reads, CPU); zero fields take the defaults.
	Limits Limits
	// clock replaces time.Now for cache ages and rate limits (tests).
	clock func() time.Time
	// MaxBatch caps accepts per group commit (default 512).
	MaxBatch int
	// Committers is how many group commits may run at once, each on its
	// own store connection (default: what the store supports, see
	// store.Committers; 1 for SQLite, 2 for PostgreSQL). A provider's
	// accepts always go to the same committer, so they reach the store in
	// order; a consumer has at most one accept in flight. More than one
	// helps only a store whose Commit runs concurrently (PostgreSQL: its
	// commits are network round trips and a server fsync, which several
	// connections overlap); SQLite has a single writer.
	Committers int
	// CommitDelay is the longest a group committer holds a batch back for
	// more accepts: while requests that have passed their signature checks
	// are about to queue to it (see expect), and, when its previous commit
	// took several accepts (a stream), for the stream's next ones. A
	// commit costs the store a round trip or an fsync and CPU whatever its
	// size (PostgreSQL: ~0.25 ms of server CPU per commit). 0 means
	// DefaultCommitDelay; negative means never wait.
	CommitDelay time.Duration
	// CPUSlots is how many requests may run their CPU-bound part
	// (signature checks, rules, signing) at once; 0 means the default:
	// GOMAXPROCS-1 (at least 1) for a store that commits in this process
	// (SQLite: its group commit is CPU work here, and one processor is
	// kept for it), GOMAXPROCS for one whose commits run on several
	// connections to a server (PostgreSQL: a commit here mostly waits for
	// the server, and with one slot on 2 cores the signature checks of
	// 5,000 msg/s queued behind each other).
	CPUSlots int
	// Log receives operational logs; nil means slog.Default().
	Log *slog.Logger
	// Metrics receives measurements; nil means unregistered instruments.
	Metrics *Metrics
}

// Limits are the hermes's defences against floods. The zero value means
// the defaults, which `myst hermes` exposes as flags.
type Limits struct {
	// NegativeCacheTTL is how long a negative chain answer (the identity is
	// not registered, or has no channel with this hermes) is remembered, so
	// a flood of messages from an unregistered key costs one chain read per
	// TTL (default 10s). A consumer that has just registered waits at most
	// this long (or until a top-up event of its channel) to be accepted.
	NegativeCacheTTL time.Duration
	// MaxTracked caps each in-memory map keyed by remote input: cached
	// channel reads, consumers' and providers' cached state, and the
	// per-source and per-identity rate limiters. The least recently used
	// entry is forgotten first (state is reloaded from the store, a limiter
	// restarts full). 0 means DefaultMaxTracked (65,536).
	MaxTracked int
	// SourceRate and SourceBurst limit the HTTP API requests of one source
	// address (an IPv4 address or an IPv6 /64): SourceBurst at once,
	// refilled at SourceRate per second; over it the API answers 429
	// rate_limited with Retry-After. 0 means the defaults
	// (DefaultSourceRate, DefaultSourceBurst); a negative SourceRate turns
	// the limit off.
	SourceRate  float64
	SourceBurst int
	// RejectPenalty is how many more tokens an exchange or reveal
	// rejected as junk or from a stranger (bad_request, bad_signature,
	// not_registered, wrong_chain, wrong_hermes, wrong_channel, bad_fee,
	// bad_preimage) takes from its source's bucket, so a source that sends
	// such requests is slowed to SourceRate/(1+RejectPenalty). 0 means
	// DefaultRejectPenalty; a negative value means none.
	RejectPenalty int
	// IdentityRate and IdentityBurst limit the exchange messages of one
	// consumer identity that are not identical replays (checked under the
	// consumer's lock, once its state is known): IdentityBurst at once,
	// refilled at IdentityRate per second. 0 means the defaults
	// (DefaultIdentityRate, DefaultIdentityBurst); a negative IdentityRate
	// turns the limit off.
	IdentityRate  float64
	IdentityBurst int
}

// Result is the answer to an exchange message.
type Result struct {
	// Promise is the operator-signed promise on the provider's channel.
	Promise payments.Promise
	// Replayed is true when the message had been accepted before and the
	// stored promise is returned unchanged.
	Replayed bool
}

type agreementKey struct {
	provider common.Address
	id       string
}

// consumerState is the in-memory copy of one consumer's store state. mu is
// held from the first read until the accept has committed, which
// serializes a consumer's accepts in this process: a consumer has at most
// one accept in flight, and when it fails the waiter drops the state
// (loaded = false) before releasing mu.
type consumerState struct {
	mu         sync.Mutex
	loaded     bool // c and agreements hold the store's state
	c          store.Consumer
	agreements map[agreementKey]*big.Int
}

// providerState is the in-memory copy of one provider's store state. mu is
// held while an accept reads it and queues its op, not until the commit:
// several of a provider's accepts may be in flight, all on the provider's
// one committer, in order, each extending the state the one before left.
type providerState struct {
	mu sync.Mutex
	// epoch is bumped (by the committer, which must not take mu) when a
	// commit holding one of the provider's accepts fails: the state and
	// every op queued after that accept extend a version never stored.
	epoch atomic.Uint64
	// loaded is set when p holds the store's state as of epoch loadedAt.
	loaded   bool
	loadedAt uint64
	p        store.Provider
	// refreshed is when Unrevealed was last re-read at the limit.
	refreshed time.Time
}

// unrevealedRefresh is how often a provider at MaxUnrevealed may have its
// unrevealed count re-read from the store (reveals sent to another hermes
// process only show there); a provider that never reveals cannot turn
// every request into a store query.
const unrevealedRefresh = time.Second

type op struct {
	a store.Accept
	// ps is the provider's state (held in its cache until the op is
	// answered) and epoch its epoch when the op was queued.
	ps    *providerState
	epoch uint64
	done  chan error
}

type channelEntry struct {
	info ChannelInfo
	at   time.Time
}

// Rate limit defaults (see Limits). An honest provider posts one message
// per session every few seconds and an honest consumer pays a handful of
// sessions at once, so these leave ample room for many providers behind
// one address and for a consumer with dozens of sessions.
const (
	DefaultSourceRate    = 100
	DefaultSourceBurst   = 200
	DefaultRejectPenalty = 10
	DefaultIdentityRate  = 20
	DefaultIdentityBurst = 100
	// DefaultCommitDelay is the default of Config.CommitDelay.
	DefaultCommitDelay = 2 * time.Millisecond
	// DefaultNegativeCacheTTL is the default of Limits.NegativeCacheTTL.
	DefaultNegativeCacheTTL = 10 * time.Second
)

// Service is the hermes payment hub. Create it with New, run its
// background work with Run, and serve Handler.
type Service struct {
	cfg   Config
	st    store.Store
	chain Chain
	log   *slog.Logger
	m     *Metrics

	consumers *stateCache[consumerState]
	providers *stateCache[providerState]
	// consumerLoads and providerLoads read the state of identities not in
	// memory, many per store call, when the store is a store.BatchLoader
	// (nil otherwise: one Consumer or Provider call per identity).
	consumerLoads *coalescer[common.Address, store.ConsumerState]
	providerLoads *coalescer[common.Address, store.Provider]

	chMu    sync.Mutex
	chCache *simplelru.LRU[common.Address, channelEntry] // positive and negative answers
	chRead  singleflight.Group                           // one chain read per consumer at a time

	sources    *ratelimit.Keyed[netip.Addr]     // per source address (HTTP)
	tarpit     chan struct{}                    // rate-limited answers held back (see limitSource)
	identities *ratelimit.Keyed[common.Address] // per consumer identity
	now        func() time.Time                 // the clock for cache ages and limits

	// settleMu makes settlement passes (the worker's and SettleOnce
	// callers') run one at a time, so two never send the same promise.
	settleMu sync.Mutex
	// holder names this Service as a holder of the store's settlement
	// lease (random, so two processes never share it).
	holder string

	// cpu admits CPUSlots requests at a time into their CPU-bound part
	// (signature checks, rules, signing), so hundreds of concurrent
	// requests do not fill the scheduler's run queue in front of the
	// committer: with SQLite one P stays free for group commits, which
	// otherwise stall behind the queue after each of their syscalls
	// (measured: +30% throughput and a third of the p99 on 2 cores).
	cpu chan struct{}

	commits  []*committer  // one per committer; see committerFor
	stopOnce sync.Once     // closes stopping
	stopping chan struct{} // closed when the committers stop taking ops
	stopped  chan struct{} // closed when no op will ever be committed again
	running  atomic.Bool
}

// New returns a Service over st and chain. Call Run before serving.
func New(cfg Config, st store.Store, chain Chain) (*Service, error) {
	if cfg.ChainID == nil || cfg.ChainID.Sign() <= 0 {
		return nil, errors.New("hermes: config needs a positive chain id")
	}
	if cfg.Operator == nil {
		return nil, errors.New("hermes: config needs an operator signer")
	}
	if cfg.HermesID == (common.Address{}) {
		return nil, errors.New("hermes: config needs the hermes contract address")
	}
	if cfg.MinConsumerFee == nil {
		cfg.MinConsumerFee = new(big.Int)
	}
	if cfg.ProviderPromiseFee == nil {
		cfg.ProviderPromiseFee = new(big.Int)
	}
	if cfg.SettleThreshold == nil || cfg.SettleThreshold.Sign() <= 0 {
		cfg.SettleThreshold = big.NewInt(1)
	}
	if cfg.SettleInterval <= 0 {
		cfg.SettleInterval = 30 * time.Second
	}
	if cfg.SettleLeaseTTL <= 0 {
		cfg.SettleLeaseTTL = 2*cfg.SettleInterval + time.Minute
	}
	if cfg.ChannelCacheTTL <= 0 {
		cfg.ChannelCacheTTL = time.Minute
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.Committers <= 0 {
		cfg.Committers = store.Committers(st)
	}
	if cfg.CommitDelay == 0 {
		cfg.CommitDelay = DefaultCommitDelay
	}
	if cfg.CPUSlots <= 0 {
		cfg.CPUSlots = defaultCPUSlots(st)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.clock == nil {
		cfg.clock = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	chCache, err := simplelru.NewLRU[common.Address, channelEntry](cfg.Limits.MaxTracked, nil)
	if err != nil {
		return nil, fmt.Errorf("hermes: channel cache: %w", err)
	}
	s := &Service{
		cfg: cfg, st: st, chain: chain, log: cfg.Log, m: cfg.Metrics,
		consumers:  newStateCache[consumerState](cfg.Limits.MaxTracked),
		providers:  newStateCache[providerState](cfg.Limits.MaxTracked),
		chCache:    chCache,
		sources:    ratelimit.New[netip.Addr](limitOf(cfg.Limits.SourceRate), cfg.Limits.SourceBurst, cfg.Limits.MaxTracked),
		identities: ratelimit.New[common.Address](limitOf(cfg.Limits.IdentityRate), cfg.Limits.IdentityBurst, cfg.Limits.MaxTracked),
		tarpit:     make(chan struct{}, maxTarpitted),
		now:        cfg.clock,
		cpu:        make(chan struct{}, cfg.CPUSlots),
		commits:    make([]*committer, cfg.Committers),
		stopping:   make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	if bl, ok := st.(store.BatchLoader); ok {
		s.consumerLoads = newCoalescer(store.MaxLoadBatch, stateLoadFetches, bl.LoadConsumers)
		s.providerLoads = newCoalescer(store.MaxLoadBatch, stateLoadFetches, bl.LoadProviders)
	}
	for i := range s.commits {
		s.commits[i] = &committer{ops: make(chan *op, 4*cfg.MaxBatch), kick: make(chan struct{}, 1)}
	}
	var hb [12]byte
	if _, err := rand.Read(hb[:]); err != nil {
		return nil, fmt.Errorf("hermes: lease holder id: %w", err)
	}
	host, _ := os.Hostname()
	s.holder = fmt.Sprintf("%s/%d/%x", host, os.Getpid(), hb)
	return s, nil
}

// stateLoadFetches is how many batch loads of consumers (and as many of
// providers) may run at once; the loads asked for meanwhile wait and go
// together in the next. When 1,000 consumers send their first message
// within 200 ms, each loading its state with its own statement cost the
// PostgreSQL server (on the same two cores as the signature checks) a
// statement's fixed cost per consumer; see docs/benchmarks.md.
const stateLoadFetches = 2

// defaultCPUSlots is Config.CPUSlots's default for st.
func defaultCPUSlots(st store.Store) int {
	if store.Committers(st) > 1 {
		return runtime.GOMAXPROCS(0)
	}
	return max(1, runtime.GOMAXPROCS(0)-1)
}

// withDefaults fills in the zero fields.
func (l Limits) withDefaults() Limits {
	if l.NegativeCacheTTL <= 0 {
		l.NegativeCacheTTL = DefaultNegativeCacheTTL
	}
	if l.MaxTracked <= 0 {
		l.MaxTracked = DefaultMaxTracked
	}
	if l.SourceRate == 0 {
		l.SourceRate = DefaultSourceRate
	}
	if l.SourceBurst <= 0 {
		l.SourceBurst = DefaultSourceBurst
	}
	if l.RejectPenalty == 0 {
		l.RejectPenalty = DefaultRejectPenalty
	}
	if l.IdentityRate == 0 {
		l.IdentityRate = DefaultIdentityRate
	}
	if l.IdentityBurst <= 0 {
		l.IdentityBurst = DefaultIdentityBurst
	}
	return l
}

// limitOf maps a configured rate to a limiter rate: negative is no limit.
func limitOf(perSecond float64) rate.Limit {
	if perSecond < 0 {
		return rate.Inf
	}
	return rate.Limit(perSecond)
}

// Config returns the effective configuration (defaults filled in).
func (s *Service) Config() Config { return s.cfg }

// Run runs the group committers, the chain event watcher and the
// settlement worker until ctx is done. It returns after all of them have
// stopped. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("hermes: Run called twice")
	}
	var wg, committers sync.WaitGroup
	for _, c := range s.commits {
		committers.Add(1)
		go func() { defer committers.Done(); s.commitLoop(ctx, c) }()
	}
	wg.Add(3)
	go func() { defer wg.Done(); committers.Wait(); close(s.stopped) }()
	go func() { defer wg.Done(); s.watchLoop(ctx) }()
	go func() { defer wg.Done(); s.settleLoop(ctx) }()
	wg.Wait()
	if s.consumerLoads != nil {
		s.consumerLoads.close()
		s.providerLoads.close()
	}
	return nil
}

// committer is one group committer's queue.
type committer struct {
	ops chan *op
	// coming counts the requests past their signature checks and state
	// loads whose accept will be queued here unless a rule rejects it:
	// while it is above zero the committer waits (at most CommitDelay)
	// for them to join its batch. See expect.
	coming atomic.Int64
	// kick wakes a waiting committer when coming drops to zero without
	// an op (a request rejected after expect).
	kick chan struct{}
}

// committerFor is the committer that owns provider's accepts.
func (s *Service) committerFor(provider common.Address) *committer {
	if len(s.commits) == 1 {
		return s.commits[0]
	}
	return s.commits[binary.BigEndian.Uint32(provider[16:])%uint32(len(s.commits))]
}

// expectation is a request counted in its committer's coming count
// until it queues its op or gives up.
type expectation struct {
	c *committer
}

// expect counts a request that is about to run its acceptance rules and
// queue an accept for provider: its committer's next batch waits for it
// (up to CommitDelay). A commit costs the store a round trip or an fsync
// and its own CPU whatever its size, so under load a few hundred
// microseconds spent waiting for accepts already on their way buy fewer,
// larger commits (PostgreSQL's commit_delay with commit_siblings, but
// waiting only for requests that are certain to arrive soon).
func (s *Service) expect(provider common.Address) *expectation {
	if s.cfg.CommitDelay <= 0 {
		return &expectation{}
	}
	c := s.committerFor(provider)
	c.coming.Add(1)
	return &expectation{c: c}
}

// done ends the expectation (once); queued reports whether its op was
// queued (which wakes the committer by itself).
func (e *expectation) done(queued bool) {
	if e.c == nil {
		return
	}
	if e.c.coming.Add(-1) == 0 && !queued {
		select {
		case e.c.kick <- struct{}{}:
		default:
		}
	}
	e.c = nil
}

// commitLoop is one group committer: it takes every op waiting in ops (up
// to MaxBatch) into one transaction, so one fsync acknowledges many
// accepts.
func (s *Service) commitLoop(ctx context.Context, c *committer) {
	ops := c.ops
	batch := make([]*op, 0, s.cfg.MaxBatch)
	accepts := make([]store.Accept, 0, s.cfg.MaxBatch)
	stream := false
	wctx := context.WithoutCancel(ctx)
	for {
		batch, accepts = batch[:0], accepts[:0]
		select {
		case <-ctx.Done():
			s.stopOnce.Do(func() { close(s.stopping) })
			for {
				select {
				case o := <-ops:
					o.done <- unavailable("hermes is shutting down", ctx.Err())
				default:
					return
				}
			}
		case o := <-ops:
			batch = append(batch, o)
		}
	fill:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case o := <-ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		if s.cfg.CommitDelay > 0 && len(batch) < s.cfg.MaxBatch && (c.coming.Load() > 0 || stream) {
			batch = s.linger(ctx, c, batch, stream)
		}
		// Accepts arriving while the previous commit ran: a stream, whose
		// next commit waits (up to CommitDelay) to take more of it.
		stream = len(batch) > 1
		live := batch[:0]
		for _, o := range batch {
			if o.epoch != o.ps.epoch.Load() {
				// An earlier accept of this provider failed: this one
				// extends a version that was never stored.
				o.done <- unavailable("state changed while accepting; retry", nil)
				continue
			}
			live = append(live, o)
			accepts = append(accepts, o.a)
		}
		if len(live) == 0 {
			continue
		}
		err := s.st.Commit(wctx, accepts)
		s.m.BatchSize.Observe(float64(len(live)))
		if err != nil {
			// The cached state of the batch's providers assumed it, and so
			// do their accepts queued behind it: drop those (the
			// consumers' waiters drop theirs). Other identities' state
			// is untouched by the batch and stays.
			for _, o := range live {
				o.ps.epoch.Add(1)
			}
			s.log.Error("hermes: group commit failed", "accepts", len(live), "err", err)
			err = unavailable("storage commit failed; retry", err)
		}
		for _, o := range live {
			o.done <- err
		}
	}
}

// linger adds ops to batch as they arrive, until the batch is full,
// CommitDelay has passed or ctx ends, and (unless stream is set: the
// previous commit took several accepts, more are likely within the delay)
// no request counted in c.coming is left.
func (s *Service) linger(ctx context.Context, c *committer, batch []*op, stream bool) []*op {
	t := time.NewTimer(s.cfg.CommitDelay)
	defer t.Stop()
	for len(batch) < s.cfg.MaxBatch && (stream || c.coming.Load() > 0) {
		select {
		case o := <-c.ops:
			batch = append(batch, o)
		case <-c.kick:
		case <-t.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// wait waits until o committed or failed. It waits even if the request
// context ends: the outcome must be known before the consumer's state is
// released.
func (s *Service) wait(o *op) error {
	select {
	case err := <-o.done:
		return err
	case <-s.stopped:
		select {
		case err := <-o.done:
			return err
		default:
			return unavailable("hermes is shutting down", nil)
		}
	}
}

// Exchange checks a consumer's exchange message and, if it is acceptable,
// stores it durably and returns the hermes promise for the provider. An
// identical message accepted before returns the stored promise. Rejections
// are *Error with a stable Code; nothing is stored for them.
func (s *Service) Exchange(ctx context.Context, m *payments.ExchangeMessage) (*Result, error) {
	start := time.Now()
	res, err := s.exchange(ctx, m)
	s.m.Latency.Observe(time.Since(start).Seconds())
	switch {
	case err != nil:
		s.m.Rejected.WithLabelValues(string(CodeOf(err))).Inc()
	case res.Replayed:
		s.m.Replayed.Inc()
	default:
		s.m.Accepted.Inc()
	}
	return res, err
}

func (s *Service) exchange(ctx context.Context, m *payments.ExchangeMessage) (*Result, error) {
	// CPU admission: the checks and signing below run under a cpu slot,
	// released while waiting for the chain, a lock or the commit.
	slot := s.acquireCPU()
	defer slot.release()
	if err := m.Validate(); err != nil {
		return nil, reject(CodeBadRequest, "%v", err)
	}
	if m.ChainID.Cmp(s.cfg.ChainID) != 0 {
		return nil, reject(CodeWrongChain, "message is for chain %s, this hermes serves chain %s", m.ChainID, s.cfg.ChainID)
	}
	if m.HermesID != s.cfg.HermesID {
		return nil, reject(CodeWrongHermes, "message is for hermes %s, this is %s", m.HermesID.Hex(), s.cfg.HermesID.Hex())
	}
	if m.Provider == (common.Address{}) {
		return nil, reject(CodeBadRequest, "provider is the zero address")
	}
	p := &m.Promise
	if p.Fee.Cmp(p.Amount) > 0 {
		return nil, reject(CodeBadFee, "fee %s exceeds promise amount %s", p.Fee, p.Amount)
	}
	if p.Fee.Cmp(s.cfg.MinConsumerFee) < 0 {
		return nil, reject(CodeBadFee, "fee %s below the hermes minimum %s", p.Fee, s.cfg.MinConsumerFee)
	}
	// The cheap checks are done; the signatures are the first real cost,
	// the cached registration comes before any chain read.
	consumer, digest, err := m.RecoverConsumerDigest()
	if err != nil {
		return nil, &Error{Code: CodeBadSignature, Msg: "consumer signature does not verify", Err: err}
	}
	slot.release()
	info, err := s.channel(ctx, consumer, false)
	if err != nil {
		return nil, err
	}
	if !info.Registered {
		return nil, reject(CodeNotRegistered, "consumer %s is not registered", consumer.Hex())
	}
	if info.Hermes != s.cfg.HermesID {
		return nil, reject(CodeNotRegistered, "consumer %s is registered with hermes %s, not this one", consumer.Hex(), info.Hermes.Hex())
	}
	if p.ChannelID != payments.ConsumerChannelID(info.Channel) {
		return nil, reject(CodeWrongChannel, "promise channel %x is not consumer channel %s", p.ChannelID, info.Channel.Hex())
	}
	cs := s.consumers.acquire(consumer)
	defer s.consumers.release(consumer)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	// The consumer's state is read (when not cached) before taking a CPU
	// slot: a store read is a wait, not CPU, and with one slot (2 cores)
	// every new consumer's round trips held all other requests' checks
	// back (the first quarter second of an open-loop run, when all
	// consumers are new: p50 42 ms instead of 3-7 ms).
	if err := s.loadConsumer(ctx, cs, consumer); err != nil {
		return nil, err
	}
	exp := s.expect(m.Provider)
	defer exp.done(false)
	slot = s.acquireCPU()
	defer slot.release()

	// A consumer runs several sessions at once and promises are cumulative
	// over its whole channel, so they may arrive out of order: session B's
	// promise (which already counts session A's payments) can come before
	// A's. The rules, per consumer:
	//   - per (provider, agreement) the total never decreases; delta is its
	//     increase;
	//   - consumed (the sum of accepted deltas, what providers were promised
	//     on the consumer's behalf) plus delta must stay within the highest
	//     promise the consumer has signed, max(promised, p.Amount);
	//   - a message must add something: delta > 0, or a promise above the
	//     highest; otherwise it is an identical replay (same digest: same
	//     answer) or a reject.
	key := agreementKey{m.Provider, m.AgreementID.String()}
	prevTotal := cs.agreements[key]
	if prevTotal == nil {
		prevTotal = new(big.Int)
	}
	delta := new(big.Int).Sub(m.AgreementTotal, prevTotal)
	if delta.Sign() <= 0 && p.Amount.Cmp(cs.c.Promised) <= 0 {
		e, err := s.st.ExchangeByDigest(ctx, p.Hashlock, digest)
		switch {
		case err == nil && e.Consumer == consumer:
			return &Result{Promise: e.HermesPromise, Replayed: true}, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, unavailable("read stored exchange", err)
		case delta.Sign() < 0:
			return nil, reject(CodeAmountDecreased, "agreement %s total %s is below the accepted %s", m.AgreementID, m.AgreementTotal, prevTotal)
		case p.Amount.Cmp(cs.c.Promised) == 0:
			return nil, reject(CodeReplayConflict, "amount %s was already accepted for a different message", p.Amount)
		default:
			return nil, reject(CodeAmountDecreased, "amount %s is below the accepted %s and agreement %s total %s did not grow", p.Amount, cs.c.Promised, m.AgreementID, m.AgreementTotal)
		}
	}
	// New work for this consumer: its rate limit. Identical replays are
	// answered above without a token, so whoever holds a consumer's old
	// messages (a provider) cannot replay them to exhaust its limit.
	if ok, after := s.identities.Reserve(consumer, s.now()); !ok {
		s.m.RateLimited.WithLabelValues("identity").Inc()
		return nil, rateLimited(after, "consumer %s is over its message rate", consumer.Hex())
	}
	if delta.Sign() < 0 {
		return nil, reject(CodeAmountDecreased, "agreement %s total %s is below the accepted %s", m.AgreementID, m.AgreementTotal, prevTotal)
	}
	if p.Amount.Cmp(cs.c.Promised) == 0 {
		// A legitimate consumer's promises strictly increase, so a second,
		// different promise of the highest amount is a conflict.
		return nil, reject(CodeReplayConflict, "amount %s was already accepted for a different message", p.Amount)
	}
	highest := cs.c.Promised
	if p.Amount.Cmp(highest) > 0 {
		highest = p.Amount
	}
	consumed := new(big.Int).Add(cs.c.Consumed, delta)
	if consumed.Cmp(highest) > 0 {
		return nil, reject(CodeUnderpaid, "agreement %s grows by %s, but %s is already promised to providers and the highest promise is %s",
			m.AgreementID, delta, cs.c.Consumed, highest)
	}
	if !covered(info, highest) {
		slot.release()
		if info, err = s.channel(ctx, consumer, true); err != nil {
			return nil, err
		}
		if !covered(info, highest) {
			return nil, reject(CodeInsufficientBalance, "promised %s exceeds channel balance %s plus settled %s", highest, info.Balance, info.Settled)
		}
		slot = s.acquireCPU()
		defer slot.release()
	}

	ps := s.providers.acquire(m.Provider)
	defer s.providers.release(m.Provider)
	// Nothing waits for a lock or the store while holding a CPU slot (a
	// request holding ps.mu may be waiting for a slot), see loadConsumer
	// above.
	if !ps.mu.TryLock() {
		slot.release()
		ps.mu.Lock()
	}
	if !ps.current() {
		slot.release()
		if err := s.loadProvider(ctx, ps, m.Provider); err != nil {
			ps.mu.Unlock()
			return nil, err
		}
	}
	if !slot.held {
		slot = s.acquireCPU()
		defer slot.release()
	}
	if s.cfg.MaxUnrevealed > 0 && ps.p.Unrevealed >= int64(s.cfg.MaxUnrevealed) {
		if err := s.refreshUnrevealed(ctx, ps, m.Provider); err != nil {
			ps.mu.Unlock()
			return nil, err
		}
		if ps.p.Unrevealed >= int64(s.cfg.MaxUnrevealed) {
			ps.mu.Unlock()
			return nil, reject(CodeUnrevealedLimit, "provider has %d promises with unrevealed R; reveal them first", ps.p.Unrevealed)
		}
	}
	earned := new(big.Int).Add(ps.p.Earned, delta)
	hp := payments.Promise{
		ChainID:   s.cfg.ChainID,
		ChannelID: payments.ProviderChannelID(m.Provider, s.cfg.HermesID),
		Amount:    earned,
		Fee:       s.cfg.ProviderPromiseFee,
		Hashlock:  p.Hashlock,
	}
	if err := hp.Sign(s.cfg.Operator); err != nil {
		ps.mu.Unlock()
		return nil, unavailable("sign hermes promise", err)
	}
	o := &op{ps: ps, epoch: ps.loadedAt, done: make(chan error, 1), a: store.Accept{
		Exchange: store.Exchange{Digest: digest, Consumer: consumer, Provider: m.Provider, AgreementID: m.AgreementID,
			AgreementTotal: m.AgreementTotal, ConsumerPromise: *p, HermesPromise: hp, ExchangeSignature: m.Signature},
		Consumer: store.Consumer{Identity: consumer, Channel: info.Channel, Promised: highest, Consumed: consumed, Settled: cs.c.Settled, Version: cs.c.Version},
		Provider: store.Provider{Identity: m.Provider, Earned: earned, Version: ps.p.Version},
	}}
	// Queue under the provider lock so the provider's cumulative amounts
	// reach the store in order; a failed batch bumps the epoch of its
	// providers, whose state is then reloaded.
	exp.done(true)
	select {
	case s.committerFor(m.Provider).ops <- o:
	case <-s.stopping:
		ps.mu.Unlock()
		return nil, unavailable("hermes is shutting down", nil)
	}
	ps.p = store.Provider{Identity: m.Provider, Earned: earned, Unrevealed: ps.p.Unrevealed + 1, Version: ps.p.Version + 1}
	ps.mu.Unlock()
	slot.release()

	if err := s.wait(o); err != nil {
		cs.loaded = false
		return nil, err
	}
	cs.c = store.Consumer{Identity: consumer, Channel: info.Channel, Promised: highest, Consumed: consumed, Settled: cs.c.Settled, Version: cs.c.Version + 1}
	cs.agreements[key] = m.AgreementTotal
	return &Result{Promise: hp}, nil
}

// cpuSlot is a held (or released) unit of CPU admission.
type cpuSlot struct {
	s    *Service
	held bool
}

func (s *Service) acquireCPU() *cpuSlot {
	s.cpu <- struct{}{}
	return &cpuSlot{s: s, held: true}
}

func (c *cpuSlot) release() {
	if c.held {
		c.held = false
		<-c.s.cpu
	}
}

// covered reports whether a cumulative promise of amount fits the channel:
// amount - settled <= balance.
func covered(info ChannelInfo, amount *big.Int) bool {
	need := new(big.Int).Sub(amount, info.Settled)
	return need.Cmp(info.Balance) <= 0
}

// loadConsumer (re)reads a consumer's state unless it is current. Caller
// holds cs.mu.
func (s *Service) loadConsumer(ctx context.Context, cs *consumerState, id common.Address) error {
	if cs.loaded {
		return nil
	}
	var c store.Consumer
	var ags []store.Agreement
	var err error
	if s.consumerLoads != nil {
		var cst store.ConsumerState
		cst, err = s.consumerLoads.load(ctx, id)
		c, ags = cst.Consumer, cst.Agreements
	} else {
		c, ags, err = s.st.Consumer(ctx, id)
	}
	if err != nil {
		return unavailable("read consumer state", err)
	}
	cs.c = c
	cs.agreements = make(map[agreementKey]*big.Int, len(ags))
	for _, a := range ags {
		cs.agreements[agreementKey{a.Provider, a.AgreementID.String()}] = a.Total
	}
	cs.loaded = true
	return nil
}

// current reports whether ps holds the store's state of its current
// epoch (loadProvider would not read the store). Caller holds ps.mu.
func (ps *providerState) current() bool {
	return ps.loaded && ps.loadedAt == ps.epoch.Load()
}

// loadProvider (re)reads a provider's state unless it is current. Caller
// holds ps.mu.
func (s *Service) loadProvider(ctx context.Context, ps *providerState, id common.Address) error {
	// The epoch is read before the store: a failure after this read bumps
	// it, so the state read here is dropped again.
	epoch := ps.epoch.Load()
	if ps.loaded && ps.loadedAt == epoch {
		return nil
	}
	var p store.Provider
	var err error
	if s.providerLoads != nil {
		p, err = s.providerLoads.load(ctx, id)
	} else {
		p, err = s.st.Provider(ctx, id)
	}
	if err != nil {
		return unavailable("read provider state", err)
	}
	ps.p, ps.loaded, ps.loadedAt = p, true, epoch
	return nil
}

// refreshUnrevealed re-reads a provider's unrevealed count from the store,
// at most once per unrevealedRefresh: the provider may have revealed R to
// another hermes process sharing the store. This process's own accepts
// still in flight (queued, not yet committed) keep counting. Caller holds
// ps.mu.
func (s *Service) refreshUnrevealed(ctx context.Context, ps *providerState, id common.Address) error {
	if time.Since(ps.refreshed) < unrevealedRefresh {
		return nil
	}
	ps.refreshed = time.Now()
	p, err := s.st.Provider(ctx, id)
	if err != nil {
		return unavailable("read provider state", err)
	}
	if p.Version > ps.p.Version {
		ps.p = p // another process accepted for it: this state is newer
		return nil
	}
	ps.p.Unrevealed = p.Unrevealed + (ps.p.Version - p.Version)
	return nil
}

// channel returns the consumer's on-chain channel state, from the cache
// unless fresh is set or the entry is too old: ChannelCacheTTL for a
// registered consumer, NegativeCacheTTL for one that is not registered
// with this hermes. Concurrent reads of one consumer share one chain read.
func (s *Service) channel(ctx context.Context, consumer common.Address, fresh bool) (ChannelInfo, error) {
	if !fresh {
		s.chMu.Lock()
		e, ok := s.chCache.Get(consumer)
		s.chMu.Unlock()
		if ok && s.now().Sub(e.at) < s.ttl(e.info) {
			return e.info, nil
		}
	}
	key := consumer.Hex()
	if fresh {
		key += "/fresh" // a fresh read must not join an older one
	}
	ch := s.chRead.DoChan(key, func() (any, error) {
		// Shared by every caller: not bound to the first caller's context.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		at := s.now()
		s.m.ChainReads.Inc()
		info, err := s.chain.ConsumerChannel(rctx, consumer)
		if err != nil {
			return ChannelInfo{}, err
		}
		if info.Balance == nil {
			info.Balance = new(big.Int)
		}
		if info.Settled == nil {
			info.Settled = new(big.Int)
		}
		s.chMu.Lock()
		s.chCache.Add(consumer, channelEntry{info: info, at: at})
		s.chMu.Unlock()
		return info, nil
	})
	select {
	case <-ctx.Done():
		return ChannelInfo{}, unavailable("read consumer channel from chain", ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return ChannelInfo{}, unavailable("read consumer channel from chain", r.Err)
		}
		return r.Val.(ChannelInfo), nil
	}
}

// ttl is how long a channel read is trusted.
func (s *Service) ttl(info ChannelInfo) time.Duration {
	if info.Registered && info.Hermes == s.cfg.HermesID {
		return s.cfg.ChannelCacheTTL
	}
	return s.cfg.Limits.NegativeCacheTTL
}

// invalidate drops a consumer's cached channel state.
func (s *Service) invalidate(consumer common.Address) {
	s.chMu.Lock()
	s.chCache.Remove(consumer)
	s.chMu.Unlock()
}

// Reveal stores the provider's secret r for the exchanges locked by
// keccak(r). Revealing again is harmless. It returns how many promises
// were newly unlocked.
func (s *Service) Reveal(ctx context.Context, provider common.Address, hashlock [32]byte, r []byte) (int, error) {
	if len(r) != 32 {
		return 0, reject(CodeBadPreimage, "R must be 32 bytes, got %d", len(r))
	}
	if payments.Hashlock(r) != hashlock {
		return 0, reject(CodeBadPreimage, "keccak256(R) does not match hashlock %x", hashlock)
	}
	n, err := s.st.RevealR(ctx, provider, hashlock, r)
	if errors.Is(err, store.ErrNotFound) {
		return 0, reject(CodeNotFound, "provider %s has no promise with hashlock %x", provider.Hex(), hashlock)
	}
	if err != nil {
		return 0, unavailable("store revealed R", err)
	}
	if n > 0 {
		s.m.Reveals.Add(float64(n))
		ps := s.providers.acquire(provider)
		ps.mu.Lock()
		if ps.loaded {
			ps.p.Unrevealed -= int64(n)
			if ps.p.Unrevealed < 0 {
				ps.loaded = false
			}
		}
		ps.mu.Unlock()
		s.providers.release(provider)
	}
	return n, nil
}

// ConsumerView is a consumer's state as the API reports it.
type ConsumerView struct {
	// Identity is the consumer identity.
	Identity common.Address `json:"identity"`
	// Channel is the consumer's channel address.
	Channel common.Address `json:"channel"`
	// Promised is the total accepted (cumulative) promise amount.
	Promised *big.Int `json:"promised"`
	// Settled is the cumulative amount settled on chain.
	Settled *big.Int `json:"settled"`
	// Balance is the channel's on-chain balance.
	Balance *big.Int `json:"balance"`
	// Outstanding is Promised - Settled.
	Outstanding *big.Int `json:"outstanding"`
}

// Consumer returns a consumer's promised, settled, balance and outstanding
// amounts.
func (s *Service) Consumer(ctx context.Context, id common.Address) (ConsumerView, error) {
	c, _, err := s.st.Consumer(ctx, id)
	if err != nil {
		return ConsumerView{}, unavailable("read consumer", err)
	}
	info, err := s.channel(ctx, id, false)
	if err != nil {
		return ConsumerView{}, err
	}
	if !info.Registered && c.Version == 0 {
		return ConsumerView{}, reject(CodeNotFound, "consumer %s is not registered", id.Hex())
	}
	settled := info.Settled
	if c.Settled.Cmp(settled) > 0 {
		settled = c.Settled
	}
	out := new(big.Int).Sub(c.Promised, settled)
	if out.Sign() < 0 {
		out.SetInt64(0)
	}
	return ConsumerView{Identity: id, Channel: info.Channel, Promised: c.Promised, Settled: settled, Balance: info.Balance, Outstanding: out}, nil
}

// ProviderView is a provider's state as the API reports it.
type ProviderView struct {
	// Identity is the provider identity.
	Identity common.Address
	// ChannelID is the provider's channel id in the hermes contract.
	ChannelID [32]byte
	// Earned is the cumulative amount promised to the provider.
	Earned *big.Int
	// Settled is how much the provider has settled on chain.
	Settled *big.Int
	// Unrevealed counts promises whose R is not yet revealed.
	Unrevealed int64
	// Latest is the latest hermes promise (nil if none); settle it on chain
	// with its R.
	Latest *payments.Promise
}

// Provider returns a provider's earnings and its latest hermes promise.
func (s *Service) Provider(ctx context.Context, id common.Address) (ProviderView, error) {
	p, err := s.st.Provider(ctx, id)
	if err != nil {
		return ProviderView{}, unavailable("read provider", err)
	}
	v := ProviderView{Identity: id, ChannelID: payments.ProviderChannelID(id, s.cfg.HermesID), Earned: p.Earned, Unrevealed: p.Unrevealed}
	settled, err := s.chain.ProviderSettled(ctx, id)
	if err != nil {
		return ProviderView{}, unavailable("read provider channel from chain", err)
	}
	v.Settled = settled
	e, err := s.st.LatestProviderExchange(ctx, id)
	switch {
	case err == nil:
		v.Latest = &e.HermesPromise
	case errors.Is(err, store.ErrNotFound):
	default:
		return ProviderView{}, unavailable("read latest provider promise", err)
	}
	return v, nil
}

func (s *Service) watchLoop(ctx context.Context) {
	for {
		err := s.chain.WatchChannelEvents(ctx, s.onEvent)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("hermes: chain event watch ended; restarting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Service) onEvent(e ChannelEvent) {
	s.invalidate(e.Consumer)
	if e.Removed {
		// The cached channel state is dropped above. The store's settled
		// amount only rises, so a settlement dropped deeper than the
		// watcher's confirmations stays counted there (docs/chain.md,
		// known limits); confirmations above the chain's reorg depth
		// keep that from happening.
		s.log.Warn("hermes: chain reorg dropped a channel event", "consumer", e.Consumer.Hex(), "kind", int(e.Kind))
		return
	}
	if e.Kind == EventSettled && e.Settled != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.st.SetSettled(ctx, e.Consumer, e.Settled, nil); err != nil {
			s.log.Error("hermes: reconcile settled amount", "consumer", e.Consumer.Hex(), "err", err)
		}
	}
}

// String names the hermes and its chain.
func (s *Service) String() string {
	return fmt.Sprintf("hermes %s on chain %s", s.cfg.HermesID.Hex(), s.cfg.ChainID)
}
