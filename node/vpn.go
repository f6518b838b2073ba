package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

// VPNConfig configures the tun mode of a ConnectionAPI (the whole device
// through a kernel tunnel); see docs/vpn.md.
type VPNConfig struct {
	// StateFile persists a tun connection (its request, kill switch and
	// the resolv.conf it replaced) so that a daemon restarted after a
	// crash resumes it (kill switch always) or cleans up (connection,
	// off). Empty: not persisted (a foreground `myst connect --tun
	// --standalone`, tests).
	StateFile string
	// Interface is the TUN (kernel.DefaultClientInterface if empty).
	Interface string
	// KillSwitchTable is the nftables table (kernel.DefaultKillSwitchTable
	// if empty).
	KillSwitchTable string
	// FwMark numbers the policy routing table (kernel.DefaultFwMark if 0).
	FwMark uint32
	// ResolvConf is the resolv.conf rewritten for DNS provider and
	// custom (usually /etc/resolv.conf; empty: DNS is always left alone,
	// as with DNS system). When systemd-resolved manages it, the
	// servers are set on the TUN link with resolvectl instead
	// (kernel.ResolvedManaged).
	ResolvConf string
	// Control returns the control-plane destinations kept outside the
	// tunnel: bootstrap/relay peers and the chain RPC, resolved before
	// the kill switch is up.
	Control func(ctx context.Context) ([]netip.AddrPort, error)
	// ICEServers returns the consumer's STUN/TURN servers, resolved
	// before the kill switch is up: admitted while a session gathers
	// candidates and runs its checks, and for as long as a session's
	// path runs through this host's TURN allocation (nil: none).
	ICEServers func(ctx context.Context) ([]netip.AddrPort, error)
	// HandshakeTimeout bounds each WireGuard handshake (0: default).
	HandshakeTimeout time.Duration
}

func (v VPNConfig) hold(direct []netip.AddrPort) kernel.HoldConfig {
	return kernel.HoldConfig{Table: v.KillSwitchTable, Interface: v.Interface, FwMark: v.FwMark, Direct: direct}
}

// vpnState is the StateFile's content.
type vpnState struct {
	// Request is the user's request (mode tun).
	Request tequilapi.ConnectRequest `json:"request"`
	// Control are the control destinations the kill switch admits.
	Control []netip.AddrPort `json:"control"`
	// ICEServers are the STUN/TURN servers (VPNConfig.ICEServers).
	ICEServers []netip.AddrPort `json:"ice_servers,omitempty"`
	// ResolvConf is the path rewritten; ResolvSaved whether ResolvOrig
	// (its content before, absent when ResolvExisted is false) is the
	// original to restore.
	ResolvConf    string `json:"resolv_conf,omitempty"`
	ResolvSaved   bool   `json:"resolv_saved,omitempty"`
	ResolvExisted bool   `json:"resolv_existed,omitempty"`
	ResolvOrig    []byte `json:"resolv_orig,omitempty"`
}

// maxStateFile bounds the state file read at start.
const maxStateFile = 1 << 20

func readVPNState(path string) (*vpnState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vpn state: %w", err)
	}
	if len(b) > maxStateFile {
		return nil, fmt.Errorf("vpn state %s: larger than %d bytes", path, maxStateFile)
	}
	var st vpnState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("vpn state %s: %w", path, err)
	}
	if st.Request.Mode != tequilapi.ModeTun {
		return nil, fmt.Errorf("vpn state %s: mode %q, want tun", path, st.Request.Mode)
	}
	if err := st.Request.Validate(); err != nil {
		return nil, fmt.Errorf("vpn state %s: %w", path, err)
	}
	for _, d := range append(append([]netip.AddrPort(nil), st.Control...), st.ICEServers...) {
		if !d.IsValid() || d.Port() == 0 {
			return nil, fmt.Errorf("vpn state %s: bad control destination %v", path, d)
		}
	}
	return &st, nil
}

// writeVPNState writes st durably (temp file, fsync, rename, fsync dir).
func writeVPNState(path string, st *vpnState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("vpn state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("vpn state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("vpn state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vpn state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("vpn state: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// restoreResolv writes back the resolv.conf a state saved.
func (st *vpnState) restoreResolv() error {
	if !st.ResolvSaved || st.ResolvConf == "" {
		return nil
	}
	if !st.ResolvExisted {
		if err := os.Remove(st.ResolvConf); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("restore %s: %w", st.ResolvConf, err)
		}
		return nil
	}
	if err := os.WriteFile(st.ResolvConf, st.ResolvOrig, 0o644); err != nil {
		return fmt.Errorf("restore %s: %w", st.ResolvConf, err)
	}
	return nil
}

// vpnConn is the tun-mode part of a managed connection: one kernel tunnel
// carried across sessions (consumer.ReconnectingKernel) and the kill
// switch held while no tunnel is up.
type vpnConn struct {
	cfg     VPNConfig
	setting string // tequilapi.KillSwitch*
	dns     string // tequilapi.DNS*
	servers []netip.Addr
	control []netip.AddrPort
	ice     []netip.AddrPort // STUN/TURN servers
	// portMapGW is the router the daemon's port mapping asks (invalid:
	// none): its marked sockets may reach it (kernel.PortMapMark).
	portMapGW netip.Addr
	rk        *ReconnectingKernel

	mu   sync.Mutex
	held []netip.AddrPort // direct destinations of the held kill switch
	// relayVia are the current session's destinations its tunnel's
	// datagrams need besides its path: the STUN/TURN servers when our
	// TURN allocation carries them.
	relayVia []netip.AddrPort
}

func newVPNConn(cfg VPNConfig, req tequilapi.ConnectRequest, control, iceServers []netip.AddrPort, portMapGW netip.Addr) (*vpnConn, error) {
	v := &vpnConn{cfg: cfg, setting: req.KillSwitch, dns: req.DNS, control: control, ice: iceServers, portMapGW: portMapGW}
	if v.setting == "" {
		v.setting = tequilapi.KillSwitchConnection
	}
	if v.dns == "" {
		v.dns = tequilapi.DNSProvider
	}
	if v.dns == tequilapi.DNSCustom {
		s, err := req.CustomDNS()
		if err != nil {
			return nil, err
		}
		v.servers = s
	}
	resolv := cfg.ResolvConf
	if v.dns == tequilapi.DNSSystem {
		resolv = ""
	}
	v.rk = NewReconnectingKernel(KernelConfig{
		Interface: cfg.Interface, FwMark: cfg.FwMark, NoKillSwitch: v.setting == tequilapi.KillSwitchOff,
		KillSwitchTable: cfg.KillSwitchTable, ResolvConf: resolv, Control: control, PortMapGateway: portMapGW, HandshakeTimeout: cfg.HandshakeTimeout,
	})
	return v, nil
}

// state returns what the StateFile records for req, saving the current
// resolv.conf when the connection will rewrite it.
func (v *vpnConn) state(req tequilapi.ConnectRequest) (*vpnState, error) {
	st := &vpnState{Request: req, Control: v.control, ICEServers: v.ice}
	// A resolv.conf systemd-resolved manages is left alone (DNS is set on
	// the TUN link, which a crash takes away with the settings).
	if v.cfg.ResolvConf != "" && v.dns != tequilapi.DNSSystem && !kernel.ResolvedManaged(v.cfg.ResolvConf) {
		st.ResolvConf, st.ResolvSaved = v.cfg.ResolvConf, true
		b, err := os.ReadFile(v.cfg.ResolvConf)
		switch {
		case err == nil:
			st.ResolvExisted, st.ResolvOrig = true, b
		case errors.Is(err, os.ErrNotExist):
		default:
			return nil, fmt.Errorf("dns: read %s: %w", v.cfg.ResolvConf, err)
		}
	}
	return st, nil
}

// hold loads the kill switch without a tunnel, admitting the control
// destinations and extra (a provider's control addresses).
func (v *vpnConn) hold(ctx context.Context, extra []netip.AddrPort) error {
	return v.holdChecks(ctx, extra, false)
}

// holdChecks is hold that, with checks, also admits UDP from and to the
// sockets of a session's ICE agent (marked kernel.SocketMark).
func (v *vpnConn) holdChecks(ctx context.Context, extra []netip.AddrPort, checks bool) error {
	if v.setting == tequilapi.KillSwitchOff {
		return nil
	}
	direct := consumer.JoinAddrs(v.control, extra)
	hc := v.cfg.hold(direct)
	hc.ICEChecks = checks
	hc.PortMapGateway = v.portMapGW
	if err := kernel.HoldKillSwitch(ctx, hc); err != nil {
		return err
	}
	v.mu.Lock()
	v.held = direct
	v.mu.Unlock()
	return nil
}

// prepare opens the control path to p: through the held kill switch
// before the first tunnel (p's advertised addresses and those of open
// connections to its peer, conns), through the tunnel's kill switch
// after.
func (v *vpnConn) prepare(ctx context.Context, p market.Proposal, conns []netip.AddrPort) error {
	if v.rk.Connected() {
		return v.rk.Prepare(ctx, p)
	}
	return v.hold(ctx, append(consumer.ProposalControlAddrs(p), conns...))
}

// admitGather lets a session gather its ICE candidates: the STUN/TURN
// servers join the exemptions (consumer.Options.ICEGather) until the
// session's tunnel narrows them to its path.
func (v *vpnConn) admitGather(ctx context.Context) error {
	if len(v.ice) == 0 {
		return nil // host candidates only
	}
	return v.admitChecks(ctx, consumer.ICECheck{Candidates: v.ice})
}

// admitChecks lets a session's ICE connectivity checks out to the
// provider's candidates, and UDP from and to the agent's sockets (marked
// kernel.SocketMark)
// (consumer.Options.ICEChecks): through the tunnel's kill switch and
// outside its routes once a tunnel is up, through the held kill switch
// before. The session's tunnel then narrows the exemptions to the
// selected path.
func (v *vpnConn) admitChecks(ctx context.Context, c consumer.ICECheck) error {
	if up, err := v.rk.AdmitChecks(ctx, c); up || err != nil {
		return err
	}
	v.mu.Lock()
	held := append([]netip.AddrPort(nil), v.held...)
	v.mu.Unlock()
	return v.holdChecks(ctx, consumer.JoinAddrs(held, c.Candidates), true)
}

// peerConnAddrs returns the remote TCP/UDP addresses of c's open libp2p
// connections to p's peer (it may have dialled us).
func peerConnAddrs(c *Consumer, p market.Proposal) []netip.AddrPort {
	pid, err := peer.Decode(p.PeerID)
	if err != nil || c.P2P == nil {
		return nil
	}
	var ms []string
	for _, cn := range c.P2P.Host.Network().ConnsToPeer(pid) {
		ms = append(ms, cn.RemoteMultiaddr().String())
	}
	return consumer.MultiaddrControlAddrs(ms)
}

// opener is the sessions' tunnel opener: the reconnecting kernel tunnel,
// with the custom resolvers in place of the provider's.
func (v *vpnConn) opener() consumer.TunnelOpener {
	open := v.rk.Opener()
	return func(ctx context.Context, s tunnel.SessionConfig, r consumer.TunnelRoute) (tunnel.Client, error) {
		if v.dns == tequilapi.DNSCustom {
			s.DNS = append([]netip.Addr(nil), v.servers...)
		}
		var via []netip.AddrPort
		if r.Relayed {
			// The path runs through our TURN allocation: its server (one
			// of the STUN/TURN servers) carries the datagrams.
			via = v.ice
			r.Control = consumer.JoinAddrs(r.Control, via)
		}
		v.mu.Lock()
		v.relayVia = via
		v.mu.Unlock()
		return open(ctx, s, r)
	}
}

// controlPath is the sessions' consumer.Options.ControlPath: the kill
// switch admits the control destinations, the session's control
// connection's new addresses (a resume) and, on a path through our TURN
// allocation, the STUN/TURN servers, in one transaction.
func (v *vpnConn) controlPath(ctx context.Context, addrs []netip.AddrPort) error {
	v.mu.Lock()
	via := v.relayVia
	v.mu.Unlock()
	return v.rk.SetControl(ctx, consumer.JoinAddrs(addrs, via))
}

// close takes the tunnel down (routes, DNS, kill switch last) and removes
// a held kill switch.
func (v *vpnConn) close(ctx context.Context) error {
	err := v.rk.Close()
	if v.setting != tequilapi.KillSwitchOff {
		err = errors.Join(err, kernel.RemoveKillSwitch(ctx, v.cfg.KillSwitchTable))
	}
	return err
}

// status fills the tun-mode fields of st.
func (v *vpnConn) status(ctx context.Context, st *tequilapi.ConnectionStatus) {
	st.Interface = v.cfg.Interface
	if st.Interface == "" {
		st.Interface = kernel.DefaultClientInterface
	}
	st.DNS = v.dns
	switch v.dns {
	case tequilapi.DNSCustom:
		for _, s := range v.servers {
			st.DNSServers = append(st.DNSServers, s.String())
		}
	}
	ks := &tequilapi.KillSwitchStatus{Setting: v.setting, Exemptions: []string{}}
	if v.setting != tequilapi.KillSwitchOff {
		up, err := kernel.KillSwitchUp(ctx, v.cfg.KillSwitchTable)
		ks.Active = err == nil && up
	}
	var direct []netip.AddrPort
	if udp, d, ok := v.rk.Exemptions(); ok {
		if len(udp) > 0 {
			st.Endpoint = udp[0].String()
		}
		for _, u := range udp {
			ks.Exemptions = append(ks.Exemptions, "udp "+u.String())
		}
		direct = d
	} else {
		v.mu.Lock()
		direct = append(direct, v.held...)
		v.mu.Unlock()
	}
	var ds []string
	for _, d := range direct {
		ds = append(ds, "tcp/udp "+d.String())
	}
	sort.Strings(ds)
	ks.Exemptions = append(ks.Exemptions, ds...)
	if v.portMapGW.IsValid() {
		// The port-mapping client's marked sockets: SSDP and UPnP's HTTP
		// to the router.
		ks.Exemptions = append(ks.Exemptions, "portmap "+v.portMapGW.String())
	}
	st.KillSwitch = ks
}

// forgetDialFailures drops c's dial backoff for p's peer (see
// p2p.Node.ForgetDialFailures).
func (c *Consumer) forgetDialFailures(p market.Proposal) {
	pid, err := peer.Decode(p.PeerID)
	if err != nil || c.P2P == nil {
		return
	}
	c.P2P.ForgetDialFailures(pid)
}
