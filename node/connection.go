package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

// ConnectionAPI serves Tequilapi's connection routes from a consumer node:
// one connection at a time, in proxy mode (a local SOCKS5 proxy) or tun
// mode (the whole device through a kernel tunnel with kill switch and DNS,
// VPN), re-established when it drops per the reconnect policy
// (reconnect.go). It is the one implementation of a consumer connection:
// the daemon serves it and `myst connect --tun --standalone` runs it in
// the foreground (RunTun).
type ConnectionAPI struct {
	// Consumer returns the consumer node, starting it on first use.
	Consumer func(ctx context.Context) (*Consumer, error)
	// DefaultSOCKS is the SOCKS5 address when a request names none.
	DefaultSOCKS string
	// VPN configures tun mode.
	VPN VPNConfig
	// Reconnect is how many attempts re-establish a dropped connection
	// (0: DefaultReconnectTries; negative: never).
	Reconnect int
	// Wait is how long a connect waits for a matching proposal (0: 15 s).
	Wait time.Duration
	// Progress (optional) receives human-readable lines about drops and
	// reconnects.
	Progress func(string)
	// Log receives reconnect events (default slog.Default()).
	Log *slog.Logger

	// portMap, when set, maps the consumer's ICE port on the home router
	// while a connection is up (daemon --portmap); in tun mode the kill
	// switch admits the router's NAT-PMP port and the UPnP client's
	// marked sockets to the router for it.
	portMap *consumerPortMap

	mu         sync.Mutex
	cur        *managed
	connecting bool
}

// Connection states (tequilapi.ConnectionStatus.State).
const (
	stateConnected    = "connected"
	stateReconnecting = "reconnecting"
	stateHeld         = "held"
	stateEnded        = "ended"
	// stateDisconnecting: Disconnect is taking the connection down (final
	// payment, tunnel, kill switch last); the connection stays visible in
	// GET /connection until that is done, so nobody is told the kill
	// switch is off while its table is still in place.
	stateDisconnecting = "disconnecting"
)

// managed is one user connection across reconnects.
type managed struct {
	req     tequilapi.ConnectRequest
	filter  market.Filter
	socks   string
	vpn     *vpnConn // tun mode
	exclude map[common.Address]bool
	cancel  context.CancelFunc
	done    chan struct{}
	// unmap gives up the ICE port's mapping (nil: none held).
	unmap func()

	// guarded by ConnectionAPI.mu
	conn       *consumer.Connection // nil until the first session
	reconnects int
	state      string
}

var _ tequilapi.ConnectionService = (*ConnectionAPI)(nil)

func (a *ConnectionAPI) log() *slog.Logger {
	if a.Log == nil {
		return slog.Default()
	}
	return a.Log
}

func (a *ConnectionAPI) say(m string) {
	if a.Progress != nil {
		a.Progress(m)
	}
}

// reserve claims the one connection slot.
func (a *ConnectionAPI) reserve() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.connecting || a.cur != nil && a.cur.state != stateEnded {
		return tequilapi.ErrAlreadyConnected
	}
	a.connecting = true
	return nil
}

func (a *ConnectionAPI) release() {
	a.mu.Lock()
	a.connecting = false
	a.mu.Unlock()
}

// Connect implements tequilapi.ConnectionService.
func (a *ConnectionAPI) Connect(ctx context.Context, req tequilapi.ConnectRequest) (tequilapi.ConnectionStatus, error) {
	f, err := req.Filter()
	if err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	return a.connect(ctx, req, f)
}

func (a *ConnectionAPI) connect(ctx context.Context, req tequilapi.ConnectRequest, f market.Filter) (_ tequilapi.ConnectionStatus, rerr error) {
	tun := req.Mode == tequilapi.ModeTun
	if tun {
		if err := kernel.CheckNetAdmin(); err != nil {
			return tequilapi.ConnectionStatus{}, fmt.Errorf("%w (%w)", tequilapi.ErrNoPrivileges, err)
		}
	}
	if err := a.reserve(); err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	defer a.release()
	c, err := a.Consumer(ctx)
	if err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	m := &managed{req: req, filter: f, socks: req.SOCKSListen, exclude: map[common.Address]bool{}, done: make(chan struct{}), state: stateConnected}
	if m.socks == "" && !tun {
		m.socks = a.DefaultSOCKS
	}
	if tun {
		var control []netip.AddrPort
		var gw netip.Addr
		if a.portMap != nil {
			// The kill switch admits the router's port mapping (made,
			// renewed and removed under it) besides the control
			// destinations.
			if a.VPN.Control != nil {
				if control, err = a.VPN.Control(ctx); err != nil {
					return tequilapi.ConnectionStatus{}, fmt.Errorf("control destinations: %w", err)
				}
			}
			control = consumer.JoinAddrs(control, a.portMap.routerDests())
			gw = a.portMap.gateway()
		}
		if m.vpn, err = a.startVPN(ctx, req, control, nil, gw); err != nil {
			return tequilapi.ConnectionStatus{}, err
		}
		defer func() {
			if rerr != nil {
				a.stopVPN(context.WithoutCancel(ctx), m.vpn)
			}
		}()
	}
	if a.portMap != nil {
		// Released before a tun connection's kill switch goes (the
		// mapping's removal passes it).
		m.unmap = a.portMap.acquire(ctx)
		defer func() {
			if rerr != nil {
				m.releasePortMap()
			}
		}()
	}
	wait := a.Wait
	if wait <= 0 {
		wait = 15 * time.Second
	}
	conn, _, err := dialFirst(ctx, DefaultFullTries, func(ctx context.Context, avoid map[common.Address]bool) (*consumer.Connection, common.Address, error) {
		conn, p, err := a.dial(ctx, c, m, avoid, nil, wait)
		return conn, p.ProviderID, err
	})
	if err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	a.mu.Lock()
	m.conn = conn
	a.cur = m
	a.mu.Unlock()
	a.start(m, c)
	return a.status(ctx, m), nil
}

// startVPN prepares tun mode: control destinations, the persisted state
// and the held kill switch (nothing leaves outside the tunnel from here
// on, except to the control destinations). control and iceServers, when
// set, replace VPN.Control and VPN.ICEServers (a resume after a restart).
// A valid gw is the router the port mapping asks (the kill switch admits
// the port-mapping client's marked sockets to it).
func (a *ConnectionAPI) startVPN(ctx context.Context, req tequilapi.ConnectRequest, control, iceServers []netip.AddrPort, gw netip.Addr) (*vpnConn, error) {
	if control == nil && a.VPN.Control != nil {
		var err error
		if control, err = a.VPN.Control(ctx); err != nil {
			return nil, fmt.Errorf("control destinations: %w", err)
		}
	}
	if iceServers == nil && a.VPN.ICEServers != nil {
		var err error
		if iceServers, err = a.VPN.ICEServers(ctx); err != nil {
			return nil, fmt.Errorf("STUN/TURN servers: %w", err)
		}
	}
	v, err := newVPNConn(a.VPN, req, control, iceServers, gw)
	if err != nil {
		return nil, err
	}
	if a.VPN.StateFile != "" {
		st, err := v.state(req)
		if err != nil {
			return nil, err
		}
		if err := writeVPNState(a.VPN.StateFile, st); err != nil {
			return nil, err
		}
	}
	if err := v.hold(ctx, nil); err != nil {
		a.stopVPN(ctx, v)
		return nil, err
	}
	return v, nil
}

// stopVPN takes v down and forgets the persisted state.
func (a *ConnectionAPI) stopVPN(ctx context.Context, v *vpnConn) {
	if err := v.close(ctx); err != nil {
		a.log().Error("consumer: take the tunnel down", "err", err)
	}
	if a.VPN.StateFile != "" {
		if err := os.Remove(a.VPN.StateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log().Error("consumer: remove vpn state", "err", err)
		}
	}
}

// start runs m's watcher.
func (a *ConnectionAPI) start(m *managed, c *Consumer) {
	wctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go a.watch(wctx, c, m)
}

// dial opens a session on the best proposal for m, avoiding the
// providers in avoid when it can; in tun mode the kill switch first
// admits the provider's control addresses.
func (a *ConnectionAPI) dial(ctx context.Context, c *Consumer, m *managed, avoid map[common.Address]bool, unreachable map[common.Address]uint64, wait time.Duration) (*consumer.Connection, market.Proposal, error) {
	p, err := c.pickProposal(ctx, m.filter, m.exclude, avoid, unreachable, wait, m.vpn != nil)
	if err != nil {
		return nil, market.Proposal{}, fmt.Errorf("%w (waited %s)", err, wait)
	}
	o := consumer.Options{SOCKSListen: m.socks}
	if m.vpn == nil {
		conn, err := c.Sessions.Connect(ctx, p, o)
		return conn, p, err
	}
	held := !m.vpn.rk.Connected()
	if err := m.vpn.prepare(ctx, p, peerConnAddrs(c, p)); err != nil {
		return nil, p, err
	}
	o = consumer.Options{Tunnel: m.vpn.opener(), ICEGather: m.vpn.admitGather, ICEChecks: m.vpn.admitChecks, ICEExclude: m.vpn.rk.ICEExclude(), ICEMark: kernel.SocketMark,
		ControlPath: m.vpn.controlPath}
	ctx, cancel := context.WithTimeout(ctx, tunDialTimeout)
	defer cancel()
	connect := func() (*consumer.Connection, error) { return c.Sessions.Connect(ctx, p, o) }
	if !held {
		conn, err := connect()
		return conn, p, err
	}
	conn, err := connectAdmitted(connect, func() { c.forgetDialFailures(p) })
	return conn, p, err
}

// connectAdmitted runs connect right after the held kill switch admitted
// a provider. The p2p layer (the DHT, discovery) may have dialled the
// provider before: a dial the kill switch refused left a dial backoff,
// and one whose TCP handshake finished just before the kill switch came
// up stalled in its security handshake (its packets refused until now,
// TCP's retransmissions backed off past the dial timeout); a session dial
// joins such a pending dial and fails with it
// (consumer.ErrUnreachable: "failed to negotiate security protocol:
// context deadline exceeded"). So forget clears the backoff first, and
// when connect still fails unreachable, once more after the stale dial
// ended: that dial is over, and the new one starts admitted.
func connectAdmitted(connect func() (*consumer.Connection, error), forget func()) (*consumer.Connection, error) {
	forget()
	conn, err := connect()
	if err == nil || !errors.Is(err, consumer.ErrUnreachable) {
		return conn, err
	}
	forget()
	return connect()
}

func (a *ConnectionAPI) setState(m *managed, s string) {
	a.mu.Lock()
	if m.state != stateDisconnecting { // end owns m from then on
		m.state = s
	}
	a.mu.Unlock()
}

// watch re-establishes m's connection when it drops, per the policy; in
// tun mode the kill switch holds the device meanwhile, and stays when
// reconnecting gives up (state held) until Disconnect.
func (a *ConnectionAPI) watch(ctx context.Context, c *Consumer, m *managed) {
	defer close(m.done)
	log := a.log()
	attempts := a.Reconnect
	if attempts == 0 {
		attempts = DefaultReconnectTries
	}
	giveUp := func() {
		if m.vpn != nil {
			// Back to the control destinations only.
			if err := m.vpn.rk.Prepare(context.WithoutCancel(ctx), market.Proposal{}); err != nil {
				log.Warn("consumer: close the control path to the last provider tried", "err", err)
			}
			if m.vpn.setting != tequilapi.KillSwitchOff {
				a.say("the kill switch stays up (nothing leaves outside the tunnel) until disconnect")
			}
			a.setState(m, stateHeld)
			return
		}
		a.setState(m, stateEnded)
		m.releasePortMap()
	}
	for {
		a.mu.Lock()
		conn := m.conn
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-conn.Done():
		}
		err := conn.Err()
		failed := conn.Proposal().ProviderID
		if ctx.Err() != nil {
			return
		}
		a.say(fmt.Sprintf("session ended: %v", err))
		if !shouldRetry(err, failed, m.exclude) || attempts < 0 {
			log.Warn("consumer: connection ended; not reconnecting", "err", err)
			giveUp()
			return
		}
		a.setState(m, stateReconnecting)
		a.say(fmt.Sprintf("reconnecting (up to %d tries)%s", attempts, map[bool]string{true: " with the kill switch up"}[m.vpn != nil && m.vpn.setting != tequilapi.KillSwitchOff]))
		next := redial(ctx, attempts, failed, func(ctx context.Context, avoid map[common.Address]bool, unreachable map[common.Address]uint64) (*consumer.Connection, market.Proposal, error) {
			return a.dial(ctx, c, m, avoid, unreachable, reconnectWait)
		}, func(i int, err error) {
			log.Info("consumer: reconnect failed", "attempt", i+1, "err", err)
			a.say(fmt.Sprintf("reconnect try %d failed: %v", i+1, err))
		})
		if ctx.Err() != nil {
			return
		}
		if next == nil {
			log.Warn("consumer: connection lost; reconnecting failed", "err", err)
			giveUp()
			return
		}
		p := next.Proposal()
		log.Info("consumer: reconnected", "provider", p.ProviderID.Hex(), "after", err)
		a.mu.Lock()
		m.conn = next
		m.reconnects++
		m.state = stateConnected
		n := m.reconnects
		a.mu.Unlock()
		a.say(fmt.Sprintf("reconnected to %s (%s): reconnect %d", p.ProviderID.Hex(), p.Location.Country, n))
	}
}

// Status implements tequilapi.ConnectionService.
func (a *ConnectionAPI) Status(ctx context.Context) (tequilapi.ConnectionStatus, error) {
	a.mu.Lock()
	m := a.cur
	a.mu.Unlock()
	if m == nil {
		return tequilapi.ConnectionStatus{}, tequilapi.ErrNotConnected
	}
	return a.status(ctx, m), nil
}

func (a *ConnectionAPI) status(ctx context.Context, m *managed) tequilapi.ConnectionStatus {
	a.mu.Lock()
	conn, n, state := m.conn, m.reconnects, m.state
	a.mu.Unlock()
	st := tequilapi.ConnectionStatus{Spent: "0", RatePerHour: "0"}
	if conn != nil {
		st = statusDTO(conn)
	}
	st.Reconnects, st.State, st.Mode = n, state, tequilapi.ModeProxy
	if state != stateConnected {
		st.Running = false
	}
	if m.vpn != nil {
		st.Mode = tequilapi.ModeTun
		m.vpn.status(ctx, &st)
	}
	return st
}

// Disconnect implements tequilapi.ConnectionService. In tun mode the
// tunnel goes down (routes, DNS, kill switch last) and the persisted
// state is removed.
func (a *ConnectionAPI) Disconnect(ctx context.Context) error { return a.end(ctx, false) }

// Close disconnects a running connection. A tun connection with the kill
// switch always keeps the device held and its persisted state, so the
// next daemon resumes it; any other is taken down.
func (a *ConnectionAPI) Close(ctx context.Context) error {
	a.mu.Lock()
	m := a.cur
	a.mu.Unlock()
	keep := m != nil && m.vpn != nil && m.vpn.setting == tequilapi.KillSwitchAlways && a.VPN.StateFile != ""
	if err := a.end(ctx, keep); err != nil && !errors.Is(err, tequilapi.ErrNotConnected) {
		return err
	}
	return nil
}

// end stops the current connection's watcher and session; in tun mode it
// takes the tunnel down, or with keep holds the kill switch and keeps the
// persisted state (the tunnel's routes and TUN go with the process).
//
// m stays the current connection, in stateDisconnecting, until all of
// that is done: GET /connection keeps reporting it (and a new connect
// is refused as already connected) until the tunnel and the kill switch
// are really gone. A second end meanwhile finds nothing to end.
func (a *ConnectionAPI) end(ctx context.Context, keep bool) error {
	a.mu.Lock()
	m := a.cur
	if m == nil || m.state == stateDisconnecting {
		a.mu.Unlock()
		return tequilapi.ErrNotConnected
	}
	m.state = stateDisconnecting
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if a.cur == m {
			a.cur = nil
		}
		a.mu.Unlock()
	}()
	m.cancel()
	select {
	case <-m.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	conn := m.conn
	a.mu.Unlock()
	var err error
	if conn != nil {
		err = conn.Disconnect(ctx)
	}
	m.releasePortMap()
	switch {
	case m.vpn == nil:
	case keep:
		err = errors.Join(err, m.vpn.hold(ctx, nil))
	default:
		a.stopVPN(ctx, m.vpn)
	}
	return err
}

// releasePortMap gives up m's ICE port mapping, if it holds one.
func (m *managed) releasePortMap() {
	if m.unmap != nil {
		m.unmap()
	}
}

func statusDTO(c *consumer.Connection) tequilapi.ConnectionStatus {
	s := c.Status()
	out := tequilapi.ConnectionStatus{
		SessionID: s.SessionID, Provider: s.Provider.Hex(), Country: s.Country, DurationSeconds: s.Duration.Seconds(),
		RxBytes: s.RxBytes, TxBytes: s.TxBytes, Spent: s.Spent.String(), RatePerHour: s.Rate.String(), Running: s.Running, Error: s.Err,
		Path: s.Path, PublicIPCheck: s.PublicIPCheck, Resumes: s.Resumes,
	}
	if s.PublicIP.IsValid() {
		out.PublicIP = s.PublicIP.String()
	}
	if s.PublicIPSeen.IsValid() {
		out.PublicIPSeen = s.PublicIPSeen.String()
	}
	if a := c.SOCKSAddr(); a != nil {
		out.SOCKS = a.String()
	}
	return out
}

// Recover handles a tun connection persisted by an earlier daemon that
// did not disconnect it (killed, crashed, stopped with the kill switch
// always): the leftover policy rules and routes go and resolv.conf is
// restored; then with the kill switch always the device stays held and
// the connection is resumed in the background (state held until a
// session is up; DELETE /connection ends it), otherwise the kill switch
// is removed and the state forgotten. A state file that cannot be read
// is an error: the host stays as it is (fail-closed).
func (a *ConnectionAPI) Recover(ctx context.Context) error {
	if a.VPN.StateFile == "" {
		return nil
	}
	st, err := readVPNState(a.VPN.StateFile)
	if err != nil {
		return fmt.Errorf("%w: the host stays as it is; to clean up by hand remove the file and run `nft delete table inet %s`", err, kernelTable(a.VPN))
	}
	if st == nil {
		return nil
	}
	log := a.log()
	always := st.Request.KillSwitch == tequilapi.KillSwitchAlways
	control := st.Control
	var gw netip.Addr
	if always && a.portMap != nil {
		// The resumed connection maps the ICE port again (resume): the
		// held kill switch admits it as a fresh connection's does.
		control = consumer.JoinAddrs(control, a.portMap.routerDests())
		gw = a.portMap.gateway()
	}
	hc := a.VPN.hold(control)
	hc.PortMapGateway = gw
	if always {
		// Replace the crashed tunnel's kill switch (which admitted its
		// last provider) with the held one, in one transaction.
		if err := kernel.HoldKillSwitch(ctx, hc); err != nil {
			return fmt.Errorf("resume the vpn: %w", err)
		}
	}
	if err := errors.Join(kernel.RemovePolicyRouting(ctx, hc), st.restoreResolv()); err != nil {
		return fmt.Errorf("clean up the vpn of the last run: %w", err)
	}
	if !always {
		if err := kernel.RemoveKillSwitch(ctx, a.VPN.KillSwitchTable); err != nil {
			return fmt.Errorf("clean up the vpn of the last run: %w", err)
		}
		if err := os.Remove(a.VPN.StateFile); err != nil {
			return fmt.Errorf("clean up the vpn of the last run: %w", err)
		}
		log.Info("consumer: removed the tunnel, kill switch and DNS change a previous run left behind")
		return nil
	}
	v, err := newVPNConn(a.VPN, st.Request, control, st.ICEServers, gw)
	if err != nil {
		return err
	}
	v.held = control
	f, err := st.Request.Filter()
	if err != nil {
		return err
	}
	m := &managed{req: st.Request, filter: f, vpn: v, exclude: map[common.Address]bool{}, done: make(chan struct{}), state: stateHeld}
	wctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	a.mu.Lock()
	a.cur = m
	a.mu.Unlock()
	log.Info("consumer: kill switch always: holding the device and resuming the vpn connection of the last run")
	go a.resume(wctx, m)
	return nil
}

// resumeMaxDelay bounds the wait between attempts to resume a connection.
const resumeMaxDelay = 30 * time.Second

// resume opens m's first session (after a restart), retrying with
// backoff while the kill switch holds the device, then watches it. With
// port mapping it first maps the ICE port again, as a fresh connect does
// (the crashed daemon's mapping, if still on the router, is renewed and
// then removed on disconnect like a fresh one).
func (a *ConnectionAPI) resume(ctx context.Context, m *managed) {
	if a.portMap != nil {
		m.unmap = a.portMap.acquire(ctx) // released by end, after m.done
	}
	for i := 0; ; i++ {
		c, err := a.Consumer(ctx)
		if err == nil {
			var conn *consumer.Connection
			if conn, _, err = a.dial(ctx, c, m, nil, nil, reconnectWait); err == nil {
				p := conn.Proposal()
				a.mu.Lock()
				m.conn, m.state = conn, stateConnected
				a.mu.Unlock()
				a.log().Info("consumer: vpn connection resumed", "provider", p.ProviderID.Hex())
				a.say(fmt.Sprintf("resumed: connected to %s (%s)", p.ProviderID.Hex(), p.Location.Country))
				a.watch(ctx, c, m)
				return
			}
		}
		if ctx.Err() != nil {
			close(m.done)
			return
		}
		a.log().Warn("consumer: resuming the vpn connection failed; the kill switch holds the device", "attempt", i+1, "err", err)
		select {
		case <-ctx.Done():
			close(m.done)
			return
		case <-time.After(min(time.Second<<min(i, 5), resumeMaxDelay)):
		}
	}
}

func kernelTable(v VPNConfig) string {
	if v.KillSwitchTable == "" {
		return kernel.DefaultKillSwitchTable
	}
	return v.KillSwitchTable
}
