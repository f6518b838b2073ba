// Package provider is the provider's session manager: it serves the
// session control protocol (p2p/sessionproto) on libp2p streams, validates
// each signed SessionRequest (signature, freshness, the current proposal,
// price, hermes, the consumer's registration and channel funds), admits the
// consumer's WireGuard key on the exit with a fresh tunnel address, answers
// with a SessionResponse and then runs the pay-as-you-go loop
// (session/pingpong/paystream) until the consumer leaves, stops paying or
// the manager closes. Every session is recorded in the node's session
// history with its bytes and paid total.
package provider

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
	"github.com/openmyst/openmyst/tunnel"
)

// Funds tells whether a consumer may open a paid session.
type Funds interface {
	// ConsumerFunds reports whether consumer is registered and the balance
	// of its channel with hermes, in wei.
	ConsumerFunds(ctx context.Context, consumer, hermes common.Address) (registered bool, balance *big.Int, err error)
}

// Store is the provider's durable pay-as-you-go state.
type Store interface {
	pingpong.HashlockStore
	pingpong.ExchangeStore
}

// Payment tunes the pay-as-you-go loop of a provider's sessions (node
// passes it through as node.Payment). Zero values take the defaults of
// pingpong and paystream.
type Payment struct {
	// Interval, Threshold, Grace, MaxUnpaid and CheckEvery tune the
	// invoice tracker (see pingpong.TrackerConfig).
	Interval   time.Duration
	Threshold  *big.Int
	Grace      time.Duration
	MaxUnpaid  *big.Int
	CheckEvery time.Duration
	// Keepalive and ReadTimeout tune the session stream (defaults from
	// paystream); ReadTimeout is how long a silent peer is tolerated.
	Keepalive   time.Duration
	ReadTimeout time.Duration
}

// Config configures a Manager.
type Config struct {
	// Signer is the provider identity (signs invoices).
	Signer identity.Signer
	// ChainID is the chain sessions are paid on.
	ChainID *big.Int
	// Proposal returns the provider's current proposal, or false while
	// none is published.
	Proposal func() (market.Proposal, bool)
	// Exit is the tunnel exit consumers are admitted to.
	Exit tunnel.Exit
	// Pool hands out consumer tunnel addresses.
	Pool *tunnel.AddressPool
	// DNS are the resolvers offered to consumers (default: the exit's
	// gateway address).
	DNS []netip.Addr
	// ExitIP is the public address consumers' traffic leaves the exit
	// from, told to each consumer in the session response (zero: the
	// exit endpoint's address, the address the provider advertises).
	ExitIP netip.Addr
	// Funds checks consumers' registration and channel balance.
	Funds Funds
	// Hermes forwards exchange messages; Permanent classifies its errors
	// (see pingpong.TrackerConfig).
	Hermes    pingpong.Hermes
	Permanent func(error) bool
	// Store keeps invoice secrets and exchange messages durably.
	Store Store
	// History records sessions.
	History *session.History
	// TransactorFee is the fee every consumer promise must carry.
	TransactorFee *big.Int
	// Payment tunes the pay-as-you-go loop of every session.
	Payment
	// ResumeGrace is how long a session opened on
	// sessionproto.ProtocolResume waits, after its stream was lost, for
	// the consumer to resume it on a new one before it ends (default
	// paystream.DefaultResumeGrace). Sessions on older protocol versions
	// end with their stream.
	ResumeGrace time.Duration
	// MaxSessions caps concurrent sessions (0: DefaultMaxSessions); a request beyond
	// it is refused with capacity.
	MaxSessions int
	// SessionBandwidth caps each session's exit traffic in bytes per
	// second in each direction (tunnel.PeerConfig.BandwidthLimit; 0:
	// unlimited).
	SessionBandwidth uint64
	// Quota, when set, counts every session's traffic per month: a
	// request while it is exhausted is refused with quota_exhausted, and
	// running sessions end with that code once it is crossed (checked
	// every QuotaEvery, default DefaultQuotaEvery, when the count is also
	// saved; and at each session's end).
	Quota      *Quota
	QuotaEvery time.Duration
	// MaxICEChecks caps the sessions gathering candidates and running
	// connectivity checks at once (0: DefaultMaxICEChecks); a session
	// beyond it is answered without an offer and uses the UDP endpoint.
	MaxICEChecks int
	// ICE, when set, runs ICE (nat/ice) for every consumer that sends an
	// offer: the provider answers with its own offer and, once the checks
	// select a pair, carries the consumer's WireGuard datagrams over it
	// (the Exit must implement tunnel.ConnAttacher). Consumers without an
	// offer, and sessions whose checks fail, use the exit's UDP endpoint.
	ICE *ice.Config
	// SendInvoice, when set, builds the function that writes each signed
	// invoice to a session's stream (default paystream.InvoiceSender).
	SendInvoice func(w *sessionproto.Writer) func(context.Context, *payments.Invoice) error
	// Log receives the manager's events (default slog.Default()).
	Log *slog.Logger
}

// Status is a snapshot of one running session.
type Status struct {
	// ID is the session id.
	ID string
	// Consumer is the paying identity.
	Consumer common.Address
	// Start is when the session was admitted.
	Start time.Time
	// Bytes is the tunnel traffic so far, up plus down.
	Bytes uint64
	// Tracker is the payment accounting.
	Tracker pingpong.TrackerStats
	// Path is how the consumer's datagrams arrive: PathStatic (the exit's
	// UDP endpoint), PathICEPending while the ICE checks run, or the
	// selected ICE path (ice.PathDirect, ice.PathRelay).
	Path string
	// Resumes counts the times the consumer resumed the session on a new
	// control stream.
	Resumes int
	// ControlRelayed: the session's control stream runs over a limited
	// (circuit relay) connection, which the relay cuts after its limit;
	// the session then resumes on a new one (protocol 1.2).
	ControlRelayed bool
}

// Limits on resumes (sessionproto.Resume). Anyone can send one, so the
// manager verifies at most resumeRate per second (burst resumeBurst) in
// all; a session accepts one every sessionResumeEvery (burst
// sessionResumeBurst), far more than an honest consumer needs (a circuit
// relay connection lasts an hour).
const (
	resumeRate         = rate.Limit(20)
	resumeBurst        = 40
	sessionResumeEvery = 2 * time.Second
	sessionResumeBurst = 4
)

// DefaultMaxSessions is Config.MaxSessions's default.
const DefaultMaxSessions = 1000

// DefaultMaxICEChecks is Config.MaxICEChecks's default: how many sessions
// may run ICE gathering and checks at once (each costs sockets, a TURN
// allocation and paced check packets for up to the ICE timeout).
const DefaultMaxICEChecks = 32

// Session paths besides ice.PathDirect and ice.PathRelay.
const (
	// PathStatic is the exit's UDP endpoint, without ICE.
	PathStatic = "static"
	// PathICEPending means the ICE checks are still running (datagrams
	// that reach the UDP endpoint meanwhile are served).
	PathICEPending = "ice-pending"
)

// Ended describes a session that ended, for callers that watch.
type Ended struct {
	// ID is the session id.
	ID string
	// Err is why it ended (nil: the consumer left or the manager closed).
	Err error
	// Stats is the final payment accounting.
	Stats pingpong.TrackerStats
	// Bytes is the final traffic count.
	Bytes uint64
	// ControlBytes is the session control stream traffic (requests,
	// invoices, exchange messages, keepalives; both directions, frames
	// with their length prefix, without libp2p framing).
	ControlBytes uint64
	// Duration is how long the session ran.
	Duration time.Duration
	// Resumes counts the times the consumer resumed the session on a new
	// control stream.
	Resumes int
}

// Manager serves provider sessions. Create it with New, pass Handle to the
// libp2p host as the ProtocolID stream handler and Close it to end every
// session.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	guard *sessionproto.ReplayGuard
	// resumeGuard refuses replayed resumes; resumeLimit caps the resumes
	// strangers can make the manager verify.
	resumeGuard *sessionproto.ReplayGuard
	resumeLimit *rate.Limiter
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	// iceSlots holds a token per session running ICE (MaxICEChecks).
	iceSlots chan struct{}

	// acctMu serializes adding sessions' traffic to the quota.
	acctMu sync.Mutex

	mu       sync.Mutex
	sessions map[string]*live
	closed   bool
	ended    []func(Ended)
}

type live struct {
	id       string
	consumer common.Address
	start    time.Time
	pub      tunnel.PublicKey
	// usage reads the session's traffic; counted is how much of it the
	// quota has (under Manager.acctMu).
	usage   func() uint64
	counted uint64
	// stop ends the session with the error sent (buffered, one).
	stop    chan error
	tracker *pingpong.InvoiceTracker // nil until the ICE checks are done; under Manager.mu
	path    atomic.Value             // string
	// resumable: opened on sessionproto.ProtocolResume. Its payment loop
	// takes resumed streams from attach (nil when not resumable); ended
	// is closed (end) once the loop no longer takes any.
	resumable bool
	attach    chan paystream.Attachment
	ended     chan struct{}
	endOnce   sync.Once
	resumes   *rate.Limiter  // verified resumes of this session
	resumeMu  sync.Mutex     // one resume at a time from its ack to its handover
	control   *atomic.Uint64 // control stream bytes, all streams
	resumed   atomic.Int64   // resumes accepted
	relayed   atomic.Bool    // the control stream's connection is limited (a circuit)
}

// end closes l.ended once.
func (l *live) end() { l.endOnce.Do(func() { close(l.ended) }) }

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Signer == nil:
		return nil, errors.New("provider: no signer")
	case cfg.ChainID == nil:
		return nil, errors.New("provider: no chain id")
	case cfg.Proposal == nil:
		return nil, errors.New("provider: no proposal source")
	case cfg.Exit == nil || cfg.Pool == nil:
		return nil, errors.New("provider: no exit or address pool")
	case cfg.Funds == nil || cfg.Hermes == nil || cfg.Store == nil || cfg.History == nil:
		return nil, errors.New("provider: funds, hermes, store and history are required")
	}
	cfg.TransactorFee = cmp.Or(cfg.TransactorFee, new(big.Int))
	if cfg.ICE != nil {
		if _, ok := cfg.Exit.(tunnel.ConnAttacher); !ok {
			return nil, fmt.Errorf("provider: ICE needs an exit that attaches connections (%T does not)", cfg.Exit)
		}
	}
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	cfg.MaxSessions = defaults.Positive(cfg.MaxSessions, DefaultMaxSessions)
	cfg.MaxICEChecks = defaults.Positive(cfg.MaxICEChecks, DefaultMaxICEChecks)
	cfg.QuotaEvery = defaults.Positive(cfg.QuotaEvery, DefaultQuotaEvery)
	cfg.ReadTimeout = defaults.Positive(cfg.ReadTimeout, paystream.DefaultReadTimeout)
	cfg.Keepalive = defaults.Positive(cfg.Keepalive, paystream.DefaultKeepalive)
	if len(cfg.DNS) == 0 {
		if gw := cfg.Exit.Gateway(); gw.V4.IsValid() {
			cfg.DNS = []netip.Addr{gw.V4}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg: cfg, log: cfg.Log, guard: sessionproto.NewReplayGuard(2 * time.Minute),
		ctx: ctx, cancel: cancel, sessions: map[string]*live{}, iceSlots: make(chan struct{}, cfg.MaxICEChecks),
		resumeGuard: sessionproto.NewReplayGuard(2 * time.Minute),
		resumeLimit: rate.NewLimiter(resumeRate, resumeBurst),
	}
	if cfg.Quota != nil {
		m.wg.Add(1)
		go m.countQuota(ctx)
	}
	return m, nil
}

// countQuota adds the running sessions' traffic to the quota every
// QuotaEvery, saves it, and ends every session once it is exhausted.
func (m *Manager) countQuota(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.QuotaEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := m.cfg.Quota.Save(context.WithoutCancel(ctx)); err != nil {
				m.log.Warn("provider: save the traffic quota", "err", err)
			}
			return
		case <-t.C:
		}
		m.mu.Lock()
		all := make([]*live, 0, len(m.sessions))
		for _, l := range m.sessions {
			all = append(all, l)
		}
		m.mu.Unlock()
		exhausted := m.cfg.Quota.Exhausted()
		for _, l := range all {
			if m.account(l) {
				exhausted = true
			}
		}
		if err := m.cfg.Quota.Save(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("provider: save the traffic quota", "err", err)
		}
		if !exhausted {
			continue
		}
		for _, l := range all {
			select {
			case l.stop <- paystream.ErrQuotaExhausted:
				m.log.Info("provider: monthly traffic quota used up; ending the session", "session", l.id)
			default:
			}
		}
	}
}

// account adds l's traffic since the last call to the quota and reports
// whether the quota is exhausted.
func (m *Manager) account(l *live) bool {
	m.acctMu.Lock()
	defer m.acctMu.Unlock()
	cur := l.usage()
	var d uint64
	if cur > l.counted {
		d, l.counted = cur-l.counted, cur
	}
	return m.cfg.Quota.Add(d)
}

// quotaError is the refusal while the quota is exhausted.
func quotaError(q *Quota) (sessionproto.ErrorCode, string) {
	st := q.Status()
	return sessionproto.CodeQuotaExhausted, fmt.Sprintf("the provider's monthly traffic quota (%d bytes) is used up until %s",
		st.Limit, st.Resets.Format(time.RFC3339))
}

// OnEnded registers fn to be called (from the session's goroutine) after
// each session ends.
func (m *Manager) OnEnded(fn func(Ended)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended = append(m.ended, fn)
}

// Close ends every session (each consumer gets a Destroy), waits for
// their goroutines and last hermes forwards (bounded), and refuses new
// streams.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// Sessions returns the running sessions.
func (m *Manager) Sessions() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.sessions))
	for _, s := range m.sessions {
		st, _ := m.cfg.Exit.PeerStats(s.pub)
		path, _ := s.path.Load().(string)
		var ts pingpong.TrackerStats
		if s.tracker != nil {
			ts = s.tracker.Stats()
		}
		out = append(out, Status{ID: s.id, Consumer: s.consumer, Start: s.start, Bytes: st.RxBytes + st.TxBytes, Tracker: ts, Path: path,
			Resumes: int(s.resumed.Load()), ControlRelayed: s.relayed.Load()})
	}
	return out
}

// Handle serves one session control stream; it is the libp2p stream
// handler for sessionproto.ProtocolID and returns when the session ends.
func (m *Manager) Handle(s network.Stream) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = s.Reset()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	defer s.Close()
	if err := m.serve(m.ctx, &countingStream{sessionStream: s, proto: s.Protocol(), limited: s.Conn().Stat().Limited}); err != nil {
		m.log.Info("provider: session ended", "peer", s.Conn().RemotePeer(), "err", err)
	}
}

// refuse sends an Error and returns it as the session's failure.
func refuse(ctx context.Context, w *sessionproto.Writer, code sessionproto.ErrorCode, msg string) error {
	e := &sessionproto.Error{Code: code, Message: msg}
	_ = w.WriteMessage(ctx, e)
	return e
}

func (m *Manager) serve(ctx context.Context, s *countingStream) error {
	r := sessionproto.NewReader(s, 15*time.Second)
	w := sessionproto.NewWriter(s, 15*time.Second)
	msg, err := r.ReadMessage(ctx)
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	if res, ok := msg.(*sessionproto.Resume); ok {
		return m.resume(ctx, s, w, res)
	}
	req, ok := msg.(*sessionproto.SessionRequest)
	if !ok {
		return refuse(ctx, w, sessionproto.CodeBadRequest, fmt.Sprintf("expected session_request, got %s", msg.Type()))
	}
	now := time.Now()
	if err := req.VerifySignature(); err != nil {
		return refuse(ctx, w, sessionproto.CodeBadSignature, "request signature does not verify")
	}
	if err := m.guard.Check(req, now); err != nil {
		if errors.Is(err, sessionproto.ErrGuardFull) {
			return refuse(ctx, w, sessionproto.CodeCapacity, "too many session requests")
		}
		return refuse(ctx, w, sessionproto.CodeBadRequest, err.Error())
	}
	p, ok := m.cfg.Proposal()
	if !ok {
		return refuse(ctx, w, sessionproto.CodeProposalExpired, "no proposal is published")
	}
	if e := req.CheckAgainst(&p, now); e != nil {
		_ = w.WriteMessage(ctx, e)
		return e
	}
	if req.ChainID != m.cfg.ChainID.Uint64() {
		return refuse(ctx, w, sessionproto.CodeBadRequest, "wrong chain")
	}
	if m.cfg.Quota != nil && m.cfg.Quota.Exhausted() {
		code, msg := quotaError(m.cfg.Quota)
		return refuse(ctx, w, code, msg)
	}
	price := pingpong.Price{PerHour: req.PricePerHour.Int(), PerGiB: req.PricePerGiB.Int()}
	registered, balance, err := m.cfg.Funds.ConsumerFunds(ctx, req.Consumer, req.Hermes)
	if err != nil {
		return refuse(ctx, w, sessionproto.CodeInternal, "cannot check the consumer's channel now")
	}
	if !registered {
		return refuse(ctx, w, sessionproto.CodeNotRegistered, "consumer identity is not registered")
	}
	if !price.IsFree() && (balance == nil || balance.Sign() <= 0) {
		return refuse(ctx, w, sessionproto.CodeInsufficientFunds, "consumer channel has no balance")
	}

	m.mu.Lock()
	full := len(m.sessions) >= m.cfg.MaxSessions
	m.mu.Unlock()
	if full {
		return refuse(ctx, w, sessionproto.CodeCapacity, "provider is at its session limit")
	}

	var remote *ice.Offer
	if len(req.ICE) > 0 && m.cfg.ICE != nil {
		o, _, err := ice.DecodeOffer(req.ICE, m.cfg.ICE.Policy)
		if err != nil {
			return refuse(ctx, w, sessionproto.CodeBadRequest, err.Error())
		}
		remote = &o
	}

	var sid sessionproto.SessionID
	if _, err := rand.Read(sid[:]); err != nil {
		return refuse(ctx, w, sessionproto.CodeInternal, "")
	}
	lease, err := m.cfg.Pool.Allocate()
	if err != nil {
		return refuse(ctx, w, sessionproto.CodeCapacity, "no tunnel address free")
	}
	defer func() { _ = m.cfg.Pool.Release(lease) }()
	pub := tunnel.PublicKey(req.WGPublicKey)
	if err := m.cfg.Exit.AddPeer(ctx, tunnel.PeerConfig{PublicKey: pub, AllowedIPs: lease.Prefixes(), BandwidthLimit: m.cfg.SessionBandwidth}); err != nil {
		return refuse(ctx, w, sessionproto.CodeInternal, "cannot admit the tunnel peer")
	}
	removed := false
	defer func() {
		if !removed {
			_ = m.cfg.Exit.RemovePeer(pub)
		}
	}()
	var lastBytes atomic.Uint64 // the count survives RemovePeer
	usage := func() uint64 {
		if st, ok := m.cfg.Exit.PeerStats(pub); ok {
			lastBytes.Store(st.RxBytes + st.TxBytes)
		}
		return lastBytes.Load()
	}

	start := time.Now()
	id := sid.String()
	rec := session.Record{
		ID: id, Role: session.RoleProvider, Provider: m.cfg.Signer.Address(), Consumer: req.Consumer, Hermes: req.Hermes,
		PricePerHour: price.PerHour.String(), PricePerGiB: price.PerGiB.String(), Start: start, Paid: "0", Path: PathStatic,
	}
	if err := m.cfg.History.Put(ctx, rec); err != nil {
		return refuse(ctx, w, sessionproto.CodeInternal, "")
	}
	gw := m.cfg.Exit.Gateway()
	resp := &sessionproto.SessionResponse{
		SessionID: sid, ProviderWGKey: sessionproto.Key(m.cfg.Exit.PublicKey()), Endpoint: m.cfg.Exit.Endpoint().String(),
		ConsumerAddrs: lease.Prefixes(), ProviderAddr: gw.V4, DNS: m.cfg.DNS, ExitIP: m.exitIP(),
	}
	l := &live{id: id, consumer: req.Consumer, start: start, pub: pub, usage: usage, stop: make(chan error, 1),
		resumable: s.proto == sessionproto.ProtocolResume, ended: make(chan struct{}),
		resumes: rate.NewLimiter(rate.Every(sessionResumeEvery), sessionResumeBurst), control: &s.n}
	if l.resumable {
		// From the response on: a resume that comes before the payment
		// loop runs (the ICE checks) waits for it.
		l.attach = make(chan paystream.Attachment)
	}
	defer l.end() // every way out; at the latest
	l.path.Store(PathStatic)
	l.relayed.Store(s.limited)
	var agent *ice.Agent
	slot := false
	releaseSlot := func() {
		if slot {
			slot = false
			<-m.iceSlots
		}
	}
	defer releaseSlot()
	if remote != nil {
		select {
		case m.iceSlots <- struct{}{}:
			slot = true
			if agent, resp.ICE = m.gather(ctx, id, remote.Punch != nil); agent == nil {
				releaseSlot()
			}
		default:
			m.log.Warn("provider: too many sessions running ICE; this one uses the UDP endpoint", "session", id, "max", m.cfg.MaxICEChecks)
		}
		if agent != nil {
			l.path.Store(PathICEPending)
			defer agent.Close()
		}
	}
	m.mu.Lock()
	m.sessions[id] = l
	m.mu.Unlock()
	if err := w.WriteMessage(ctx, resp); err != nil {
		m.mu.Lock()
		delete(m.sessions, id)
		m.mu.Unlock()
		_ = m.cfg.History.Update(context.WithoutCancel(ctx), id, func(r *session.Record) { r.End, r.Reason = time.Now(), "response not delivered" })
		return fmt.Errorf("send response: %w", err)
	}
	m.log.Info("provider: session started", "session", id, "consumer", req.Consumer.Hex(), "tunnel_ip", lease.V4)

	if agent != nil {
		// The consumer runs its checks now too and pays from when its
		// tunnel is up: charging starts after the checks (bounded by the
		// ICE timeout), not for the time they took.
		if !m.connectICE(ctx, l, agent, *remote) {
			agent = nil // closed; the consumer may use the UDP endpoint
		}
		releaseSlot()
	}
	paidFrom := time.Now()
	if agent != nil {
		path, _ := l.path.Load().(string)
		if err := m.cfg.History.Update(context.WithoutCancel(ctx), id, func(r *session.Record) { r.Path = path }); err != nil {
			m.log.Warn("provider: record session path", "session", id, "err", err)
		}
	}
	send := paystream.InvoiceSender(w)
	if m.cfg.SendInvoice != nil {
		send = m.cfg.SendInvoice(w)
	}
	tracker, err := pingpong.NewInvoiceTracker(pingpong.TrackerConfig{
		ChainID: m.cfg.ChainID, Provider: m.cfg.Signer, Consumer: req.Consumer, HermesID: req.Hermes,
		AgreementID: new(big.Int).SetBytes(sid[:]), Price: price, ProposalSeq: req.ProposalSeq, TransactorFee: m.cfg.TransactorFee, Start: paidFrom,
		Interval: m.cfg.Interval, Threshold: m.cfg.Threshold, Grace: m.cfg.Grace, MaxUnpaid: m.cfg.MaxUnpaid, CheckEvery: m.cfg.CheckEvery,
		Hashlocks: m.cfg.Store, Exchanges: m.cfg.Store, Hermes: m.cfg.Hermes, Permanent: m.cfg.Permanent, Send: send,
		OnSettled: func(total *big.Int, _ *payments.Promise) {
			b := usage()
			if err := m.cfg.History.Update(context.WithoutCancel(ctx), id, func(r *session.Record) { r.Paid, r.Bytes = total.String(), b }); err != nil {
				m.log.Warn("provider: record payment", "session", id, "err", err)
			}
		},
		Log: m.log.With("session", id),
	})
	if err != nil {
		m.mu.Lock()
		delete(m.sessions, id)
		m.mu.Unlock()
		_ = m.cfg.History.Update(context.WithoutCancel(ctx), id, func(r *session.Record) { r.End, r.Reason = time.Now(), "internal error" })
		return refuse(ctx, w, sessionproto.CodeInternal, "")
	}
	popt := paystream.Options{Keepalive: m.cfg.Keepalive, Log: m.log.With("session", id), Stop: l.stop}
	m.mu.Lock()
	l.tracker = tracker
	if l.resumable {
		popt.Resume, popt.Stream, popt.ResumeGrace = l.attach, s, m.cfg.ResumeGrace
	}
	m.mu.Unlock()
	pr := sessionproto.NewReader(s, m.cfg.ReadTimeout)
	// A session whose ICE path is lost ends (session.ErrPathLost): no
	// more invoices for time nothing can cross, and the consumer, told
	// why, reconnects.
	pctx, pcancel := context.WithCancelCause(ctx)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		var lost <-chan struct{} // nil without an ICE path: never closed
		if agent != nil {
			lost = agent.Lost()
		}
		select {
		case <-lost:
			m.log.Warn("provider: session path lost; ending the session", "session", id)
			pcancel(fmt.Errorf("%w: the ICE path went silent or failed", session.ErrPathLost))
		case <-pctx.Done():
		}
	}()
	runErr := paystream.Provider(pctx, pr, w, tracker, usage, popt)
	l.end()
	if cause := context.Cause(pctx); runErr == nil && errors.Is(cause, session.ErrPathLost) {
		runErr = cause
	}
	pcancel(nil)
	<-wdone

	m.mu.Lock()
	delete(m.sessions, id)
	m.mu.Unlock()
	bytes := usage()
	if m.cfg.Quota != nil {
		m.account(l)
		if err := m.cfg.Quota.Save(context.WithoutCancel(ctx)); err != nil {
			m.log.Warn("provider: save the traffic quota", "session", id, "err", err)
		}
	}
	_ = m.cfg.Exit.RemovePeer(pub)
	removed = true
	_ = s.Close()
	// The consumer's last payment still reaches the hermes: retried until
	// it does or the manager closes (then the exchange message is on disk
	// and the hermes client's Recover forwards it after a restart).
	if err := tracker.Settle(ctx, 250*time.Millisecond); err != nil && ctx.Err() == nil {
		m.log.Warn("provider: last payment not forwarded", "session", id, "err", err)
	}
	st := tracker.Stats()
	reason := "consumer left"
	if runErr != nil {
		reason = runErr.Error()
	}
	if err := m.cfg.History.Update(context.WithoutCancel(ctx), id, func(r *session.Record) {
		r.End, r.Bytes, r.Reason = time.Now(), bytes, reason
		if st.Settled != nil {
			r.Paid = st.Settled.String()
		}
	}); err != nil {
		m.log.Warn("provider: record session end", "session", id, "err", err)
	}
	m.mu.Lock()
	fns := append([]func(Ended){}, m.ended...)
	m.mu.Unlock()
	for _, fn := range fns {
		fn(Ended{ID: id, Err: runErr, Stats: st, Bytes: bytes, ControlBytes: s.n.Load(), Duration: time.Since(start), Resumes: int(l.resumed.Load())})
	}
	m.log.Info("provider: session ended", "session", id, "bytes", bytes, "settled", st.Settled, "reason", reason)
	return runErr
}

// gather makes the session's ICE agent and its offer. On failure (no
// candidate) the session goes on without ICE: it returns a nil agent and
// the consumer uses the exit's UDP endpoint. The offer carries punch
// parameters (nat/punch) only when the consumer's did (punch): a
// consumer that sent none would refuse them.
func (m *Manager) gather(ctx context.Context, id string, punch bool) (*ice.Agent, json.RawMessage) {
	cfg := *m.cfg.ICE
	cfg.Logger = m.log.With("session", id)
	if !punch {
		cfg.Punch = nil
	}
	agent, raw, err := ice.Start(ctx, cfg, false)
	if err != nil {
		m.log.Warn("provider: no ICE offer; the consumer uses the UDP endpoint", "session", id, "err", err)
		return nil, nil
	}
	return agent, raw
}

// connectICE runs the session's connectivity checks (bounded by the ICE
// timeout) and moves the consumer onto the selected pair, reporting
// whether it did. When they fail the consumer keeps the exit's UDP
// endpoint.
func (m *Manager) connectICE(ctx context.Context, l *live, agent *ice.Agent, remote ice.Offer) bool {
	conn, err := agent.Connect(ctx, remote)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("provider: ICE failed; the consumer may use the UDP endpoint", "session", l.id, "err", err)
		}
		l.path.Store(PathStatic)
		_ = agent.Close()
		return false
	}
	if err := m.cfg.Exit.(tunnel.ConnAttacher).AttachConn(l.pub, conn); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("provider: attach the ICE connection", "session", l.id, "err", err)
		}
		l.path.Store(PathStatic)
		return false
	}
	p := agent.Path()
	l.path.Store(p.Kind)
	m.log.Info("provider: session path", "session", l.id, "path", p.Kind, "local", p.Local, "remote", p.Remote)
	return true
}

// countingStream counts the bytes of a session control stream (into n,
// or into total when set: a resumed stream counts to its session's first).
type countingStream struct {
	sessionStream
	proto   protocol.ID // the negotiated protocol ("" for a test pipe)
	limited bool        // over a limited (circuit relay) connection
	n       atomic.Uint64
	total   *atomic.Uint64
}

func (c *countingStream) count(n int) {
	if c.total != nil {
		c.total.Add(uint64(n))
		return
	}
	c.n.Add(uint64(n))
}

// Read counts what it reads.
func (c *countingStream) Read(b []byte) (int, error) {
	n, err := c.sessionStream.Read(b)
	c.count(n)
	return n, err
}

// Write counts what it writes.
func (c *countingStream) Write(b []byte) (int, error) {
	n, err := c.sessionStream.Write(b)
	c.count(n)
	return n, err
}

// Reset aborts the stream (a libp2p stream's Reset; Close otherwise).
func (c *countingStream) Reset() error {
	if r, ok := c.sessionStream.(interface{ Reset() error }); ok {
		return r.Reset()
	}
	return c.sessionStream.Close()
}

// sessionStream is what a session needs of a libp2p stream.
type sessionStream interface {
	sessionproto.DeadlineReader
	sessionproto.DeadlineWriter
	Close() error
}

// exitIP is the address told to consumers as their exit's: Config.ExitIP
// or else the exit endpoint's address (zero when that is unspecified).
func (m *Manager) exitIP() netip.Addr {
	if m.cfg.ExitIP.IsValid() {
		return m.cfg.ExitIP
	}
	if a := m.cfg.Exit.Endpoint().Addr().Unmap(); a.IsValid() && !a.IsUnspecified() {
		return a
	}
	return netip.Addr{}
}
