package probe

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"golang.org/x/time/rate"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/ratelimit"
)

// Defaults of Config.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultPerPeer       = time.Minute
	DefaultPerPeerBurst  = 2
	DefaultMaxConcurrent = 4
	DefaultMinInterval   = 30 * time.Second
	DefaultPeers         = 5
	// MaxPeers is the most checkers one CheckSelf asks.
	MaxPeers = 16
	// maxClockSkew is how far a result's time may be from the requester's.
	maxClockSkew = 5 * time.Minute
	// requestTimeout bounds reading a request and writing the answer.
	requestTimeout = 5 * time.Second
)

// Errors of CheckSelf.
var (
	// ErrTooSoon: the previous check ran less than MinInterval ago, or
	// one is running.
	ErrTooSoon = errors.New("probe: a reachability check ran too recently")
	// ErrNoPeers: no peer known to serve ProtocolCheck.
	ErrNoPeers = errors.New("probe: no peer to check this node")
)

// Config configures a Service.
type Config struct {
	// Host is the node's libp2p host: it serves both protocols and asks
	// checkers.
	Host host.Host
	// AllowPrivate lets a checker dial loopback and private addresses
	// (loopback devnets only).
	AllowPrivate bool
	// Timeout bounds one check: the fresh connection and the echo
	// (default DefaultTimeout).
	Timeout time.Duration
	// PerPeer and PerPeerBurst limit the checks one requesting peer gets:
	// one per PerPeer, at most PerPeerBurst at once (defaults
	// DefaultPerPeer, DefaultPerPeerBurst).
	PerPeer      time.Duration
	PerPeerBurst int
	// MaxConcurrent is the most checks this node runs for others at
	// once; more are refused (default DefaultMaxConcurrent).
	MaxConcurrent int
	// MinInterval is the least time between two of this node's own
	// checks (default DefaultMinInterval).
	MinInterval time.Duration
	// EchoPerSecond limits the echoes this node answers, all checkers
	// together (default 2*MaxPeers, with as large a burst).
	EchoPerSecond int
	// NewDialer returns the fresh host a check dials from, closed after
	// the check (default: a new key, TCP and QUIC, no listener).
	NewDialer func() (host.Host, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives the service's log lines (default slog.Default()).
	Log *slog.Logger
}

// PeerResult is one checker's answer to this node, as verified here.
type PeerResult struct {
	// Peer is the checker's peer id.
	Peer peer.ID
	// Reachable is whether the checker reached this node on a fresh
	// connection and the echo arrived here.
	Reachable bool
	// Path is PathDirect or PathRelay when Reachable.
	Path string
	// Addr is this node's address the checker connected to.
	Addr string
	// RTT is the echo's round-trip time the checker measured.
	RTT time.Duration
	// Error says why not Reachable: the checker's error, or why its
	// answer was refused or missing.
	Error string
	// Signed is the checker's signed result, when it sent a valid one.
	Signed *Response
}

// Report is the outcome of one CheckSelf.
type Report struct {
	// At is when the check ended.
	At time.Time
	// Asked is the number of checkers asked (M in "N of M").
	Asked int
	// Reachable is the number of checkers that reached this node (N).
	Reachable int
	// Results has one entry per checker asked.
	Results []PeerResult
}

// Service serves the probe protocols on a host and checks the host itself.
type Service struct {
	cfg      Config
	log      *slog.Logger
	perPeer  *ratelimit.Keyed[peer.ID]
	echoRate *rate.Limiter
	slots    chan struct{}

	mu      sync.Mutex
	pending map[[NonceSize]byte]*pendingCheck
	running bool
	lastRun time.Time
	last    *Report
	onRep   []func(Report)
}

// pendingCheck is one of this node's checks in flight.
type pendingCheck struct {
	checker peer.ID
	echoed  bool
}

// New registers the probe protocols on cfg.Host. Close removes them.
func New(cfg Config) (*Service, error) {
	if cfg.Host == nil {
		return nil, errors.New("probe: no host")
	}
	cfg.Timeout = defaults.Positive(cfg.Timeout, DefaultTimeout)
	cfg.PerPeer = defaults.Positive(cfg.PerPeer, DefaultPerPeer)
	cfg.PerPeerBurst = defaults.Positive(cfg.PerPeerBurst, DefaultPerPeerBurst)
	cfg.MaxConcurrent = defaults.Positive(cfg.MaxConcurrent, DefaultMaxConcurrent)
	cfg.MinInterval = defaults.Positive(cfg.MinInterval, DefaultMinInterval)
	cfg.EchoPerSecond = defaults.Positive(cfg.EchoPerSecond, 2*MaxPeers)
	if cfg.NewDialer == nil {
		cfg.NewDialer = NewDialer
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	s := &Service{
		cfg: cfg, log: cfg.Log,
		perPeer: ratelimit.Every[peer.ID](cfg.PerPeer, cfg.PerPeerBurst, 0),
		// Echoes come from fresh peer ids, so they are limited as a
		// whole; only a nonce of this node's own check is answered.
		echoRate: rate.NewLimiter(rate.Limit(cfg.EchoPerSecond), cfg.EchoPerSecond),
		slots:    make(chan struct{}, cfg.MaxConcurrent),
		pending:  map[[NonceSize]byte]*pendingCheck{},
	}
	cfg.Host.SetStreamHandler(ProtocolCheck, s.handleCheck)
	cfg.Host.SetStreamHandler(ProtocolEcho, s.handleEcho)
	return s, nil
}

// Close removes the protocol handlers. Checks in flight end with their
// streams.
func (s *Service) Close() error {
	s.cfg.Host.RemoveStreamHandler(ProtocolCheck)
	s.cfg.Host.RemoveStreamHandler(ProtocolEcho)
	return nil
}

// NewDialer is the default fresh host of a check: a new ed25519 key, TCP
// and QUIC transports, Noise, yamux, circuit relay client, no listener.
func NewDialer() (host.Host, error) {
	h, err := libp2p.New(
		libp2p.NoListenAddrs,
		libp2p.EnableRelay(), // dial circuit addresses
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("probe: fresh host: %w", err)
	}
	return h, nil
}

// OnReport calls f with every report of CheckSelf (from its goroutine).
func (s *Service) OnReport(f func(Report)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRep = append(s.onRep, f)
}

// Last returns the latest report, if any.
func (s *Service) Last() (Report, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return Report{}, false
	}
	return *s.last, true
}

// Checkers returns the peers known to serve ProtocolCheck, without this
// node.
func (s *Service) Checkers() []peer.ID {
	h := s.cfg.Host
	var out []peer.ID
	for _, p := range h.Peerstore().Peers() {
		if p == h.ID() {
			continue
		}
		if ok, err := h.Peerstore().SupportsProtocols(p, ProtocolCheck); err == nil && len(ok) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// CheckSelf asks up to n random checkers (1..MaxPeers) to reach this node
// on fresh connections and reports how many did. At most one runs at a
// time and runs are at least MinInterval apart (ErrTooSoon).
func (s *Service) CheckSelf(ctx context.Context, n int) (Report, error) {
	n = min(max(n, 1), MaxPeers)
	s.mu.Lock()
	if s.running || (!s.lastRun.IsZero() && s.cfg.Now().Sub(s.lastRun) < s.cfg.MinInterval) {
		s.mu.Unlock()
		return Report{}, ErrTooSoon
	}
	s.running = true
	s.mu.Unlock()
	asked := false
	defer func() {
		s.mu.Lock()
		s.running = false
		if asked { // a run that found nobody to ask does not count
			s.lastRun = s.cfg.Now()
		}
		s.mu.Unlock()
	}()
	peers := s.Checkers()
	if len(peers) == 0 {
		return Report{}, ErrNoPeers
	}
	asked = true
	shuffle(peers)
	peers = peers[:min(n, len(peers))]

	results := make([]PeerResult, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.ask(ctx, p)
		}()
	}
	wg.Wait()
	rep := Report{At: s.cfg.Now(), Asked: len(results), Results: results}
	for _, r := range results {
		if r.Reachable {
			rep.Reachable++
		}
	}
	s.mu.Lock()
	s.last = &rep
	fs := slices.Clone(s.onRep)
	s.mu.Unlock()
	for _, f := range fs {
		f(rep)
	}
	return rep, nil
}

// shuffle permutes ps uniformly (crypto/rand: a peer cannot predict who is
// asked).
func shuffle(ps []peer.ID) {
	for i := len(ps) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			continue
		}
		k := int(j.Int64())
		ps[i], ps[k] = ps[k], ps[i]
	}
}

// ask runs one checker's check of this node.
func (s *Service) ask(ctx context.Context, checker peer.ID) PeerResult {
	out := PeerResult{Peer: checker}
	var nonce [NonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		out.Error = err.Error()
		return out
	}
	pc := &pendingCheck{checker: checker}
	s.mu.Lock()
	s.pending[nonce] = pc
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, nonce)
		s.mu.Unlock()
	}()
	// The checker dials, connects and echoes within its timeout; allow
	// as much again for the request and the answer.
	ctx, cancel := context.WithTimeout(ctx, 2*s.cfg.Timeout)
	defer cancel()
	resp, pub, err := s.request(ctx, checker, nonce)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	if resp.Refused != "" {
		out.Error = "refused: " + resp.Refused
		return out
	}
	r := *resp.Result
	if err := r.Verify(pub, resp.Sig); err != nil {
		out.Error = err.Error()
		return out
	}
	now := s.cfg.Now()
	switch at := time.Unix(r.At, 0); {
	case r.Requester != s.cfg.Host.ID().String():
		out.Error = "result for another requester"
		return out
	case r.Nonce != hex.EncodeToString(nonce[:]):
		out.Error = "result for another nonce"
		return out
	case at.Before(now.Add(-maxClockSkew)) || at.After(now.Add(maxClockSkew)):
		out.Error = "result time too far from this node's clock"
		return out
	}
	out.Signed = &resp
	out.Addr, out.RTT = r.Addr, time.Duration(r.RTTMillis)*time.Millisecond
	if !r.Reachable {
		out.Error = r.Error
		return out
	}
	s.mu.Lock()
	echoed := pc.echoed
	s.mu.Unlock()
	if !echoed {
		out.Error = "checker claims a connection but its echo never arrived"
		return out
	}
	out.Reachable, out.Path = true, r.Path
	return out
}

// request sends the check request to checker and reads its answer.
func (s *Service) request(ctx context.Context, checker peer.ID, nonce [NonceSize]byte) (Response, ic.PubKey, error) {
	req, err := Request{V: Version, Nonce: hex.EncodeToString(nonce[:])}.Encode()
	if err != nil {
		return Response{}, nil, err
	}
	st, err := s.cfg.Host.NewStream(network.WithAllowLimitedConn(ctx, "probe"), checker, ProtocolCheck)
	if err != nil {
		return Response{}, nil, fmt.Errorf("no answer: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if _, err := st.Write(req); err != nil {
		st.Reset()
		return Response{}, nil, fmt.Errorf("send request: %w", err)
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return Response{}, nil, fmt.Errorf("send request: %w", err)
	}
	b, err := readAll(st, MaxResponseSize)
	if err != nil {
		st.Reset()
		return Response{}, nil, fmt.Errorf("no answer: %w", err)
	}
	resp, err := DecodeResponse(b)
	if err != nil {
		return Response{}, nil, err
	}
	return resp, st.Conn().RemotePublicKey(), nil
}

// readAll reads r to EOF, failing beyond limit bytes.
func readAll(r io.Reader, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("message longer than %d bytes", limit)
	}
	return b, nil
}

// handleEcho serves ProtocolEcho: a checker's fresh host sends a nonce of
// this node's own check in flight and EchoSize bytes, which go back.
func (s *Service) handleEcho(st network.Stream) {
	defer st.Close()
	if !s.echoRate.Allow() {
		st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(s.cfg.Timeout))
	msg := make([]byte, NonceSize+EchoSize)
	if _, err := io.ReadFull(st, msg); err != nil {
		st.Reset()
		return
	}
	var nonce [NonceSize]byte
	copy(nonce[:], msg)
	s.mu.Lock()
	pc := s.pending[nonce]
	if pc != nil {
		pc.echoed = true
	}
	s.mu.Unlock()
	if pc == nil {
		s.log.Debug("probe: echo for an unknown check", "peer", st.Conn().RemotePeer())
		st.Reset()
		return
	}
	if _, err := st.Write(msg[NonceSize:]); err != nil {
		st.Reset()
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
