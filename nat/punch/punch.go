package punch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/openmyst/openmyst/nat/addrs"
	"github.com/openmyst/openmyst/nat/netcheck"
)

// Defaults and limits of Config.
const (
	// DefaultSockets is how many sockets the hard side opens.
	DefaultSockets = 256
	// MaxSockets bounds Config.Sockets.
	MaxSockets = 1024
	// DefaultProbes is how many ports the easy side guesses at most.
	DefaultProbes = 2048
	// MaxProbes bounds Config.Probes.
	MaxProbes = 8192
	// DefaultRate is the packets per second a side sends while punching
	// (pings from all its sockets together; answers have their own
	// budget).
	DefaultRate = 1000
	// DefaultTimeout bounds punching.
	DefaultTimeout = 6 * time.Second
	// DefaultLostAfter is how long a punched path may receive nothing
	// (not even the answers to its keepalive pings) before it counts as
	// lost.
	DefaultLostAfter = 10 * time.Second
	// controlledGrace is how much longer the controlled side waits than
	// the controlling side, so a nomination sent just before the
	// controlling side's deadline is still taken.
	controlledGrace = time.Second
	// hardRound is how often the hard side pings again from every socket.
	hardRound = time.Second
	// useEvery is how often the controlling side repeats its nomination
	// until the peer answers it.
	useEvery = 200 * time.Millisecond
	// nominateBefore is the least time before its deadline the
	// controlling side nominates a pair with.
	nominateBefore = time.Second
	// maxCandidates bounds the socket/address pairs a side answers with a
	// ping of its own while punching.
	maxCandidates = 64
	// answerRate and answerBurst bound the pongs and candidate pings sent
	// in answer to the peer's packets.
	answerRate, answerBurst = 500, 256
	// MaxProcessSockets bounds the extra sockets hard sides of all runs
	// of a process hold at once (a provider checks up to 32 sessions at a
	// time; each would hold DefaultSockets).
	MaxProcessSockets = 2048
	// minSockets is the fewest extra sockets a hard side punches with;
	// with fewer free it does not punch (the chance of a hit would not
	// be worth the packets).
	minSockets = 32
)

// budget counts the extra sockets held by running hard sides.
var budget = struct {
	sync.Mutex
	used int
}{}

// takeSockets reserves up to n extra sockets of the process's budget and
// returns how many it got (0 when fewer than minSockets are free).
func takeSockets(n int) int {
	budget.Lock()
	defer budget.Unlock()
	n = min(n, MaxProcessSockets-budget.used)
	if n < minSockets {
		return 0
	}
	budget.used += n
	return n
}

func releaseSockets(n int) {
	budget.Lock()
	defer budget.Unlock()
	budget.used -= n
}

// Config configures punching.
type Config struct {
	// STUN are the STUN servers (host:port) that tell this side's
	// mapping behaviour; two or more (two destinations) are needed to
	// tell easy from hard (see nat/netcheck).
	STUN []string
	// AllowPrivate accepts loopback and private addresses, for STUN
	// servers and the peer (devnets and tests only).
	AllowPrivate bool
	// Sockets is how many sockets a hard side opens (default
	// DefaultSockets, at most MaxSockets).
	Sockets int
	// Probes is how many of the hard side's ports an easy side guesses
	// (default DefaultProbes, at most MaxProbes).
	Probes int
	// Rate is the packets per second sent while punching (default
	// DefaultRate).
	Rate float64
	// Timeout bounds Run (default DefaultTimeout); the controlled side
	// waits a second longer for the controlling side's nomination.
	Timeout time.Duration
	// CheckTimeout bounds Prepare's STUN check (default
	// netcheck.DefaultTimeout).
	CheckTimeout time.Duration
	// LostAfter is the Conn's silence limit (default DefaultLostAfter).
	LostAfter time.Duration
	// MinPort and MaxPort are the range of the hard side's public ports
	// the easy side guesses in (default 1024–65535: where a fully random
	// NAT maps).
	MinPort, MaxPort uint16
	// Control, when set, is applied to every socket punching opens
	// before it is bound (e.g. SO_MARK for a kill switch), as
	// net.ListenConfig.Control.
	Control func(network, address string, c syscall.RawConn) error
	// Listen, when set, opens one IPv4 UDP socket on an ephemeral port
	// instead of net.ListenConfig (tests: a socket inside a network
	// namespace). Control is not applied to its sockets.
	Listen func(ctx context.Context) (*net.UDPConn, error)
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Sockets <= 0 {
		c.Sockets = DefaultSockets
	}
	c.Sockets = min(c.Sockets, MaxSockets)
	if c.Probes <= 0 {
		c.Probes = DefaultProbes
	}
	c.Probes = min(c.Probes, MaxProbes)
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = netcheck.DefaultTimeout
	}
	if c.LostAfter <= 0 {
		c.LostAfter = DefaultLostAfter
	}
	if c.MinPort == 0 {
		c.MinPort = 1024
	}
	if c.MaxPort == 0 {
		c.MaxPort = 65535
	}
	if c.MaxPort < c.MinPort {
		c.MinPort, c.MaxPort = c.MaxPort, c.MinPort
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) listen(ctx context.Context) (*net.UDPConn, error) {
	if c.Listen != nil {
		return c.Listen(ctx)
	}
	lc := net.ListenConfig{Control: c.Control}
	pc, err := lc.ListenPacket(ctx, "udp4", ":0")
	if err != nil {
		return nil, fmt.Errorf("punch: listen: %w", err)
	}
	return pc.(*net.UDPConn), nil
}

// ErrAbandoned is Run's error after Abandon ended it without a path.
var ErrAbandoned = errors.New("punch: abandoned")

// ErrNotApplicable is returned when punching cannot help: this side's
// mapping is not known to be easy or hard (no NAT, UDP blocked, a single
// STUN server), or both sides have the same mapping.
var ErrNotApplicable = errors.New("punch: not applicable")

// Local is this side's punch socket, opened and checked with STUN before
// the offers are exchanged.
type Local struct {
	cfg  Config
	info Info
	conn *net.UDPConn

	mu      sync.Mutex
	used    bool          // Run or Close took the socket
	abandon chan struct{} // made on first use; closed by Abandon
}

// abandonCh returns the channel Abandon closes.
func (l *Local) abandonCh() chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.abandon == nil {
		l.abandon = make(chan struct{})
	}
	return l.abandon
}

// Abandon asks Run (running or still to come) to end without a path as
// soon as both sides are sure to agree: the controlled side at once (it
// has not taken a nomination, or Run would have returned it), the
// controlling side at once unless it has already nominated a pair —
// then Run ends as it would have, with that path once the peer confirms
// it or without one at its deadline. Run then returns ErrAbandoned. The
// caller's other path (ICE's pair) wins the race: a session does not
// wait out the punch's time limit for a punch that is not coming.
func (l *Local) Abandon() {
	ch := l.abandonCh()
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// GuessTime is how long the easy side's guesses of the hard side's ports
// take at the configured rate (Probes at Rate per second): nearly every
// punch that succeeds does within it (and one hard round).
func (l *Local) GuessTime() time.Duration {
	return time.Duration(float64(l.cfg.Probes) / l.cfg.Rate * float64(time.Second))
}

// Prepare opens the punch socket and asks the STUN servers for its
// public address; the answers tell this side's mapping (Info). Sides
// without a NAT, with UDP blocked or whose mapping is unknown get
// ErrNotApplicable: ICE alone serves them.
func Prepare(ctx context.Context, cfg Config) (*Local, error) {
	cfg = cfg.withDefaults()
	conn, err := cfg.listen(ctx)
	if err != nil {
		return nil, err
	}
	r, err := netcheck.Check(ctx, netcheck.Config{Servers: cfg.STUN, AllowPrivate: cfg.AllowPrivate, Timeout: cfg.CheckTimeout, Conn: conn})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("punch: STUN check: %w", err)
	}
	var mapping string
	switch r.Behavior {
	case netcheck.EndpointIndependent:
		mapping = Easy
	case netcheck.EndpointDependent:
		mapping = Hard
	default:
		conn.Close()
		return nil, fmt.Errorf("%w: mapping %s", ErrNotApplicable, r.Behavior)
	}
	if !r.Public.Addr().Is4() {
		conn.Close()
		return nil, fmt.Errorf("%w: public address %s is not IPv4", ErrNotApplicable, r.Public)
	}
	return &Local{cfg: cfg, info: Info{Mapping: mapping, Addr: r.Public.String()}, conn: conn}, nil
}

// Info is what to announce to the peer.
func (l *Local) Info() Info { return l.info }

// Close closes the punch socket unless Run took it.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used {
		return nil
	}
	l.used = true
	return l.conn.Close()
}

// event is one authenticated packet a punching socket received.
type event struct {
	sock int
	from netip.AddrPort
	p    packet
}

// target is one socket and remote address.
type target struct {
	sock int
	to   netip.AddrPort
}

// Run punches a path to the peer, whose Info came in its offer, and
// returns it as a Conn. key is the session's (DeriveKey); controlling is
// true on the consumer's side, which nominates the pair. It ends within
// Config.Timeout (the controlled side a second later); on failure every
// socket is closed. Run may be called once.
func (l *Local) Run(ctx context.Context, key Key, controlling bool, peer Info) (*Conn, error) {
	l.mu.Lock()
	if l.used {
		l.mu.Unlock()
		return nil, errors.New("punch: socket already used")
	}
	l.used = true
	l.mu.Unlock()
	socks := []*net.UDPConn{l.conn}
	keep := -1
	defer func() {
		for i, s := range socks {
			if i != keep {
				s.Close()
			}
		}
	}()
	cfg := l.cfg
	peerAddr, err := peer.Validate(func(a netip.Addr) bool { return addrs.Remote(a, cfg.AllowPrivate) })
	if err != nil {
		return nil, err
	}
	if !Applies(l.info.Mapping, peer.Mapping) {
		return nil, fmt.Errorf("%w: this side %s, the peer %s", ErrNotApplicable, l.info.Mapping, peer.Mapping)
	}
	hard := l.info.Mapping == Hard
	role, peerRole := byte(roleControlling), byte(roleControlled)
	timeout := cfg.Timeout
	if !controlling {
		role, peerRole = peerRole, role
		timeout += controlledGrace
	}
	start := time.Now()
	deadline := start.Add(timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	abandon := l.abandonCh()
	if hard && cfg.Sockets > 1 {
		extra := takeSockets(cfg.Sockets - 1)
		if extra == 0 {
			return nil, fmt.Errorf("punch: too many punches at once (%d sockets held)", MaxProcessSockets)
		}
		// The budget is for the run; the one socket kept is the
		// Conn's, like any session socket.
		defer releaseSockets(extra)
		for len(socks) < 1+extra && ctx.Err() == nil {
			s, err := cfg.listen(ctx)
			if err != nil {
				// Out of descriptors or ports: punch with what we have.
				cfg.Logger.Warn("punch: fewer sockets than configured", "opened", len(socks), "want", cfg.Sockets, "err", err)
				break
			}
			socks = append(socks, s)
		}
	}
	ports := make([]uint16, len(socks))
	for i, s := range socks {
		ports[i] = s.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	}

	// Readers: one per socket, passing on authenticated packets from the
	// peer's public address (exactly its address when it is easy).
	events := make(chan event, 256)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for {
				n, from, err := s.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
				if from.Addr() != peerAddr.Addr() || (hard && from.Port() != peerAddr.Port()) {
					continue
				}
				p, err := decode(buf[:n], key, peerRole)
				if err != nil {
					continue
				}
				select {
				case events <- event{sock: i, from: from, p: p}:
				case <-stop:
					return
				default: // the loop is behind: drop, the peer repeats
				}
			}
		}()
	}
	defer func() {
		close(stop)
		for i, s := range socks {
			if i == keep {
				_ = s.SetReadDeadline(time.Now())
			} else {
				s.Close()
			}
		}
		wg.Wait()
		if keep >= 0 {
			_ = socks[keep].SetReadDeadline(time.Time{})
		}
	}()

	send := func(t target, kind byte, id [8]byte) {
		_, _ = socks[t.sock].WriteToUDPAddrPort(packet{kind: kind, role: role, txid: id}.encode(key), t.to)
	}
	ping := func(t target, use bool) {
		kind := byte(kindPing)
		if use {
			kind = kindUse
		}
		send(t, kind, txid(key, role, use, ports[t.sock], t.to))
	}
	spray := newSprayer(cfg, hard, len(socks), peerAddr)
	lim := rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/100)))
	answers := rate.NewLimiter(answerRate, answerBurst)
	pinged := map[target]bool{}
	var nominee *target
	var nextUse time.Time
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			cfg.Logger.Debug("punch: no path", "mapping", l.info.Mapping, "sockets", len(socks), "sent", sent)
			return nil, fmt.Errorf("punch: no path to %s within %v (%d sockets, %d pings sent)", peerAddr.Addr(), timeout, len(socks), sent)
		case <-abandon:
			if controlling && nominee != nil {
				// The peer may have taken the nomination: finish it.
				abandon = nil
				continue
			}
			cfg.Logger.Debug("punch: abandoned", "mapping", l.info.Mapping, "sockets", len(socks), "sent", sent, "after", time.Since(start).Round(time.Millisecond))
			return nil, fmt.Errorf("%w after %v (%d pings sent)", ErrAbandoned, time.Since(start).Round(time.Millisecond), sent)
		case ev := <-events:
			t := target{ev.sock, ev.from}
			switch ev.p.kind {
			case kindPing, kindUse:
				if ev.p.kind == kindUse && !controlling {
					// Always answered: it ends the run (a repeated
					// nomination is answered by the Conn).
					send(t, kindPong, ev.p.txid)
					keep = t.sock
					cfg.Logger.Info("punch: path nominated", "remote", t.to, "sockets", len(socks), "after", time.Since(start).Round(time.Millisecond))
					return newConn(socks[keep], t.to, key, role, cfg), nil
				}
				if answers.Allow() {
					send(t, kindPong, ev.p.txid)
				}
				if !pinged[t] && len(pinged) < maxCandidates && answers.Allow() {
					pinged[t] = true
					ping(t, false)
				}
			case kindPong:
				switch {
				case ev.p.txid == txid(key, role, false, ports[t.sock], t.to):
					// A pair confirmed in the last moments is not
					// nominated: the nomination's answer could miss the
					// deadline after the peer took it, and the two sides
					// would keep different paths.
					if controlling && nominee == nil && time.Until(deadline) > nominateBefore {
						nominee = &t
						ping(t, true)
						nextUse = time.Now().Add(useEvery)
					}
				case controlling && nominee != nil && *nominee == t && ev.p.txid == txid(key, role, true, ports[t.sock], t.to):
					keep = t.sock
					cfg.Logger.Info("punch: path selected", "remote", t.to, "sockets", len(socks), "after", time.Since(start).Round(time.Millisecond))
					return newConn(socks[keep], t.to, key, role, cfg), nil
				}
			}
		case now := <-tick.C:
			if nominee != nil {
				// The pair is found: only the nomination goes on.
				if now.After(nextUse) {
					ping(*nominee, true)
					nextUse = now.Add(useEvery)
				}
				continue
			}
			for lim.Allow() {
				t, ok := spray.next(now)
				if !ok {
					break
				}
				ping(t, false)
				sent++
			}
		}
	}
}

// sprayer plans the pings that open mappings: the hard side pings the
// easy side's address from every socket once per round; the easy side
// pings distinct random ports of the hard side's address, up to
// Config.Probes.
type sprayer struct {
	hard    bool
	socks   int
	peer    netip.AddrPort
	min     int
	span    int
	probes  int
	tried   map[uint16]bool
	i       int       // hard: next socket of the round
	roundAt time.Time // hard: when the next round may start
}

func newSprayer(cfg Config, hard bool, socks int, peer netip.AddrPort) *sprayer {
	return &sprayer{hard: hard, socks: socks, peer: peer, min: int(cfg.MinPort), span: int(cfg.MaxPort) - int(cfg.MinPort) + 1, probes: cfg.Probes, tried: map[uint16]bool{}}
}

func (s *sprayer) next(now time.Time) (target, bool) {
	if s.hard {
		if s.i == s.socks {
			if now.Before(s.roundAt) {
				return target{}, false
			}
			s.i = 0
		}
		if s.i == 0 {
			s.roundAt = now.Add(hardRound)
		}
		t := target{sock: s.i, to: s.peer}
		s.i++
		return t, true
	}
	if len(s.tried) >= min(s.probes, s.span) {
		return target{}, false
	}
	for {
		p := uint16(s.min + rand.IntN(s.span))
		if !s.tried[p] {
			s.tried[p] = true
			return target{sock: 0, to: netip.AddrPortFrom(s.peer.Addr(), p)}, true
		}
	}
}
