// Package ice connects two nodes for a session's WireGuard datagrams
// through NATs with Interactive Connectivity Establishment (RFC 8445),
// using pion/ice, the library Netbird uses for the same job. Each side
// gathers candidates — host addresses, server-reflexive addresses learnt
// from the network's STUN servers, and relayed addresses allocated on its
// TURN relays — sends them to the other side as an Offer over the signed
// session stream, and runs connectivity checks; the pair that works with
// the best priority carries WireGuard (through tunnel/connbind). A direct pair
// (host, server- or peer-reflexive) is preferred; a relayed one is the
// fallback when no direct path exists.
package ice

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pion "github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/stun/v3"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/nat/netcheck"
	"github.com/openmyst/openmyst/nat/punch"
)

// Server is a STUN or TURN server: "stun:host:port",
// "turn:host:port?transport=udp|tcp" or "turns:host:port" (TURN over TLS),
// with credentials for TURN.
type Server struct {
	URL      string
	Username string
	Password string
}

// Config configures an Agent.
type Config struct {
	// Servers are the network's STUN and TURN servers.
	Servers []Server
	// Policy says which remote candidates are acceptable.
	Policy CandidatePolicy
	// Loopback gathers host candidates on loopback addresses only: a
	// devnet whose nodes all run on one host (Policy.AllowPrivate must be
	// set for the peers to accept them). Never on a real network.
	Loopback bool
	// RelayOnly gathers only relayed candidates (for networks where the
	// user wants the relay, and for tests).
	RelayOnly bool
	// ExcludeInterfaces are network interfaces whose addresses are never
	// gathered: a consumer's own VPN TUN, whose address is no way to
	// reach it and whose sockets would send into the tunnel.
	ExcludeInterfaces []string
	// HostFilter, when set, further restricts the host addresses
	// gathered (an operator's choice of addresses on a multi-homed host;
	// tests).
	HostFilter func(netip.Addr) bool
	// Mux, when set and its public address known, is the node's shared
	// socket on a forwarded or mapped port: the agent's host candidate is
	// that port at the public address (Mux.External) instead of the
	// host's own addresses.
	Mux *Mux
	// SocketMark, when nonzero, is set (SO_MARK, Linux, needs
	// CAP_NET_ADMIN) on every socket the agent opens, host,
	// server-reflexive and TURN (UDP and TCP), and on the Mux's socket
	// when the agent uses it: a consumer's kill switch admits the
	// connectivity checks of exactly these sockets
	// (tunnel/kernel.SocketMark).
	SocketMark uint32
	// Timeout bounds the connectivity checks; zero means DefaultTimeout.
	Timeout time.Duration
	// GatherTimeout bounds gathering: candidates that are not in by then
	// (a STUN or TURN server that a firewall silently drops) are left
	// out. Zero means DefaultGatherTimeout.
	GatherTimeout time.Duration
	// LostAfter is how long the selected pair may receive nothing (not
	// even the peer's ICE keepalives, sent every LostAfter/4 at most)
	// before the path counts as lost (Agent.Lost). Zero means
	// DefaultLostAfter.
	LostAfter time.Duration
	// Punch, when set, also punches a direct path between a hard
	// (endpoint-dependent) and an easy (endpoint-independent) NAT, which
	// ICE's checks cannot (see nat/punch): Gather checks this side's
	// mapping with STUN on a punch socket and puts it in the offer;
	// Connect punches when the peer's offer has the other mapping and
	// prefers the punched path to whatever ICE selected. Its STUN servers
	// default to the stun: and UDP turn: servers of Servers (two are
	// needed to tell the mapping); AllowPrivate follows Policy; its
	// sockets carry SocketMark unless it has a Control of its own. Never
	// with Loopback or RelayOnly. (A Mux's public address does not turn
	// it off: it may be STUN's view of a port-restricted mapping, which
	// a symmetric peer cannot reach.)
	Punch *punch.Config
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
}

// Default time limits.
const (
	// DefaultTimeout bounds how long Connect waits for a working pair.
	DefaultTimeout = 15 * time.Second
	// DefaultGatherTimeout bounds how long Gather waits for candidates.
	DefaultGatherTimeout = 3 * time.Second
	// RelayGrace is how many times the first relayed candidate's
	// gathering time Gather waits after it for the other answers.
	RelayGrace = 2
	// MinRelayGrace is the shortest wait after the first relayed
	// candidate.
	MinRelayGrace = 100 * time.Millisecond
	// DefaultLostAfter is how long a connected path may stay silent
	// before it counts as lost.
	DefaultLostAfter = 10 * time.Second
	// RelayWait is how long the controlling side's checks wait for a
	// direct pair before pion nominates a relayed one, counted from the
	// start of its own checks, unless the two offers leave no direct
	// pair to wait for (see noDirectPath).
	RelayWait = 2 * time.Second
)

// errGraceOver ends Gather's wait a grace after the first relayed
// candidate.
var errGraceOver = errors.New("ice: relay grace over")

// Path kinds.
const (
	PathDirect = "direct"
	PathRelay  = "relay"
)

// CandidatePunched is Path.Local and Path.Remote of a punched path (a
// PathDirect that nat/punch opened, not an ICE candidate pair).
const CandidatePunched = "punched"

// Path describes the selected candidate pair.
type Path struct {
	// Kind is PathDirect or PathRelay.
	Kind string
	// Local and Remote are the candidate types of the pair ("host",
	// "srflx", "prflx", "relay").
	Local, Remote string
	// RemoteAddr is where this side sends (the peer's or its relay's
	// address).
	RemoteAddr netip.AddrPort
}

// SendsTo returns the UDP destination this host's own sockets send the
// path's datagrams to: the remote candidate's address, unless the local
// candidate is relayed (then the datagrams go to this side's TURN
// server, over its own transport, and nothing is returned). A consumer's
// kill switch admits exactly this (plus its STUN/TURN servers).
func (p Path) SendsTo() (netip.AddrPort, bool) {
	if p.Local == "" || p.Local == pion.CandidateTypeRelay.String() || !p.RemoteAddr.IsValid() {
		return netip.AddrPort{}, false
	}
	return p.RemoteAddr, true
}

// Agent is one side of one session's ICE.
type Agent struct {
	cfg         Config
	controlling bool
	agent       *pion.Agent
	log         *slog.Logger

	gathered chan struct{}
	relayIn  chan struct{} // closed when the first relayed candidate is in
	relayAt  sync.Once
	mu       sync.Mutex
	local    []string

	connected bool          // under mu: the checks selected a pair
	lost      chan struct{} // closed when the connected path is lost
	lostOnce  sync.Once

	offered    Offer        // under mu: the offer Gather returned
	punchLocal *punch.Local // under mu: the punch socket (Gather), until Connect
	// noDirect is set by Connect when the offers leave no direct pair
	// (noDirectPath): the first pair proven both ways is selected at
	// once, without RelayWait.
	noDirect  atomic.Bool
	picked    atomic.Bool // bindingRequest selected a pair
	punched   *punch.Conn // under mu: the punched path Connect returned
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewAgent makes an agent. The consumer (which dials) is controlling,
// the provider controlled.
func NewAgent(cfg Config, controlling bool) (*Agent, error) {
	cfg.Timeout = defaults.Positive(cfg.Timeout, DefaultTimeout)
	cfg.GatherTimeout = defaults.Positive(cfg.GatherTimeout, DefaultGatherTimeout)
	cfg.LostAfter = defaults.Positive(cfg.LostAfter, DefaultLostAfter)
	log := cmp.Or(cfg.Logger, slog.Default())
	urls, err := agentURLs(cfg.Servers)
	if err != nil {
		return nil, err
	}
	types := []pion.CandidateType{pion.CandidateTypeHost, pion.CandidateTypeServerReflexive, pion.CandidateTypeRelay}
	if cfg.RelayOnly {
		types = []pion.CandidateType{pion.CandidateTypeRelay}
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	// pion calls a pair that received nothing for its disconnected
	// timeout Disconnected: that is LostAfter, and the keepalives
	// (binding requests on the selected pair, answered by the peer) go
	// at least four times as often so that a working path never looks
	// silent.
	disconnected, failed, keepalive := cfg.LostAfter, 25*time.Second, min(2*time.Second, cfg.LostAfter/4)
	check := 50 * time.Millisecond
	// A pair is checked until the agent gives up, not the 8 checks
	// (0.4 s at this pace) pion gives it by default: the peer may start
	// its checks later than we do (offers cross the signalling path, a
	// busy peer), and a controlling agent that has marked its pairs
	// failed never nominates one, even after the peer's checks of the
	// same pairs succeed; a relayed pair is not even acceptable before
	// relayWait. Checks stop once a pair is selected.
	maxRequests := uint16(min(cfg.Timeout/check, 1<<15))
	// Accept a direct pair as soon as it works (a host pair at once, a
	// server- or peer-reflexive one after 100 ms in case a host pair is
	// about to succeed); a relayed one only when nothing direct worked
	// for RelayWait — unless the offers say nothing direct can work
	// (bindingRequest).
	hostWait, srflxWait, prflxWait, relayWait := time.Duration(0), 100*time.Millisecond, 100*time.Millisecond, RelayWait
	hostFilter := func(ip net.IP) bool {
		// Never offer loopback or link-local host candidates; private
		// ones only where the policy accepts them from peers too.
		a, ok := netip.AddrFromSlice(ip)
		return ok && !a.Unmap().IsLoopback() && !a.IsLinkLocalUnicast() && (cfg.Policy.AllowPrivate || !a.Unmap().IsPrivate())
	}
	if cfg.Loopback {
		hostFilter = func(ip net.IP) bool { return ip.IsLoopback() }
	}
	if extra := cfg.HostFilter; extra != nil {
		base := hostFilter
		hostFilter = func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && base(ip) && extra(a.Unmap())
		}
	}
	var ifFilter func(string) bool
	if len(cfg.ExcludeInterfaces) > 0 {
		excl := append([]string(nil), cfg.ExcludeInterfaces...)
		ifFilter = func(name string) bool { return !slices.Contains(excl, name) }
	}
	ac := &pion.AgentConfig{
		Urls:                   urls,
		NetworkTypes:           []pion.NetworkType{pion.NetworkTypeUDP4, pion.NetworkTypeUDP6},
		CandidateTypes:         types,
		LoggerFactory:          lf,
		DisconnectedTimeout:    &disconnected,
		FailedTimeout:          &failed,
		KeepaliveInterval:      &keepalive,
		CheckInterval:          &check,
		MaxBindingRequests:     &maxRequests,
		MulticastDNSMode:       pion.MulticastDNSModeDisabled,
		STUNGatherTimeout:      &cfg.GatherTimeout,
		HostAcceptanceMinWait:  &hostWait,
		SrflxAcceptanceMinWait: &srflxWait,
		PrflxAcceptanceMinWait: &prflxWait,
		RelayAcceptanceMinWait: &relayWait,
		IPFilter:               hostFilter,
		InterfaceFilter:        ifFilter,
		IncludeLoopback:        cfg.Loopback,
	}
	if ext := cfg.Mux.external(); ext.IsValid() && !cfg.Loopback && !cfg.RelayOnly {
		// The mux's host candidate carries the public address (1:1 NAT
		// for exactly the mux's local address); the port is the same on
		// both sides of the router (Mux's contract).
		ac.UDPMux = cfg.Mux.mux
		ac.NAT1To1IPs = []string{ext.Addr().String() + "/" + cfg.Mux.local().String()}
		ac.NAT1To1IPCandidateType = pion.CandidateTypeHost
	}
	if cfg.SocketMark != 0 {
		n, err := newMarkedNet(cfg.SocketMark)
		if err != nil {
			return nil, err
		}
		ac.Net = n
		if ac.UDPMux != nil {
			if err := cfg.Mux.setMark(cfg.SocketMark); err != nil {
				return nil, err
			}
		}
	}
	a := &Agent{cfg: cfg, controlling: controlling, log: log.With("component", "ice"), gathered: make(chan struct{}), relayIn: make(chan struct{}), lost: make(chan struct{}), closed: make(chan struct{})}
	ac.BindingRequestHandler = a.bindingRequest
	pa, err := pion.NewAgent(ac)
	if err != nil {
		return nil, fmt.Errorf("ice: new agent: %w", err)
	}
	a.agent = pa
	if err := pa.OnConnectionStateChange(a.stateChanged); err != nil {
		pa.Close()
		return nil, fmt.Errorf("ice: %w", err)
	}
	if err := pa.OnCandidate(func(c pion.Candidate) {
		if c == nil {
			close(a.gathered)
			return
		}
		a.mu.Lock()
		if len(a.local) < MaxCandidates {
			a.local = append(a.local, c.Marshal())
		}
		a.mu.Unlock()
		if c.Type() == pion.CandidateTypeRelay {
			a.relayAt.Do(func() { close(a.relayIn) })
		}
	}); err != nil {
		pa.Close()
		return nil, fmt.Errorf("ice: %w", err)
	}
	return a, nil
}

// agentURLs parses servers into the URLs pion's agent gets. pion opens a
// socket for a server-reflexive candidate per URL, TURN URLs included
// (a TURN server answers STUN binding requests), and each such socket is
// one more source of checks: behind a symmetric NAT every socket gets a
// new mapping per destination, and the peer learns each as a
// peer-reflexive candidate that it pairs with all of its own. With two
// STUN and two TURN URLs a public consumer and a symmetric provider
// checked some 300 pairs every 50 ms, which on a loaded machine took the
// direct pair past RelayWait. So where a TURN server listens on UDP, its
// URL gives the server-reflexive candidate and the stun: URLs are left to
// punching (punch.Config.STUN) and the network checks, which tell the
// mapping from two destinations; without a UDP TURN URL they stay.
func agentURLs(servers []Server) ([]*stun.URI, error) {
	var urls []*stun.URI
	turnUDP := false
	for _, s := range servers {
		u, err := stun.ParseURI(s.URL)
		if err != nil {
			return nil, fmt.Errorf("ice: server %q: %w", s.URL, err)
		}
		u.Username, u.Password = s.Username, s.Password
		urls = append(urls, u)
		if u.Scheme == stun.SchemeTypeTURN && u.Proto == stun.ProtoTypeUDP {
			turnUDP = true
		}
	}
	if turnUDP {
		urls = slices.DeleteFunc(urls, func(u *stun.URI) bool { return u.Scheme == stun.SchemeTypeSTUN })
	}
	return urls, nil
}

// Start creates an agent (see NewAgent) and gathers its offer, returned
// as JSON of at most MaxOfferSize bytes, ready to embed in a signalling
// message. On failure the agent is closed and nothing is returned.
func Start(ctx context.Context, cfg Config, controlling bool) (*Agent, json.RawMessage, error) {
	a, err := NewAgent(cfg, controlling)
	if err != nil {
		return nil, nil, err
	}
	offer, err := a.Gather(ctx)
	if err == nil {
		var raw []byte
		if raw, err = json.Marshal(offer); err == nil && len(raw) > MaxOfferSize {
			err = fmt.Errorf("ice: offer of %d bytes, more than %d", len(raw), MaxOfferSize)
		}
		if err == nil {
			return a, raw, nil
		}
	}
	_ = a.Close()
	return nil, nil, err
}

// Gather collects this side's candidates and returns the Offer to send.
// It ends when gathering is complete, at the gather timeout, or a grace
// period after the first relayed candidate came in, whichever is first:
// a relayed candidate makes the offer usable from anywhere, and the
// answers still missing then (a STUN server behind a firewall that drops
// UDP) are unlikely to come at all. The grace is RelayGrace times the
// time the relayed candidate took (its TURN allocation's round trips,
// the slowest answer so far), at least MinRelayGrace.
func (a *Agent) Gather(ctx context.Context) (Offer, error) {
	// A context that has already ended is an error, not a race between
	// it and a gathering that completes at once (loopback, no servers).
	if err := ctx.Err(); err != nil {
		return Offer{}, fmt.Errorf("ice: gather: %w", err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.GatherTimeout)
	defer cancel()
	// gctx also ends at the end of the grace: it bounds the wait here
	// and the punch socket's STUN check.
	gctx, gcancel := context.WithCancelCause(ctx)
	defer gcancel(nil)
	ufrag, pwd, err := a.agent.GetLocalUserCredentials()
	if err != nil {
		return Offer{}, fmt.Errorf("ice: credentials: %w", err)
	}
	if err := a.agent.GatherCandidates(); err != nil {
		return Offer{}, fmt.Errorf("ice: gather: %w", err)
	}
	// The grace timer is Gather's own: it ends when Gather returns
	// (gcancel).
	go func() {
		select {
		case <-a.relayIn:
		case <-gctx.Done():
			return
		}
		took := time.Since(start)
		grace := max(RelayGrace*took, MinRelayGrace)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			a.log.Debug("ice: gathering ends after the relay grace", "relay_ms", took.Milliseconds(), "grace_ms", grace.Milliseconds())
			gcancel(errGraceOver)
		case <-gctx.Done():
		}
	}()
	// The punch socket's STUN check runs beside pion's gathering, within
	// the same time limit.
	var prepared chan *punch.Local
	if pc, ok := a.punchConfig(); ok {
		prepared = make(chan *punch.Local, 1)
		go func() {
			l, err := punch.Prepare(gctx, pc)
			if err != nil {
				a.log.Debug("ice: no punching", "err", err)
			}
			prepared <- l
		}()
	}
	select {
	case <-a.gathered:
	case <-gctx.Done():
		// Whatever came in time is the offer; a parent context that
		// ended is an error.
		if c := context.Cause(gctx); c != context.DeadlineExceeded && c != errGraceOver {
			if prepared != nil {
				if l := <-prepared; l != nil {
					_ = l.Close()
				}
			}
			return Offer{}, fmt.Errorf("ice: gather: %w", ctx.Err())
		}
	}
	var pl *punch.Local
	if prepared != nil {
		pl = <-prepared // bounded by ctx
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.local) == 0 {
		if pl != nil {
			_ = pl.Close()
		}
		return Offer{}, errors.New("ice: no candidates gathered (no usable interface, STUN or TURN server)")
	}
	o := Offer{Ufrag: ufrag, Pwd: pwd, Candidates: append([]string(nil), a.local...)}
	if pl != nil {
		if a.punchLocal != nil {
			_ = a.punchLocal.Close()
		}
		a.punchLocal = pl
		info := pl.Info()
		o.Punch = &info
	}
	a.offered = o
	return o, nil
}

// punchConfig is the agent's punch configuration with its defaults
// applied, and whether punching is on.
func (a *Agent) punchConfig() (punch.Config, bool) {
	if a.cfg.Punch == nil || a.cfg.Loopback || a.cfg.RelayOnly {
		return punch.Config{}, false
	}
	pc := *a.cfg.Punch
	if len(pc.STUN) == 0 {
		var urls []string
		for _, s := range a.cfg.Servers {
			urls = append(urls, s.URL)
		}
		pc.STUN = netcheck.ServersFromURLs(urls)
	}
	if len(pc.STUN) < 2 {
		return punch.Config{}, false // one destination cannot tell the mapping
	}
	pc.AllowPrivate = a.cfg.Policy.AllowPrivate
	if mark := a.cfg.SocketMark; mark != 0 && pc.Control == nil {
		// The punch sockets are the agent's too: a kill switch that
		// admits the agent by its mark admits them.
		pc.Control = func(_, _ string, c syscall.RawConn) error { return setMark(c, mark) }
	}
	pc.CheckTimeout = min(a.cfg.GatherTimeout, max(pc.CheckTimeout, 0))
	if pc.CheckTimeout == 0 {
		pc.CheckTimeout = a.cfg.GatherTimeout
	}
	if pc.Logger == nil {
		pc.Logger = a.log
	}
	return pc, true
}

// Connect runs the connectivity checks against the peer's offer and
// returns the connection over the selected pair. The offer must have been
// validated (DecodeOffer or Offer.Validate) under this agent's policy.
func (a *Agent) Connect(ctx context.Context, remote Offer) (net.Conn, error) {
	cands, err := remote.Validate(a.cfg.Policy)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	offered := a.offered
	a.mu.Unlock()
	if noDirectPath(offered, remote) {
		// Both sides decide this from the same two offers, so both
		// select a pair of their own at once (bindingRequest) and
		// neither waits for a nomination the other will not send.
		a.noDirect.Store(true)
		a.log.Debug("ice: the offers leave no direct pair; the first working pair is taken")
	}
	if a.log.Enabled(ctx, slog.LevelDebug) {
		a.log.Debug("ice: checks start", "offered", candidateTypes(offered.Candidates), "remote", candidateTypes(remote.Candidates),
			"punch", offered.Punch != nil, "remote_punch", remote.Punch != nil)
	}
	for _, c := range cands {
		if err := a.agent.AddRemoteCandidate(c); err != nil {
			return nil, fmt.Errorf("ice: remote candidate: %w", err)
		}
	}
	a.mu.Lock()
	pl := a.punchLocal
	a.punchLocal = nil
	a.mu.Unlock()
	if pl != nil && (remote.Punch == nil || !punch.Applies(pl.Info().Mapping, remote.Punch.Mapping)) {
		_ = pl.Close()
		pl = nil
	}
	if pl == nil {
		return a.connectICE(ctx, remote)
	}
	return a.connectBoth(ctx, remote, pl)
}

// connectICE runs pion's checks.
func (a *Agent) connectICE(ctx context.Context, remote Offer) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	var conn *pion.Conn
	var err error
	if a.controlling {
		conn, err = a.agent.Dial(ctx, remote.Ufrag, remote.Pwd)
	} else {
		conn, err = a.agent.Accept(ctx, remote.Ufrag, remote.Pwd)
	}
	if err != nil {
		return nil, fmt.Errorf("ice: no working candidate pair: %w", err)
	}
	p := a.Path()
	a.log.Info("ice connected", "path", p.Kind, "local", p.Local, "remote", p.Remote, "to", p.RemoteAddr)
	return conn, nil
}

// connectBoth runs ICE's checks and punching side by side, for a hard ↔
// easy pair, and both sides pick the same path:
//   - The controlling side takes the punched path if punching succeeds
//     before ICE has a pair; once ICE has one it abandons the punch
//     (punch.Local.Abandon: at once, unless a nomination is already out,
//     which then decides) — at once for a direct pair, and for a relayed
//     one no earlier than the punch's guessing time (GuessTime, plus
//     punchMargin) after the start, when nearly every punch that
//     succeeds has. So a failed punch costs the session nothing over
//     ICE's own wait, not the punch's whole time limit.
//   - The controlled side takes the punched path when the controlling
//     side nominates it (punch.Run returns it), and ICE's pair as soon as
//     the first datagram arrives over it: the controlling side sends on
//     ICE's pair only once it has given up punching. Otherwise the
//     punch's time limit ends it, as before.
//
// A punched path closes ICE's agent (its checks, sockets and relay
// allocation); ICE's path closes the punch sockets.
func (a *Agent) connectBoth(ctx context.Context, remote Offer, pl *punch.Local) (net.Conn, error) {
	var key punch.Key
	ufrag, pwd, err := a.agent.GetLocalUserCredentials()
	if err != nil {
		_ = pl.Close()
		return nil, fmt.Errorf("ice: credentials: %w", err)
	}
	if a.controlling {
		key = punch.DeriveKey(ufrag, pwd, remote.Ufrag, remote.Pwd)
	} else {
		key = punch.DeriveKey(remote.Ufrag, remote.Pwd, ufrag, pwd)
	}
	type iceResult struct {
		conn net.Conn
		err  error
	}
	type punchResult struct {
		conn *punch.Conn
		err  error
	}
	iceCtx, iceCancel := context.WithCancel(ctx)
	defer iceCancel()
	iceDone := make(chan iceResult, 1)
	go func() {
		c, err := a.connectICE(iceCtx, remote)
		iceDone <- iceResult{c, err}
	}()
	start := time.Now()
	punchDone := make(chan punchResult, 1)
	go func() {
		pc, err := pl.Run(ctx, key, a.controlling, *remote.Punch)
		punchDone <- punchResult{pc, err}
	}()
	var (
		ice      *iceResult    // ICE's outcome, once in
		peek     *peekConn     // controlled: ICE's conn, its first datagram awaited
		peeked   chan struct{} // closed when that datagram is in
		abandonT <-chan time.Time
	)
	iceIn := iceDone
	for {
		select {
		case r := <-iceIn:
			iceIn = nil
			ice = &r
			if r.err != nil {
				continue // the punch decides
			}
			if !a.controlling {
				peek = newPeekConn(r.conn)
				ice.conn, peeked = peek, peek.in
				continue
			}
			wait := time.Duration(0)
			if p := a.Path(); p.Kind == PathRelay {
				wait = time.Until(start.Add(pl.GuessTime() + punchMargin))
			}
			t := time.NewTimer(max(wait, 0))
			defer t.Stop()
			abandonT = t.C
		case <-abandonT:
			abandonT = nil
			a.log.Debug("ice: ICE has a pair; punching is abandoned", "after_ms", time.Since(start).Milliseconds())
			pl.Abandon()
		case <-peeked:
			peeked = nil
			a.log.Debug("ice: the peer sends over ICE's pair; punching is abandoned", "after_ms", time.Since(start).Milliseconds())
			pl.Abandon()
		case pr := <-punchDone:
			if pr.err == nil && (peek == nil || !peek.arrived()) {
				// The punched path wins: stop ICE (Close ends its checks,
				// which then return) and keep the agent only as the
				// path's owner.
				iceCancel()
				if ice == nil {
					r := <-iceDone
					ice = &r
				}
				if ice.conn != nil {
					_ = ice.conn.Close()
				}
				_ = a.agent.Close()
				a.mu.Lock()
				a.punched = pr.conn
				a.connected = true
				a.mu.Unlock()
				a.wg.Add(1)
				go func() {
					defer a.wg.Done()
					select {
					case <-pr.conn.Lost():
						a.lostOnce.Do(func() { close(a.lost) })
					case <-a.closed:
					}
				}()
				a.log.Info("ice connected", "path", PathDirect, "local", CandidatePunched, "remote", CandidatePunched, "to", pr.conn.Remote(), "punch_ms", time.Since(start).Milliseconds())
				return pr.conn, nil
			}
			if pr.conn != nil {
				// Punched, but the controlling side already sends over
				// ICE's pair: that is the path.
				_ = pr.conn.Close()
			}
			a.log.Info("ice: no punched path; ICE's pair is used", "err", pr.err)
			if ice == nil {
				r := <-iceDone
				ice = &r
			}
			return ice.conn, ice.err
		}
	}
}

// punchMargin is how long after the punch's guessing time the
// controlling side still waits for a punched path when ICE offers only
// a relayed one: the round trips of a late hit and its nomination, and
// slack for a side whose guesses fell behind (a loaded machine), up to
// the hard side's next round.
const punchMargin = time.Second

// peekConn is ICE's connection on the controlled side of connectBoth,
// whose first datagram a goroutine reads ahead: its arrival says the
// controlling side chose ICE's pair. Read returns it first. The
// goroutine ends with that read (Close ends it too).
type peekConn struct {
	net.Conn
	first chan peeked // one datagram (or error), then closed
	in    chan struct{}
}

type peeked struct {
	b   []byte
	err error
}

func newPeekConn(c net.Conn) *peekConn {
	p := &peekConn{Conn: c, first: make(chan peeked, 1), in: make(chan struct{})}
	go func() {
		buf := make([]byte, 64<<10)
		n, err := c.Read(buf)
		p.first <- peeked{b: buf[:n:n], err: err}
		close(p.first)
		if err == nil {
			close(p.in)
		}
	}()
	return p
}

// arrived reports whether a datagram came in over the connection.
func (p *peekConn) arrived() bool {
	select {
	case <-p.in:
		return true
	default:
		return false
	}
}

// Read returns the datagram read ahead first, then reads on.
func (p *peekConn) Read(b []byte) (int, error) {
	if d, ok := <-p.first; ok {
		return copy(b, d.b), d.err
	}
	return p.Conn.Read(b)
}

// bindingRequest is pion's hook for every binding request from the peer
// on a known pair (called inside pion's loop; it must not call back into
// the agent's loop). It selects that pair — true — when the offers left
// no direct pair to wait for (Connect sets noDirect), nothing is
// selected yet, and the pair is proven both ways: the peer's check came
// over it and ours got an answer. Both sides do this (the controlled
// side included, which otherwise only follows a nomination), so neither
// waits out RelayWait for direct pairs that cannot work; they may select
// different relayed pairs, which is fine: each sends on its own, and
// pion takes data from any of the peer's candidates.
func (a *Agent) bindingRequest(_ *stun.Message, _, _ pion.Candidate, pair *pion.CandidatePair) bool {
	if !a.noDirect.Load() || pair == nil || pair.ResponsesReceived() == 0 || a.picked.Load() {
		return false
	}
	if sel, err := a.agent.GetSelectedCandidatePair(); err != nil || sel != nil {
		return false
	}
	return a.picked.CompareAndSwap(false, true)
}

// noDirectPath reports whether two offers leave no direct pair to wait
// for: one side offers only relayed candidates (its UDP is blocked, or
// it gathers only relayed ones: every pair runs through its relay), or
// both sides' punch sockets found an endpoint-dependent (hard) mapping
// and neither offers a host candidate (two symmetric NATs with nothing
// to punch, which the lab and nat/punch treat as relay-only). The test
// is symmetric, so both sides of a session come to the same answer.
func noDirectPath(x, y Offer) bool {
	if relayOnly(x) || relayOnly(y) {
		return true
	}
	return x.Punch != nil && y.Punch != nil && x.Punch.Mapping == punch.Hard && y.Punch.Mapping == punch.Hard &&
		!hasType(x, pion.CandidateTypeHost) && !hasType(y, pion.CandidateTypeHost)
}

// candidateTypes lists the type and address of each raw candidate, in
// order ("host/198.51.100.7 relay/203.0.113.1"), for the logs.
func candidateTypes(raw []string) string {
	types := make([]string, 0, len(raw))
	for _, r := range raw {
		if c, err := pion.UnmarshalCandidate(r); err == nil {
			types = append(types, c.Type().String()+"/"+c.Address())
		}
	}
	return strings.Join(types, " ")
}

// relayOnly reports whether every candidate of o is relayed.
func relayOnly(o Offer) bool {
	if len(o.Candidates) == 0 {
		return false
	}
	for _, raw := range o.Candidates {
		c, err := pion.UnmarshalCandidate(raw)
		if err != nil || c.Type() != pion.CandidateTypeRelay {
			return false
		}
	}
	return true
}

// hasType reports whether o offers a candidate of type t (one that does
// not parse counts as one: the test stays on the waiting side).
func hasType(o Offer, t pion.CandidateType) bool {
	for _, raw := range o.Candidates {
		c, err := pion.UnmarshalCandidate(raw)
		if err != nil || c.Type() == t {
			return true
		}
	}
	return false
}

// stateChanged follows pion's connection state: once connected, a path
// that turns Disconnected (nothing received for LostAfter) or Failed is
// lost for good (the session's WireGuard cannot count on it coming back;
// the session ends and the consumer reconnects). Closed is the agent's
// own end, not a loss; the checks failing before a pair was selected are
// Connect's error.
func (a *Agent) stateChanged(s pion.ConnectionState) {
	a.mu.Lock()
	switch s {
	case pion.ConnectionStateConnected, pion.ConnectionStateCompleted:
		a.connected = true
	case pion.ConnectionStateDisconnected, pion.ConnectionStateFailed:
		if a.connected {
			a.lostOnce.Do(func() { close(a.lost) })
			a.log.Warn("ice path lost", "state", s.String(), "silent_for", a.cfg.LostAfter)
		}
	}
	a.mu.Unlock()
}

// Lost is closed when the path Connect selected has been lost: it
// received nothing (no data, no answer to the keepalives) for
// Config.LostAfter, or pion's checks declared it failed. It is never
// closed before Connect succeeded nor by Close.
func (a *Agent) Lost() <-chan struct{} { return a.lost }

// LostAfter is the agent's Config.LostAfter (defaults applied).
func (a *Agent) LostAfter() time.Duration { return a.cfg.LostAfter }

// Path returns the selected pair, or a zero Path before one is selected.
func (a *Agent) Path() Path {
	a.mu.Lock()
	pc := a.punched
	a.mu.Unlock()
	if pc != nil {
		return Path{Kind: PathDirect, Local: CandidatePunched, Remote: CandidatePunched, RemoteAddr: pc.Remote()}
	}
	pair, err := a.agent.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return Path{}
	}
	p := Path{Local: pair.Local.Type().String(), Remote: pair.Remote.Type().String(), Kind: PathDirect}
	if pair.Local.Type() == pion.CandidateTypeRelay || pair.Remote.Type() == pion.CandidateTypeRelay {
		p.Kind = PathRelay
	}
	if ip, err := netip.ParseAddr(pair.Remote.Address()); err == nil {
		p.RemoteAddr = netip.AddrPortFrom(ip.Unmap(), uint16(pair.Remote.Port()))
	}
	return p
}

// Close stops the agent and every candidate socket and allocation.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() { close(a.closed) })
	a.mu.Lock()
	pl, pc := a.punchLocal, a.punched
	a.punchLocal = nil
	a.mu.Unlock()
	if pl != nil {
		_ = pl.Close()
	}
	if pc != nil {
		_ = pc.Close()
	}
	a.wg.Wait()
	if err := a.agent.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
		return fmt.Errorf("ice: close: %w", err)
	}
	return nil
}

// ParseServers builds the server list of a Config from STUN and TURN URLs
// ("stun:host:port", "turn:host:port?transport=udp|tcp", "turns:host:port"),
// checking each; every TURN server gets username and password. A TURN URL
// without credentials is an error.
func ParseServers(stunURLs, turnURLs []string, username, password string) ([]Server, error) {
	var out []Server
	for _, u := range stunURLs {
		uri, err := stun.ParseURI(u)
		if err != nil {
			return nil, fmt.Errorf("ice: STUN server %q: %w", u, err)
		}
		if uri.Scheme != stun.SchemeTypeSTUN {
			return nil, fmt.Errorf("ice: STUN server %q is not a stun: URL", u)
		}
		out = append(out, Server{URL: u})
	}
	for _, u := range turnURLs {
		uri, err := stun.ParseURI(u)
		if err != nil {
			return nil, fmt.Errorf("ice: TURN server %q: %w", u, err)
		}
		if uri.Scheme != stun.SchemeTypeTURN && uri.Scheme != stun.SchemeTypeTURNS {
			return nil, fmt.Errorf("ice: TURN server %q is not a turn: or turns: URL", u)
		}
		if username == "" || password == "" {
			return nil, fmt.Errorf("ice: TURN server %q needs a username and password", u)
		}
		out = append(out, Server{URL: u, Username: username, Password: password})
	}
	return out, nil
}

// ServerAddrs returns the addresses (IP and port) of STUN and TURN
// servers, resolving host names now: what a consumer's kill switch
// admits so that the next session can gather candidates while nothing
// else leaves outside the tunnel.
func ServerAddrs(ctx context.Context, servers []Server) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range servers {
		u, err := stun.ParseURI(s.URL)
		if err != nil {
			return nil, fmt.Errorf("ice: server %q: %w", s.URL, err)
		}
		if u.Port <= 0 || u.Port > 65535 {
			return nil, fmt.Errorf("ice: server %q: port %d", s.URL, u.Port)
		}
		if a, err := netip.ParseAddr(u.Host); err == nil {
			out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(u.Port)))
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", u.Host)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ice: resolve server %q: %w", s.URL, err)
		}
		for _, a := range ips {
			out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(u.Port)))
		}
	}
	return out, nil
}
