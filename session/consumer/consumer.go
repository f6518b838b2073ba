// Package consumer is the consumer's connection manager: it picks a
// proposal (or takes the one given), opens the session control stream to
// the provider over libp2p, sends the signed SessionRequest, brings up the
// userspace WireGuard tunnel with its local SOCKS5/HTTP proxies, and pays
// the provider's invoices (session/pingpong/paystream) until the user
// disconnects or the session fails. An invoice above the fair total is
// refused and the tunnel torn down; nothing is ever promised beyond the
// channel ledger's balance.
package consumer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/internal/tick"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
	"github.com/openmyst/openmyst/tunnel"
)

// ErrNoProposal is returned when no proposal matches the filter.
var ErrNoProposal = errors.New("consumer: no matching proposal")

// ErrUnreachable wraps a failure to reach a provider at all (no libp2p
// connection to the peer of its proposal): the addresses it announced may
// be gone, e.g. after it crashed or restarted.
var ErrUnreachable = errors.New("provider unreachable")

// PeerFinder finds a provider's addresses when its proposal lists none
// (the DHT; p2p.Node implements it).
type PeerFinder interface {
	FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error)
}

// BalanceSource re-reads the consumer's channel balance from the chain
// into the channel ledger (it sees top-ups made after the node started).
type BalanceSource interface {
	RefreshBalance(ctx context.Context) error
}

// DefaultResumeWithin is Config.ResumeWithin's default, below the
// provider's paystream.DefaultResumeGrace.
const DefaultResumeWithin = 25 * time.Second

// DefaultBalanceEvery is how often an open connection re-reads the channel
// balance when Config.BalanceEvery is zero.
const DefaultBalanceEvery = 30 * time.Second

// Config configures a Manager.
type Config struct {
	// Signer is the consumer identity (signs requests and promises).
	Signer identity.Signer
	// ChainID is the chain the consumer pays on.
	ChainID *big.Int
	// Hermes is the payment hub of the consumer's channel.
	Hermes common.Address
	// Host opens the session streams.
	Host host.Host
	// Finder, when set, looks providers up in the DHT.
	Finder PeerFinder
	// Channel is the consumer's channel ledger, shared by all sessions.
	Channel pingpong.Channel
	// Balance, when set, re-reads the channel balance before each
	// connect, once before refusing a payment the known balance does not
	// cover, and every BalanceEvery while a connection is open. A failed
	// re-read keeps the balance already known.
	Balance BalanceSource
	// BalanceEvery is the re-read period of open connections (zero:
	// DefaultBalanceEvery).
	BalanceEvery time.Duration
	// MaxFee is the largest transactor fee per promise accepted.
	MaxFee *big.Int
	// Tolerance bounds invoices (zero: pingpong.DefaultTolerance).
	Tolerance *pingpong.Tolerance
	// History records sessions (optional).
	History *session.History
	// Keepalive and ReadTimeout tune the session stream.
	Keepalive   time.Duration
	ReadTimeout time.Duration
	// HandshakeTimeout bounds the WireGuard handshake.
	HandshakeTimeout time.Duration
	// ResumeWithin bounds how long a session whose control stream was
	// lost tries to resume on a new stream (sessions opened on
	// sessionproto.ProtocolResume; zero: DefaultResumeWithin). It should
	// stay below the provider's resume grace.
	ResumeWithin time.Duration
	// DeadAfter is how long an open session's tunnel may keep sending
	// while receiving nothing before the session ends with
	// session.ErrPathLost (tunnel.Liveness; zero: tunnel.DefaultDeadAfter).
	// A session over ICE also ends so when its agent loses the path
	// (ice.Config.LostAfter).
	DeadAfter time.Duration
	// Proxy brings up the tunnel of a connection whose Options.Tunnel is
	// nil (node.UserspaceProxy: tunnel/userspace with local proxies).
	// Without it such a connection fails.
	Proxy ProxyOpener
	// ICE, when set, offers ICE (nat/ice) to providers that speak
	// sessionproto.ProtocolICE and carries the userspace tunnel over the
	// selected pair. A provider without ICE, or checks that fail within
	// ICE.Timeout, leave the session on the provider's UDP endpoint. A
	// connection with Options.Tunnel uses ICE when Options.ICEChecks is
	// set.
	ICE *ice.Config
	// SignedProposal, when set, returns the provider's signed proposal
	// with the given sequence number (discovery's cache); the connection
	// keeps it so a refused overcharge can be proven to others.
	SignedProposal func(provider common.Address, seq uint64) (market.SignedProposal, bool)
	// OnOvercharge, when set, is called from the session's goroutine
	// with that signed proposal and the invoice refused as an overcharge
	// (to publish a fraud proof, package quality).
	OnOvercharge func(ctx context.Context, sp market.SignedProposal, inv *payments.Invoice)
	// OnResult, when set, is called once for each Connect that failed
	// and once for each session when it ends, with what the consumer
	// measured (for quality reports, package quality).
	OnResult func(Result)
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// Options are per-connection settings.
type Options struct {
	// SOCKSListen is the local SOCKS5 address ("127.0.0.1:0" picks a
	// port; empty disables it).
	SOCKSListen string
	// HTTPListen is the local HTTP proxy address (empty disables it).
	HTTPListen string
	// Tunnel, when set, brings the client tunnel up instead of
	// Config.Proxy's (node.KernelTunnel: a kernel TUN with routes and kill
	// switch); the proxy addresses above are then ignored. Such a tunnel
	// fails closed: when the session fails (the provider is gone, an
	// overcharge) it stays up, kill switch included, until Disconnect.
	Tunnel TunnelOpener
	// ICEChecks, when set with Tunnel, lets such a connection use ICE
	// (Config.ICE): it is called before the connectivity checks with
	// where they go and leave from (a kill switch admits them, and routes
	// them outside an earlier tunnel, while the checks run), and the
	// tunnel gets the ICE connection and the selected path (TunnelRoute).
	// An error leaves the session on the provider's UDP endpoint. Nil: a
	// Tunnel connection uses the endpoint.
	ICEChecks func(ctx context.Context, c ICECheck) error
	// ICEGather, when set with ICEChecks, is called before the session
	// gathers its candidates (a kill switch admits the STUN/TURN servers
	// while the session negotiates). An error leaves the session on the
	// provider's UDP endpoint.
	ICEGather func(ctx context.Context) error
	// ICEExclude are interfaces ICE gathers no candidates on (the
	// Tunnel's own TUN).
	ICEExclude []string
	// ICEMark, when nonzero, marks the session's ICE sockets
	// (ice.Config.SocketMark): the Tunnel's kill switch admits the
	// connectivity checks of exactly those sockets.
	ICEMark uint32
	// ControlPath, when set with Tunnel, is told the TCP/UDP destinations
	// the session's control connection needs outside the tunnel whenever
	// a resume changes them (TunnelRoute.Control has the first ones):
	// before each resume attempt the connection's current ones and every
	// libp2p address the provider's peer is known at (ResumeAddrs), and
	// once a resume succeeded only the new connection's. A kill switch
	// admits exactly these besides its other exemptions. An error fails
	// the resume attempt.
	ControlPath func(ctx context.Context, addrs []netip.AddrPort) error
	// PayLoop, when set, runs the session's payment side on its stream
	// instead of paystream.Consumer, until the session ends.
	PayLoop func(ctx context.Context, r *sessionproto.Reader, w *sessionproto.Writer) error
}

// TunnelDialer is a tunnel.Client of Options.Tunnel that opens
// connections inside its tunnel, never outside it (a kernel tunnel's
// socket bound to its TUN: node's kernel sessions). The session then asks
// the network's STUN servers through it where the exit's traffic comes
// from (Status.PublicIPSeen), as it does through a proxy mode's netstack.
type TunnelDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// ICECheck is what a session's ICE connectivity checks need outside a
// tunnel (Options.ICEChecks).
type ICECheck struct {
	// Candidates are the UDP addresses of the provider's validated
	// candidates. Checks from a peer-reflexive address (a provider
	// behind a symmetric NAT) arrive at, and are answered from, the
	// agent's sockets (Options.ICEMark).
	Candidates []netip.AddrPort
}

// Manager opens consumer sessions.
type Manager struct {
	cfg Config
	log *slog.Logger
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Signer == nil || cfg.ChainID == nil || cfg.Host == nil || cfg.Channel == nil:
		return nil, errors.New("consumer: signer, chain id, host and channel are required")
	case cfg.Hermes == (common.Address{}):
		return nil, errors.New("consumer: no hermes")
	}
	cfg.MaxFee = cmp.Or(cfg.MaxFee, new(big.Int))
	if cfg.Tolerance == nil {
		t := pingpong.DefaultTolerance
		cfg.Tolerance = &t
	}
	cfg.ReadTimeout = defaults.Positive(cfg.ReadTimeout, paystream.DefaultReadTimeout)
	cfg.Keepalive = defaults.Positive(cfg.Keepalive, paystream.DefaultKeepalive)
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	cfg.BalanceEvery = defaults.Positive(cfg.BalanceEvery, DefaultBalanceEvery)
	cfg.DeadAfter = defaults.Positive(cfg.DeadAfter, tunnel.DefaultDeadAfter)
	cfg.ResumeWithin = defaults.Positive(cfg.ResumeWithin, DefaultResumeWithin)
	if cfg.Balance != nil {
		cfg.Channel = &refreshingChannel{Channel: cfg.Channel, src: cfg.Balance, log: cfg.Log}
	}
	return &Manager{cfg: cfg, log: cfg.Log}, nil
}

// refreshingChannel re-reads the balance once when a raise would exceed
// it, and retries the raise once.
type refreshingChannel struct {
	pingpong.Channel
	src BalanceSource
	log *slog.Logger
}

// Raise implements pingpong.Channel.
func (c *refreshingChannel) Raise(ctx context.Context, delta *big.Int) (*big.Int, error) {
	v, err := c.Channel.Raise(ctx, delta)
	if !errors.Is(err, pingpong.ErrInsufficientBalance) {
		return v, err
	}
	if rerr := c.src.RefreshBalance(ctx); rerr != nil {
		c.log.Warn("consumer: re-read channel balance", "err", rerr)
		return v, err
	}
	return c.Channel.Raise(ctx, delta)
}

// refreshBalance re-reads the channel balance, logging a failure.
func (m *Manager) refreshBalance(ctx context.Context) {
	if m.cfg.Balance == nil {
		return
	}
	if err := m.cfg.Balance.RefreshBalance(ctx); err != nil {
		m.log.Warn("consumer: re-read channel balance", "err", err)
	}
}

// watchBalance re-reads the channel balance every BalanceEvery until ctx
// ends.
func (m *Manager) watchBalance(ctx context.Context) {
	if m.cfg.Balance == nil {
		return
	}
	tick.Every(ctx, m.cfg.BalanceEvery, m.refreshBalance)
}

// Stage says where a Result was taken.
type Stage string

// The stages of a Result.
const (
	// StageConnect: opening the control stream to the provider.
	StageConnect Stage = "connect"
	// StageRequest: the provider answered the request with an error.
	StageRequest Stage = "request"
	// StageTunnel: bringing the tunnel up (the WireGuard handshake).
	StageTunnel Stage = "tunnel"
	// StageSession: the session ran and ended (Err nil: the consumer
	// disconnected).
	StageSession Stage = "session"
)

// Result is what the consumer measured of one attempt or session.
type Result struct {
	// Proposal is the proposal connected to.
	Proposal market.Proposal
	// Stage is where it ended; Err why (nil for a clean disconnect).
	Stage Stage
	Err   error
	// TunnelUp is from Connect to the tunnel's first bytes from the
	// provider (the completed WireGuard handshake); zero if never.
	TunnelUp time.Duration
	// Duration, Bytes: the session's length and traffic (up plus down).
	Duration time.Duration
	Bytes    uint64
	// Paid is the agreement total paid and Exchange the latest exchange
	// message (nil when nothing was paid).
	Paid     *big.Int
	Exchange *payments.ExchangeMessage
}

func (m *Manager) result(r Result) {
	if m.cfg.OnResult != nil {
		m.cfg.OnResult(r)
	}
}

// Pick returns the first proposal of ps matching f in f's order.
func Pick(ps []market.Proposal, f market.Filter) (market.Proposal, error) {
	m := f.Apply(ps)
	if len(m) == 0 {
		return market.Proposal{}, ErrNoProposal
	}
	return m[0], nil
}

// Status is a snapshot of a connection.
type Status struct {
	// SessionID is the provider-chosen session id.
	SessionID string `json:"session_id"`
	// Provider is the provider identity.
	Provider common.Address `json:"provider"`
	// Country is the proposal's country.
	Country string `json:"country"`
	// Start is when the tunnel came up.
	Start time.Time `json:"start"`
	// Duration is how long it has been up.
	Duration time.Duration `json:"duration"`
	// RxBytes and TxBytes are the tunnel counters.
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
	// Spent is the total promised for this session, in wei.
	Spent *big.Int `json:"spent"`
	// Invoices counts invoices paid.
	Invoices int `json:"invoices"`
	// Rate is Spent per hour at the current pace, in wei.
	Rate *big.Int `json:"rate_per_hour"`
	// Path is how the tunnel's datagrams travel: PathStatic (to the
	// provider's UDP endpoint) or the ICE path (ice.PathDirect,
	// ice.PathRelay).
	Path string `json:"path"`
	// PublicIP is the public address the provider says the consumer's
	// traffic leaves its exit from (invalid: the provider did not say).
	PublicIP netip.Addr `json:"public_ip,omitzero"`
	// PublicIPCheck is how PublicIP compares with the address the
	// tunnel's datagrams are exchanged with (see CheckPublicIP) or, once
	// a STUN server answered through the tunnel, with PublicIPSeen (see
	// CheckSeenIP).
	PublicIPCheck string `json:"public_ip_check,omitempty"`
	// PublicIPSeen is the address a STUN server of the network saw a
	// binding request sent through the tunnel come from: the exit's
	// public address as an outside host sees it (invalid: no STUN
	// server configured, the probe has not answered yet or failed, or a
	// tunnel the probe cannot use).
	PublicIPSeen netip.Addr `json:"public_ip_seen,omitzero"`
	// Resumes counts the times the session's control stream was lost and
	// the session resumed on a new one (the tunnel stayed up).
	Resumes int `json:"resumes,omitempty"`
	// Running is false once the session has ended.
	Running bool `json:"running"`
	// Err is why it ended ("" while running or after a clean disconnect).
	Err string `json:"error,omitempty"`
}

// PathStatic is a session whose datagrams go to the provider's UDP
// endpoint, without ICE.
const PathStatic = "static"

// The values of Status.PublicIPCheck: the provider's claimed exit
// address equals the address the tunnel's datagrams are exchanged with
// (its WireGuard endpoint, or the direct ICE pair's remote address);
// differs from it (a provider behind NAT, with a separate egress, or
// lying: shown as unconfirmed); or cannot be compared (relayed path).
const (
	IPMatchesPeer  = "matches_tunnel_peer"
	IPDiffersPeer  = "differs_from_tunnel_peer"
	IPUncheckedRly = "unchecked_relay"
)

// The values of Status.PublicIPCheck once a STUN server answered a
// binding request sent through the tunnel (Status.PublicIPSeen): the
// provider's claimed exit address is the address the STUN server saw,
// or it is not (a multi-homed provider whose egress is another address,
// or a lying one: shown as unconfirmed).
const (
	IPConfirmedSTUN = "confirmed_by_stun"
	IPDiffersSTUN   = "differs_from_stun"
)

// CheckSeenIP is the PublicIPCheck of a claimed exit address once a STUN
// server saw the tunnel's traffic come from seen; prior is the check
// before (CheckPublicIP's). Without a seen address, or without a claim
// to compare it with, the check stays prior.
func CheckSeenIP(claim, seen netip.Addr, prior string) string {
	switch {
	case !seen.IsValid() || !claim.IsValid():
		return prior
	case claim.Unmap() == seen.Unmap():
		return IPConfirmedSTUN
	default:
		return IPDiffersSTUN
	}
}

// CheckPublicIP compares a provider's claimed exit address with peer,
// the address the tunnel reached (invalid: relayed, nothing to compare).
// It returns "" when there is no claim.
func CheckPublicIP(claim, peer netip.Addr) string {
	switch {
	case !claim.IsValid():
		return ""
	case !peer.IsValid():
		return IPUncheckedRly
	case claim.Unmap() == peer.Unmap():
		return IPMatchesPeer
	default:
		return IPDiffersPeer
	}
}

// Connection is one open consumer session.
type Connection struct {
	m        *Manager
	proposal market.Proposal
	id       string
	sid      sessionproto.SessionID
	peer     peer.AddrInfo // the provider's peer, for resumes
	streamMu sync.Mutex    // guards stream
	stream   stream        // the current control stream
	resumes  atomic.Int64
	// controlPath is Options.ControlPath; control are the destinations
	// it was last told (under streamMu).
	controlPath func(ctx context.Context, addrs []netip.AddrPort) error
	control     []netip.AddrPort
	tun         tunnel.Client
	us          ProxyTunnel // nil for a tunnel without proxies (kernel)
	payer       *pingpong.InvoicePayer
	path        string
	exitIP      netip.Addr
	mu          sync.Mutex // guards ipCheck and seenIP
	ipCheck     string
	seenIP      netip.Addr // the exit's address a STUN server saw (probeExit)
	start       time.Time
	payFrom     time.Time // the start invoices are checked against
	// ConnectedAt is when Connect returned (tunnel up).
	ConnectedAt time.Time
	cancel      context.CancelFunc
	done        chan struct{}
	err         error
}

// Connect opens a session on proposal p and brings the tunnel up. The
// session runs until Disconnect or a failure (see Done and Err).
func (m *Manager) Connect(ctx context.Context, p market.Proposal, o Options) (*Connection, error) {
	pid, err := p.Peer()
	if err != nil {
		return nil, fmt.Errorf("consumer: proposal peer: %w", err)
	}
	info := peer.AddrInfo{ID: pid}
	for _, a := range p.Addrs {
		if maddr, err := ma.NewMultiaddr(a); err == nil {
			info.Addrs = append(info.Addrs, maddr)
		}
	}
	if len(info.Addrs) == 0 && m.cfg.Finder != nil {
		if found, err := m.cfg.Finder.FindPeer(ctx, pid); err == nil {
			info = found
		}
	}
	begin := time.Now()
	// A provider behind a NAT that cannot be punched (symmetric) is
	// reached only through a circuit relay: a limited connection, whose
	// relay cuts it after p2p.CircuitDuration or p2p.CircuitData. The
	// session's control stream fits in those; WireGuard runs over ICE.
	lctx := network.WithAllowLimitedConn(ctx, "openmyst session")
	if err := m.cfg.Host.Connect(lctx, info); err != nil {
		m.result(Result{Proposal: p, Stage: StageConnect, Err: err})
		return nil, fmt.Errorf("consumer: connect to provider %s: %w: %w", p.ProviderID.Hex(), ErrUnreachable, err)
	}
	s, err := m.cfg.Host.NewStream(lctx, pid, sessionproto.ProtocolResume, sessionproto.ProtocolICE, sessionproto.ProtocolID)
	if err != nil {
		m.result(Result{Proposal: p, Stage: StageConnect, Err: err})
		return nil, fmt.Errorf("consumer: open session stream: %w", err)
	}
	c, err := m.open(ctx, s, p, o, begin, info)
	if err != nil {
		_ = s.Reset()
		return nil, err
	}
	return c, nil
}

// stream is what a session needs of a libp2p stream.
type stream interface {
	sessionproto.DeadlineReader
	sessionproto.DeadlineWriter
	Close() error
}

func (m *Manager) open(ctx context.Context, s stream, p market.Proposal, o Options, begin time.Time, provider peer.AddrInfo) (*Connection, error) {
	m.refreshBalance(ctx) // a top-up since the last session counts
	wgKey, err := tunnel.GenerateKey()
	if err != nil {
		return nil, err
	}
	req, err := sessionproto.RequestFor(&p, m.cfg.Hermes, sessionproto.Key(wgKey.PublicKey()), time.Now())
	if err != nil {
		return nil, fmt.Errorf("consumer: build request: %w", err)
	}
	var agent *ice.Agent
	useICE := m.cfg.ICE != nil && (o.Tunnel == nil || o.ICEChecks != nil) && (streamProtocol(s) == sessionproto.ProtocolICE || streamProtocol(s) == sessionproto.ProtocolResume)
	if useICE && o.Tunnel != nil && o.ICEGather != nil {
		if err := o.ICEGather(ctx); err != nil {
			m.log.Warn("consumer: cannot reach the STUN/TURN servers; using the provider's UDP endpoint", "err", err)
			useICE = false
		}
	}
	if useICE {
		// A provider of protocol 1.1 or older refuses an offer with
		// punch parameters. A tun session punches only when its agent's
		// sockets carry the kill switch's mark (ICEMark; the punch
		// sockets are the agent's): unmarked, the kill switch would
		// refuse them.
		punch := OffersPunch(streamProtocol(s)) && (o.Tunnel == nil || o.ICEMark != 0)
		agent, req.ICE = m.gather(ctx, o.ICEExclude, o.ICEMark, punch)
	}
	closeAgent := func() {
		if agent != nil {
			_ = agent.Close()
			agent = nil
		}
	}
	defer closeAgent() // unless the tunnel took the connection over
	if err := req.Sign(m.cfg.Signer); err != nil {
		return nil, fmt.Errorf("consumer: sign request: %w", err)
	}
	var signed *market.SignedProposal // the evidence of the agreed price
	if m.cfg.SignedProposal != nil {
		if sp, ok := m.cfg.SignedProposal(p.ProviderID, p.Seq); ok {
			signed = &sp
		}
	}
	r := sessionproto.NewReader(s, 15*time.Second)
	w := sessionproto.NewWriter(s, 15*time.Second)
	if err := w.WriteMessage(ctx, req); err != nil {
		return nil, fmt.Errorf("consumer: send request: %w", err)
	}
	msg, err := r.ReadMessage(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer: read response: %w", err)
	}
	var resp *sessionproto.SessionResponse
	switch v := msg.(type) {
	case *sessionproto.SessionResponse:
		resp = v
	case *sessionproto.Error:
		m.result(Result{Proposal: p, Stage: StageRequest, Err: v})
		return nil, fmt.Errorf("consumer: provider refused: %w", v)
	default:
		return nil, fmt.Errorf("consumer: unexpected %s instead of a response", msg.Type())
	}
	ep, err := netip.ParseAddrPort(resp.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("consumer: provider endpoint %q: %w", resp.Endpoint, err)
	}
	sess := tunnel.SessionConfig{
		PrivateKey: wgKey, Addresses: resp.ConsumerAddrs, DNS: resp.DNS, PeerPublicKey: tunnel.PublicKey(resp.ProviderWGKey),
		Endpoint: ep, AllowedIPs: tunnel.FullTunnel(), PersistentKeepalive: tunnel.DefaultKeepalive,
	}
	path, peerAddr := PathStatic, ep.Addr()
	var iceConn net.Conn
	var iceLost <-chan struct{} // nil without ICE: never closed
	var sendsTo []netip.AddrPort
	relayed := false
	if agent != nil {
		if iceConn, err = m.connectICE(ctx, agent, resp.ICE, o.ICEChecks); err != nil {
			m.log.Warn("consumer: no ICE path; using the provider's UDP endpoint", "endpoint", ep, "err", err)
			closeAgent()
		} else {
			ip := agent.Path()
			iceLost = agent.Lost()
			path, peerAddr = ip.Kind, ip.RemoteAddr.Addr()
			if ip.Kind == ice.PathRelay {
				peerAddr = netip.Addr{}
			}
			if to, ok := ip.SendsTo(); ok {
				sendsTo = []netip.AddrPort{to}
			} else {
				relayed = true
			}
		}
	}
	ipCheck := CheckPublicIP(resp.ExitIP, peerAddr)
	if ipCheck == IPDiffersPeer {
		m.log.Warn("consumer: the provider's claimed exit address is not the address the tunnel reached",
			"provider", p.ProviderID.Hex(), "claimed", resp.ExitIP, "peer", peerAddr)
	}
	// The provider charges from when it has answered and its ICE checks
	// are done, not from the end of the WireGuard handshake that follows;
	// the invoices are checked against the same start. A handshake that
	// needs WireGuard's retry (a lost initiation or response: 5 s and
	// more) otherwise made the provider's first invoice exceed the
	// tolerance and an honest provider was refused as overcharging.
	payFrom := time.Now()
	var tun tunnel.Client
	var us ProxyTunnel
	control := controlAddrs(s)
	switch {
	case o.Tunnel != nil:
		tun, err = o.Tunnel(ctx, sess, TunnelRoute{Control: control, Conn: iceConn, Path: sendsTo, Relayed: relayed})
		if iceConn != nil {
			agent = nil // the opener owns the connection and so the agent
		}
	case m.cfg.Proxy != nil:
		us, err = m.cfg.Proxy(ctx, sess, ProxyOptions{
			SOCKSListen: o.SOCKSListen, HTTPListen: o.HTTPListen, HandshakeTimeout: m.cfg.HandshakeTimeout, Log: m.log, Conn: iceConn,
		})
		tun = us
		if iceConn != nil {
			agent = nil // the opener owns the connection and so the agent
		}
	default:
		err = errors.New("no tunnel: set consumer.Config.Proxy or Options.Tunnel")
	}
	if err != nil {
		m.result(Result{Proposal: p, Stage: StageTunnel, Err: err})
		_ = w.WriteMessage(ctx, &sessionproto.Destroy{Reason: "tunnel failed"})
		return nil, fmt.Errorf("consumer: bring the tunnel up: %w", err)
	}
	start := time.Now()
	tunnelUp := start.Sub(begin)
	price := pingpong.Price{PerHour: req.PricePerHour.Int(), PerGiB: req.PricePerGiB.Int()}
	payer, err := pingpong.NewInvoicePayer(pingpong.PayerConfig{
		ChainID: m.cfg.ChainID, Consumer: m.cfg.Signer, Provider: p.ProviderID, HermesID: m.cfg.Hermes,
		Channel: m.cfg.Channel, Price: price, MaxFee: m.cfg.MaxFee, Tolerance: *m.cfg.Tolerance, Start: payFrom,
	})
	if err != nil {
		_ = tun.Close()
		return nil, err
	}
	id := resp.SessionID.String()
	if m.cfg.History != nil {
		if err := m.cfg.History.Put(ctx, session.Record{
			ID: id, Role: session.RoleConsumer, Provider: p.ProviderID, Consumer: m.cfg.Signer.Address(), Hermes: m.cfg.Hermes,
			PricePerHour: price.PerHour.String(), PricePerGiB: price.PerGiB.String(), Start: start, Paid: "0", Path: path,
		}); err != nil {
			_ = tun.Close()
			return nil, err
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	c := &Connection{m: m, proposal: p, id: id, sid: resp.SessionID, peer: provider, stream: s, tun: tun, us: us, payer: payer, path: path, exitIP: resp.ExitIP, ipCheck: ipCheck, start: start, payFrom: payFrom, ConnectedAt: time.Now(), cancel: cancel, done: make(chan struct{})}
	if o.Tunnel != nil {
		c.controlPath, c.control = o.ControlPath, control
	}
	m.log.Info("consumer: session started", "session", id, "path", path)
	pctx, pstop := context.WithCancel(rctx)
	probed := make(chan struct{})
	var dial func(ctx context.Context, network, address string) (net.Conn, error)
	if us != nil {
		dial = us.DialContext
	} else if d, ok := tun.(TunnelDialer); ok {
		dial = d.DialContext
	}
	if targets := m.stunTargets(); len(targets) > 0 && dial != nil {
		go func() { defer close(probed); c.probeExit(pctx, dial, targets) }()
	} else {
		close(probed)
	}
	usage := func() uint64 { st := tun.Stats(); return st.RxBytes + st.TxBytes }
	pr := sessionproto.NewReader(s, m.cfg.ReadTimeout)
	go func() {
		defer close(c.done)
		bctx, bstop := context.WithCancel(rctx)
		bdone := make(chan struct{})
		go func() { defer close(bdone); m.watchBalance(bctx) }()
		defer func() { bstop(); <-bdone }()
		// The path watcher ends the session (its cause is then
		// session.ErrPathLost) when the tunnel's path dies; a Disconnect
		// first cancels rctx, whose cause wins.
		lctx, lcancel := context.WithCancelCause(rctx)
		wdone := make(chan struct{})
		go func() {
			defer close(wdone)
			if err := m.watchPath(lctx, iceLost, tun); err != nil {
				m.log.Warn("consumer: session path lost", "session", id, "path", path, "err", err)
				lcancel(err)
			}
		}()
		var err error
		if o.PayLoop != nil {
			err = o.PayLoop(lctx, pr, w)
		} else {
			popt := paystream.Options{Keepalive: m.cfg.Keepalive, Log: m.log.With("session", id)}
			if streamProtocol(s) == sessionproto.ProtocolResume && m.cfg.Host != nil && c.peer.ID != "" {
				popt.Reconnect = c.resume
			}
			err = paystream.Consumer(lctx, pr, w, payer, usage, popt)
		}
		if cause := context.Cause(lctx); err == nil && errors.Is(cause, session.ErrPathLost) {
			err = cause
		}
		lcancel(nil)
		<-wdone
		c.err = err
		pstop()
		<-probed
		// The counters die with the tunnel: read them first.
		st := tun.Stats()
		var over *pingpong.OverchargeError
		if errors.As(err, &over) && signed != nil && m.cfg.OnOvercharge != nil {
			octx, ocancel := context.WithTimeout(context.Background(), 10*time.Second)
			m.cfg.OnOvercharge(octx, *signed, over.Invoice)
			ocancel()
		}
		if err == nil || o.Tunnel == nil {
			_ = tun.Close()
		} else {
			m.log.Warn("consumer: session failed; the tunnel and its kill switch stay up until disconnect", "session", id, "err", err)
		}
		c.streamMu.Lock()
		_ = c.stream.Close()
		c.streamMu.Unlock()
		if m.cfg.History != nil {
			reason := "disconnected"
			if err != nil {
				reason = err.Error()
			}
			if uerr := m.cfg.History.Update(context.Background(), id, func(r *session.Record) {
				r.End, r.Bytes, r.Paid, r.Reason = time.Now(), st.RxBytes+st.TxBytes, payer.Stats().Paid.String(), reason
			}); uerr != nil {
				m.log.Warn("consumer: record session end", "session", id, "err", uerr)
			}
		}
		ps := payer.Stats() // st was read before the tunnel closed
		m.result(Result{Proposal: p, Stage: StageSession, Err: err, TunnelUp: tunnelUp, Duration: time.Since(start),
			Bytes: st.RxBytes + st.TxBytes, Paid: ps.Paid, Exchange: ps.Exchange})
		m.log.Info("consumer: session ended", "session", id, "err", err)
	}()
	return c, nil
}

// maxSTUNProbes bounds how many of the network's STUN servers a session
// asks, one after the other, for the exit's address (each exchange is
// bounded by ice.MappedAddress).
const maxSTUNProbes = 3

// stunTargets are the STUN servers (host:port) of Config.ICE.
func (m *Manager) stunTargets() []string {
	if m.cfg.ICE == nil {
		return nil
	}
	t := ice.STUNTargets(m.cfg.ICE.Servers)
	return t[:min(len(t), maxSTUNProbes)]
}

// probeExit asks the STUN servers at targets, through the tunnel (dial
// must open its sockets inside it: a request sent outside would show the
// consumer's own address, not the exit's), where the tunnel's traffic
// comes from, and records the first answer as the exit's public address
// seen from outside (Status.PublicIPSeen, CheckSeenIP). Without an
// answer the provider's claim keeps its earlier check.
func (c *Connection) probeExit(ctx context.Context, dial func(ctx context.Context, network, address string) (net.Conn, error), targets []string) {
	log := c.m.log.With("session", c.id)
	for _, t := range targets {
		seen, err := mappedThrough(ctx, dial, t)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Info("consumer: no STUN answer through the tunnel", "server", t, "err", err)
			continue
		}
		c.mu.Lock()
		c.seenIP = seen.Addr()
		c.ipCheck = CheckSeenIP(c.exitIP, c.seenIP, c.ipCheck)
		check := c.ipCheck
		c.mu.Unlock()
		if check == IPDiffersSTUN {
			log.Warn("consumer: the provider's claimed exit address is not the address a STUN server saw through the tunnel",
				"provider", c.proposal.ProviderID.Hex(), "claimed", c.exitIP, "seen", seen.Addr(), "server", t)
		} else {
			log.Info("consumer: exit address seen through the tunnel", "seen", seen.Addr(), "check", check, "server", t)
		}
		return
	}
}

// mappedThrough sends one STUN binding exchange to target over a UDP
// connection dial opens.
func mappedThrough(ctx context.Context, dial func(ctx context.Context, network, address string) (net.Conn, error), target string) (netip.AddrPort, error) {
	dctx, cancel := context.WithTimeout(ctx, ice.DefaultMappedTimeout)
	defer cancel()
	conn, err := dial(dctx, "udp", target)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("dial %s through the tunnel: %w", target, err)
	}
	defer conn.Close()
	return ice.MappedAddress(dctx, conn)
}

// watchPath returns an error wrapping session.ErrPathLost when the
// session's path dies: lost (the ICE agent's Lost; nil without ICE) is
// closed, or the tunnel's counters show it sending without receiving for
// Config.DeadAfter (tunnel.Liveness). It returns nil when ctx ends.
func (m *Manager) watchPath(ctx context.Context, lost <-chan struct{}, tun tunnel.Client) error {
	live := tunnel.Liveness{DeadAfter: m.cfg.DeadAfter}
	t := time.NewTicker(max(m.cfg.DeadAfter/8, 10*time.Millisecond))
	defer t.Stop()
	live.Observe(time.Now(), tun.Stats())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-lost:
			return fmt.Errorf("%w: the ICE path went silent or failed", session.ErrPathLost)
		case now := <-t.C:
			if live.Observe(now, tun.Stats()) {
				return fmt.Errorf("%w: the tunnel sent and received nothing for %v", session.ErrPathLost, m.cfg.DeadAfter)
			}
		}
	}
}

// ID is the session id.
func (c *Connection) ID() string { return c.id }

// Path is how the tunnel's datagrams travel (see Status.Path).
func (c *Connection) Path() string { return c.path }

// streamProtocol is the protocol a libp2p stream negotiated ("" for
// anything else, e.g. a test pipe).
func streamProtocol(s any) protocol.ID {
	if ps, ok := s.(interface{ Protocol() protocol.ID }); ok {
		return ps.Protocol()
	}
	return ""
}

// OffersPunch reports whether a session on a stream of protocol proto
// may carry punch parameters (nat/punch) in its ICE offers: only a
// version newer than 1.1 (whose providers' strict decoders refuse the
// field).
func OffersPunch(proto protocol.ID) bool {
	return proto != "" && proto != sessionproto.ProtocolICE && proto != sessionproto.ProtocolID
}

// gather makes the session's ICE agent, its sockets marked mark (0:
// none), and the offer for the request. On failure it returns no agent
// and the session uses the UDP endpoint. punch false leaves punching
// out of the offer.
func (m *Manager) gather(ctx context.Context, exclude []string, mark uint32, punch bool) (*ice.Agent, json.RawMessage) {
	cfg := *m.cfg.ICE
	cfg.Logger = m.log
	cfg.SocketMark = mark
	if !punch {
		cfg.Punch = nil
	}
	cfg.ExcludeInterfaces = append(append([]string(nil), cfg.ExcludeInterfaces...), exclude...)
	agent, raw, err := ice.Start(ctx, cfg, true)
	if err != nil {
		m.log.Warn("consumer: no ICE offer; using the provider's UDP endpoint", "err", err)
		return nil, nil
	}
	return agent, raw
}

// connectICE validates the provider's offer, lets checks out (when set)
// to its candidates and runs the connectivity checks, for at most the ICE
// timeout.
func (m *Manager) connectICE(ctx context.Context, agent *ice.Agent, raw json.RawMessage, checks func(context.Context, ICECheck) error) (net.Conn, error) {
	if len(raw) == 0 {
		return nil, errors.New("the provider offered no ICE")
	}
	remote, cands, err := ice.DecodeOffer(raw, m.cfg.ICE.Policy)
	if err != nil {
		return nil, fmt.Errorf("the provider's offer: %w", err)
	}
	if checks != nil {
		if err := checks(ctx, ICECheck{Candidates: ice.CandidateAddrs(cands)}); err != nil {
			return nil, fmt.Errorf("let the connectivity checks out: %w", err)
		}
	}
	return agent.Connect(ctx, remote)
}

// Proposal is the proposal the session was opened on.
func (c *Connection) Proposal() market.Proposal { return c.proposal }

// SOCKSAddr is the local SOCKS5 proxy address (nil if disabled).
func (c *Connection) SOCKSAddr() net.Addr {
	if c.us == nil {
		return nil
	}
	return c.us.SOCKSAddr()
}

// HTTPAddr is the local HTTP proxy address (nil if disabled).
func (c *Connection) HTTPAddr() net.Addr {
	if c.us == nil {
		return nil
	}
	return c.us.HTTPAddr()
}

// DialContext opens a connection through the tunnel (for a kernel
// tunnel, an ordinary dial: the host's routes lead into the tunnel).
func (c *Connection) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if c.us == nil {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	return c.us.DialContext(ctx, network, address)
}

// Done is closed when the session has ended and the tunnel is down.
func (c *Connection) Done() <-chan struct{} { return c.done }

// Err is why the session ended: nil after Disconnect, the provider's
// reason, the refusal (pingpong.ErrOvercharge, ...) or session.ErrPathLost
// (the tunnel's path died) otherwise. Valid
// after Done is closed.
func (c *Connection) Err() error {
	<-c.done
	return c.err
}

// Disconnect ends the session cleanly (the provider gets a Destroy) and
// waits until the tunnel is down or ctx ends.
func (c *Connection) Disconnect(ctx context.Context) error {
	c.cancel()
	select {
	case <-c.done:
		// A failed kernel session left its tunnel up (fail closed).
		return c.tun.Close()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status returns a snapshot of the session.
func (c *Connection) Status() Status {
	st := c.tun.Stats()
	ps := c.payer.Stats()
	now := time.Now()
	s := Status{
		SessionID: c.id, Provider: c.proposal.ProviderID, Country: c.proposal.Location.Country, Start: c.start,
		Duration: now.Sub(c.start), RxBytes: st.RxBytes, TxBytes: st.TxBytes, Spent: ps.Paid, Invoices: ps.Invoices,
		Rate: new(big.Int), Path: c.path, PublicIP: c.exitIP, Resumes: int(c.resumes.Load()),
	}
	c.mu.Lock()
	s.PublicIPCheck, s.PublicIPSeen = c.ipCheck, c.seenIP
	c.mu.Unlock()
	if s.Spent == nil {
		s.Spent = new(big.Int)
	}
	if d := s.Duration; d > 0 {
		s.Rate = new(big.Int).Div(new(big.Int).Mul(s.Spent, big.NewInt(int64(time.Hour))), big.NewInt(int64(d)))
	}
	select {
	case <-c.done:
		if c.err != nil {
			s.Err = c.err.Error()
		}
	default:
		s.Running = true
	}
	return s
}

// PayerStats returns the payment accounting of the session.
func (c *Connection) PayerStats() pingpong.PayerStats { return c.payer.Stats() }
