package kernel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmyst/openmyst/tunnel"
)

// Defaults of ClientConfig.
const (
	DefaultClientInterface = "myst0"
	DefaultKillSwitchTable = "openmyst_killswitch"
	// DefaultFwMark marks the device's own UDP packets so they bypass the
	// tunnel routes; it is also the number of the policy routing table.
	DefaultFwMark = 0x6d79
	// SocketMark is the SO_MARK of this host's own ICE sockets (the
	// consumer sets it with nat/ice Config.SocketMark): while a session's
	// ICE connectivity checks run, the kill switch admits UDP from and to
	// sockets carrying it, and no other socket (ClientConfig, HoldConfig
	// ICEChecks). Setting a mark needs CAP_NET_ADMIN, so an unprivileged
	// program cannot borrow the exemption. It is not DefaultFwMark: marked
	// sockets still take the tunnel's routing table, in which their
	// destinations have throw routes.
	SocketMark = 0x6d7901ce
	// PortMapMark is the SO_MARK of this host's port-mapping client's
	// sockets (UPnP IGD: nat/portmap Config.Control): the kill switch
	// admits, from sockets carrying it, SSDP's M-SEARCH to the multicast
	// group, its answers from the gateway and TCP to the gateway
	// (ClientConfig, HoldConfig PortMapGateway), nothing else. Another
	// mark than SocketMark, so that neither the ICE sockets nor these
	// gain the other's exemption.
	PortMapMark = 0x6d7901cf
	// rulePref is the priority of the suppress rule; the fwmark rule uses
	// rulePref+1. Both sit before the main table's rule (32766).
	rulePref = 32100
)

// ClientConfig configures a kernel-mode consumer tunnel.
type ClientConfig struct {
	// Session is the tunnel: our key and addresses, the provider peer,
	// AllowedIPs (usually tunnel.FullTunnel()), DNS and MTU.
	Session tunnel.SessionConfig
	// Interface is the TUN name; DefaultClientInterface if empty.
	Interface string
	// FwMark marks WireGuard's own packets and numbers the routing table;
	// DefaultFwMark if 0.
	FwMark uint32
	// NoKillSwitch disables the kill switch (not recommended for a full
	// tunnel). The kill switch allows nothing but the tunnel, so a split
	// tunnel (AllowedIPs narrower than tunnel.FullTunnel()) that must keep
	// reaching other networks directly needs it off.
	NoKillSwitch bool
	// KillSwitchTable is the nftables table; DefaultKillSwitchTable if empty.
	KillSwitchTable string
	// ResolvConf, if set, is a resolv.conf path rewritten to the session's
	// DNS servers while connected and restored on Close (usually
	// /etc/resolv.conf). When systemd-resolved manages it
	// (ResolvedManaged), the file is left alone and the servers are set
	// on the TUN link with resolvectl instead (routing domain "~.",
	// reverted on Close). Empty leaves DNS configuration alone; the kill
	// switch then blocks resolvers outside the tunnel.
	ResolvConf string
	// Direct are TCP/UDP destinations (address and port) reached outside
	// the tunnel: the kill switch accepts them and the tunnel's routing
	// table throws their addresses back to the main table. The consumer
	// lists the provider's session control (libp2p) address here, since
	// the provider's exit does not forward to its own addresses and the
	// established control connection would otherwise be cut when the
	// tunnel comes up.
	Direct []netip.AddrPort
	// Conn, if set, carries the tunnel's datagrams instead of the device's
	// UDP socket: the session's ICE connection (nat/ice), through the NAT
	// hole or TURN relay ICE selected. The kill switch then admits Path
	// instead of Session.Endpoint. The client owns Conn from the call on
	// (it is closed on failure, on Close, and when Reconfigure replaces
	// it).
	Conn net.Conn
	// Path are the UDP destinations Conn sends to from this host (the
	// selected ICE pair's remote address); the kill switch admits them and
	// the tunnel's routing table throws them back to the main table. Empty
	// when Conn runs through this host's TURN server, which is then a
	// Direct destination.
	Path []netip.AddrPort
	// PortMapGateway, when valid (IPv4), is the home router a port
	// mapping is asked of under the kill switch: sockets marked
	// PortMapMark may send SSDP searches (UDP to 239.255.255.250:1900)
	// and receive the router's answers, and open TCP connections to the
	// router (UPnP IGD's description and control URLs); no other socket,
	// and nowhere else.
	PortMapGateway netip.Addr
	// HandshakeTimeout bounds the wait for the first handshake in Connect;
	// tunnel.DefaultHandshakeTimeout if 0; negative does not wait.
	HandshakeTimeout time.Duration
	// Log receives operational messages; slog.Default() if nil.
	Log *slog.Logger
}

// Client is a connected kernel-mode consumer tunnel. It implements
// tunnel.Client and tunnel.Counter.
type Client struct {
	cfg ClientConfig
	log *slog.Logger
	dev *wgDevice

	mu     sync.Mutex
	closed bool
	peer   tunnel.PublicKey
	ep     netip.AddrPort
	// ice is whether the peer's datagrams travel over ClientConfig.Conn
	// (then cfg.Path, not ep, is admitted); connID its connbind id.
	ice    bool
	connID string
	undo   []func(context.Context) error // run in reverse on Close
	// throws are the direct addresses with a throw route in the tunnel's
	// routing table; fams the address families ("-4", "-6") routed into
	// the tunnel; dnsSet whether ResolvConf was rewritten (its undo is on
	// the stack).
	throws map[netip.Addr]bool
	fams   map[string]bool
	dnsSet bool
	// resolved: DNS goes through systemd-resolved (ResolvedManaged).
	resolved bool
}

var (
	_ tunnel.Client  = (*Client)(nil)
	_ tunnel.Counter = (*Client)(nil)
)

// RemoveKillSwitch deletes a kill switch table left behind by a crashed
// consumer. Only call it when no tunnel is wanted any more: it re-opens
// the host to traffic outside the tunnel.
func RemoveKillSwitch(ctx context.Context, table string) error {
	return removeTable(ctx, cmp.Or(table, DefaultKillSwitchTable))
}

// Route is how a session's datagrams reach the provider and what else
// leaves outside the tunnel (Client.Reconfigure): the fields of
// ClientConfig with the same names.
type Route struct {
	Direct []netip.AddrPort
	Conn   net.Conn
	Path   []netip.AddrPort
}

func (r Route) validate() error {
	for _, d := range r.Direct {
		if !d.IsValid() || d.Port() == 0 {
			return fmt.Errorf("invalid direct destination %v", d)
		}
	}
	for _, d := range r.Path {
		if !d.IsValid() || d.Port() == 0 {
			return fmt.Errorf("invalid path destination %v", d)
		}
	}
	if r.Conn == nil && len(r.Path) > 0 {
		return errors.New("path destinations without an ICE connection")
	}
	return nil
}

// Connect brings the tunnel up: kill switch first, then the TUN and
// wireguard-go device, addresses, policy routing and DNS, then waits for the
// first handshake. On error everything done is undone, the kill switch
// last.
func Connect(ctx context.Context, cfg ClientConfig) (_ *Client, err error) {
	owned := cfg.Conn // closed on failure, until the device holds it
	defer func() {
		if err != nil && owned != nil {
			_ = owned.Close()
		}
	}()
	s := cfg.Session
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := (Route{Direct: cfg.Direct, Conn: cfg.Conn, Path: cfg.Path}).validate(); err != nil {
		return nil, fmt.Errorf("kernel client: %w", err)
	}
	if err := checkTools("ip", "nft"); err != nil {
		return nil, err
	}
	cfg.Interface = cmp.Or(cfg.Interface, DefaultClientInterface)
	cfg.KillSwitchTable = cmp.Or(cfg.KillSwitchTable, DefaultKillSwitchTable)
	cfg.FwMark = cmp.Or(cfg.FwMark, DefaultFwMark)
	if cfg.FwMark == SocketMark || cfg.FwMark == PortMapMark {
		return nil, fmt.Errorf("kernel client: fwmark %#x is the ICE or port-mapping sockets' mark (SocketMark, PortMapMark)", cfg.FwMark)
	}
	cfg.HandshakeTimeout = cmp.Or(cfg.HandshakeTimeout, tunnel.DefaultHandshakeTimeout)
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	s.MTU = cmp.Or(s.MTU, tunnel.DefaultMTU)
	if err := validIfName(cfg.Interface); err != nil {
		return nil, err
	}
	// The TUN lives exactly as long as its client process: if it exists,
	// another client is connected and its kill switch must not be replaced.
	if linkExists(cfg.Interface) {
		return nil, fmt.Errorf("kernel client: interface %s exists: another tunnel is connected", cfg.Interface)
	}
	cfg.Direct = append([]netip.AddrPort(nil), cfg.Direct...)
	cfg.Path = append([]netip.AddrPort(nil), cfg.Path...)
	cfg.Session = s
	c := &Client{
		cfg: cfg, log: cfg.Log.With("component", "tunnel/kernel client", "iface", cfg.Interface), peer: s.PeerPublicKey, ep: s.Endpoint,
		ice: cfg.Conn != nil, throws: map[netip.Addr]bool{}, fams: map[string]bool{},
		resolved: ResolvedManaged(cfg.ResolvConf),
	}
	c.cfg.Conn = nil // held by the device's bind from here on
	defer func() {
		if err != nil {
			if uerr := c.teardown(context.WithoutCancel(ctx)); uerr != nil {
				c.log.Error("undo failed connect", "err", uerr)
			}
		}
	}()

	if !cfg.NoKillSwitch {
		if err = c.loadKillSwitch(ctx, s.Endpoint); err != nil {
			return nil, err
		}
		table := cfg.KillSwitchTable
		c.push(func(ctx context.Context) error { return nftDeleteTable(ctx, table) })
	}

	if c.dev, err = newWGDevice(cfg.Interface, s.MTU, s.PrivateKey, 0, cfg.FwMark, c.log); err != nil {
		return nil, err
	}
	dev := c.dev
	c.push(func(context.Context) error { dev.close(); return nil })
	// Unlike the device routes, throw routes outlive the TUN; this runs
	// after the policy rules are gone.
	c.push(func(ctx context.Context) error { return c.setThrows(ctx, nil, nil) })
	peer := tunnel.PeerConfig{PublicKey: s.PeerPublicKey, AllowedIPs: s.AllowedIPs, Endpoint: s.Endpoint, PersistentKeepalive: s.PersistentKeepalive, Conn: owned}
	if owned != nil {
		c.connID = s.PeerPublicKey.Hex()
	}
	owned = nil // setPeer closes it on failure, the device on close
	if err = c.dev.setPeer(peer); err != nil {
		if peer.Conn != nil {
			_ = peer.Conn.Close()
		}
		return nil, fmt.Errorf("configure provider peer: %w", err)
	}
	ifc := c.dev.name
	has6 := false
	for _, a := range s.Addresses {
		args := []string{"addr", "add", a.String(), "dev", ifc}
		if a.Addr().Is6() {
			has6 = true
			args = append([]string{"-6"}, append(args, "nodad")...)
		}
		if err = ip(ctx, args...); err != nil {
			return nil, err
		}
	}
	if err = ip(ctx, "link", "set", ifc, "up"); err != nil {
		return nil, err
	}
	if sc, changed, serr := setSysctl("net/ipv4/conf/all/src_valid_mark", "1"); serr != nil {
		return nil, serr
	} else if changed {
		c.push(func(context.Context) error { return sc.restore() })
	}
	if err = c.addRoutes(ctx, ifc, s.AllowedIPs, has6); err != nil {
		return nil, err
	}
	if cfg.ResolvConf != "" && len(s.DNS) > 0 {
		if err = c.setDNS(ctx, cfg.ResolvConf, s.DNS); err != nil {
			return nil, err
		}
	}
	if cfg.HandshakeTimeout > 0 {
		if err = tunnel.WaitHandshake(ctx, c, s.PeerPublicKey, cfg.HandshakeTimeout); err != nil {
			return nil, fmt.Errorf("connect to %s: %w", c.peerDesc(), err)
		}
	}
	c.log.Info("kernel tunnel up", "endpoint", s.Endpoint, "ice", c.ice, "path", cfg.Path, "killswitch", !cfg.NoKillSwitch)
	return c, nil
}

func (c *Client) push(f func(context.Context) error) { c.undo = append(c.undo, f) }

func (c *Client) loadKillSwitch(ctx context.Context, ep netip.AddrPort) error {
	return c.loadKillSwitchFor(ctx, ep, c.ice, c.cfg.Path, c.cfg.Direct, false)
}

// loadKillSwitchFor replaces the kill switch table in one nft transaction:
// the old ruleset stays in force until the new one is, and stays if the
// load fails. It admits UDP to ep, or with ice to path instead, TCP/UDP
// to direct, with checks UDP from and to the sockets marked
// SocketMark, and the port-mapping client's way to PortMapGateway.
func (c *Client) loadKillSwitchFor(ctx context.Context, ep netip.AddrPort, ice bool, path, direct []netip.AddrPort, checks bool) error {
	ks, err := killSwitchRuleset{Table: c.cfg.KillSwitchTable, Iface: c.cfg.Interface, Endpoint: ep, ICE: ice, Path: path, Direct: direct, ICEChecks: checks, PortMapGateway: c.cfg.PortMapGateway}.render()
	if err != nil {
		return err
	}
	if err := nftLoad(ctx, ks); err != nil {
		return fmt.Errorf("kill switch: %w", err)
	}
	return nil
}

// addRoutes routes the allowed prefixes into the tunnel through a policy
// routing table that WireGuard's own (fwmarked) packets skip, like wg-quick.
func (c *Client) addRoutes(ctx context.Context, ifc string, allowed []netip.Prefix, has6 bool) error {
	table := strconv.FormatUint(uint64(c.cfg.FwMark), 10)
	mark := "0x" + strconv.FormatUint(uint64(c.cfg.FwMark), 16)
	for _, fam := range []string{"-4", "-6"} {
		var ps []netip.Prefix
		for _, p := range allowed {
			if (fam == "-4") == p.Addr().Is4() {
				ps = append(ps, p)
			}
		}
		if len(ps) == 0 {
			continue
		}
		// A crashed client may have left its rules behind (its routes and
		// TUN went with the process): remove them so they are not doubled.
		for _, spec := range policyRules(mark, table) {
			for i := 0; i < 16 && ip(ctx, append([]string{fam, "rule", "del"}, spec...)...) == nil; i++ {
				c.log.Info("removed a policy rule left by an earlier run", "rule", strings.Join(spec, " "))
			}
		}
		err := func() error {
			for _, p := range ps {
				if err := ip(ctx, fam, "route", "add", p.Masked().String(), "dev", ifc, "table", table); err != nil {
					return err
				}
			}
			// The families routed so far and this one: setThrows removes
			// the throw routes of families not named.
			fams := map[string]bool{fam: true}
			for f := range c.fams {
				fams[f] = true
			}
			if err := c.setThrows(ctx, fams, outside(c.cfg.Direct, c.cfg.Path)); err != nil {
				return err
			}
			for _, spec := range policyRules(mark, table) {
				if err := ip(ctx, append([]string{fam, "rule", "add"}, spec...)...); err != nil {
					return err
				}
				f, sp := fam, spec
				c.push(func(ctx context.Context) error { return ip(ctx, append([]string{f, "rule", "del"}, sp...)...) })
			}
			return nil
		}()
		if err != nil {
			if fam == "-6" && !has6 {
				// No IPv6 address in the tunnel and IPv6 routing unusable
				// here: the kill switch still keeps IPv6 from leaking.
				c.log.Warn("no IPv6 routes through the tunnel", "err", err)
				continue
			}
			return fmt.Errorf("route through tunnel: %w", err)
		}
		c.fams[fam] = true
	}
	return nil
}

// policyRules are the client's policy routing rules (ip rule
// arguments), in the order they are added: this host's ICE sockets
// (SocketMark) use the main table, so that their checks reach a
// peer-reflexive address that has no throw route in the tunnel's table
// (the kill switch decides what they may send); everything else skips
// the main table's default route, and what WireGuard itself did not mark
// takes the tunnel's table.
func policyRules(mark, table string) [][]string {
	return [][]string{
		{"fwmark", "0x" + strconv.FormatUint(SocketMark, 16), "table", "main", "pref", strconv.Itoa(rulePref - 1)},
		{"table", "main", "suppress_prefixlength", "0", "pref", strconv.Itoa(rulePref)},
		{"not", "fwmark", mark, "table", table, "pref", strconv.Itoa(rulePref + 1)},
	}
}

// peerDesc names where the provider peer is reached, for errors.
func (c *Client) peerDesc() string {
	if c.ice {
		return fmt.Sprintf("%s over its ICE connection (path %v)", c.peer, c.cfg.Path)
	}
	return c.ep.String()
}

// outside returns the destinations routed outside the tunnel: the direct
// ones and the ICE path's.
func outside(direct, path []netip.AddrPort) []netip.AddrPort {
	return append(append([]netip.AddrPort(nil), direct...), path...)
}

func (c *Client) routeTable() string { return strconv.FormatUint(uint64(c.cfg.FwMark), 10) }

func famOf(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "-4"
	}
	return "-6"
}

// setThrows makes the throw routes of the tunnel's routing table, for the
// families in fams, exactly the addresses of direct: their traffic takes
// the main table (outside the tunnel). Throw routes of other families are
// removed; nil fams and direct remove every throw route.
func (c *Client) setThrows(ctx context.Context, fams map[string]bool, direct []netip.AddrPort) error {
	table := c.routeTable()
	want := map[netip.Addr]bool{}
	for _, d := range direct {
		if a := d.Addr().Unmap(); fams[famOf(a)] {
			want[a] = true
		}
	}
	var errs []error
	for a := range want {
		if c.throws[a] {
			continue
		}
		if err := ip(ctx, famOf(a), "route", "replace", "throw", netip.PrefixFrom(a, a.BitLen()).String(), "table", table); err != nil {
			errs = append(errs, err)
			continue
		}
		c.throws[a] = true
	}
	for a := range c.throws {
		if want[a] {
			continue
		}
		if err := ip(ctx, famOf(a), "route", "del", "throw", netip.PrefixFrom(a, a.BitLen()).String(), "table", table); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(c.throws, a)
	}
	return errors.Join(errs...)
}

func (c *Client) setDNS(ctx context.Context, path string, dns []netip.Addr) error {
	if c.resolved {
		if !c.dnsSet {
			// Pushed first: a partly applied setting is reverted too.
			c.dnsSet = true
			ifc := c.cfg.Interface
			c.push(func(ctx context.Context) error { return resolvedRevert(ctx, ifc) })
		}
		return resolvedSetDNS(ctx, c.cfg.Interface, dns)
	}
	if c.dnsSet {
		// The first call's undo restores the original.
		return writeResolvConf(path, dns)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dns: read %s: %w", path, err)
	}
	existed := err == nil
	if err := writeResolvConf(path, dns); err != nil {
		return err
	}
	c.dnsSet = true
	c.push(func(context.Context) error {
		if !existed {
			return os.Remove(path)
		}
		return os.WriteFile(path, old, 0o644)
	})
	return nil
}

func writeResolvConf(path string, dns []netip.Addr) error {
	var b strings.Builder
	b.WriteString("# written by openmyst while the tunnel is up; restored on disconnect\n")
	for _, d := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("dns: write %s: %w", path, err)
	}
	return nil
}

// teardown runs the undo stack in reverse and empties it.
func (c *Client) teardown(ctx context.Context) error {
	var errs []error
	for i := len(c.undo) - 1; i >= 0; i-- {
		if err := c.undo[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	c.undo = nil
	return errors.Join(errs...)
}

// Interface returns the TUN interface name.
func (c *Client) Interface() string { return c.dev.name }

// TUNBatchSize reports how many packets wireguard-go moves per TUN read or
// write: above 1 means the kernel's TUN offloads are in use.
func (c *Client) TUNBatchSize() int { return c.dev.tunBatchSize() }

// SetPeer replaces the provider peer in place (a reconnect to another
// endpoint with the same tunnel key and addresses): the kill switch is
// reloaded for the new endpoint in one transaction and stays active
// throughout, routes stay, and nothing leaves outside the tunnel in
// between. The peer is reached at ep over the device's UDP socket (an ICE
// connection the old peer had is closed). It does not wait for a
// handshake.
func (c *Client) SetPeer(ctx context.Context, pub tunnel.PublicKey, ep netip.AddrPort) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pub.IsZero() || !ep.IsValid() || ep.Port() == 0 {
		return fmt.Errorf("set peer: invalid key or endpoint")
	}
	s := c.cfg.Session
	s.PeerPublicKey, s.Endpoint = pub, ep
	if err := c.reconfigure(ctx, s, Route{Direct: c.cfg.Direct}, false); err != nil {
		return fmt.Errorf("set peer: %w", err)
	}
	return nil
}

// Reconfigure moves the connected tunnel to a new session in place (a
// reconnect to another provider): our WireGuard key, the provider peer and
// endpoint or ICE connection and path (r.Conn, r.Path: the old connection
// is closed), the tunnel addresses, MTU, AllowedIPs routes, DNS and the
// direct destinations (ClientConfig.Direct) are replaced while the TUN,
// the policy rules and the kill switch stay. The client owns r.Conn from
// the call on, also on error. The kill switch is replaced
// first, in one nft transaction, so there is no instant without one; the
// old ruleset stays if that load fails. It then waits for the handshake
// with the new peer (ClientConfig.HandshakeTimeout).
//
// On any error the client stays open and fails closed: the kill switch
// admits only the new endpoint and direct destinations (or, if its load
// failed, the old ones), and nothing else leaves outside the tunnel. The
// caller may call Reconfigure again or Close.
func (c *Client) Reconfigure(ctx context.Context, s tunnel.SessionConfig, r Route) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.reconfigure(ctx, s, r, true); err != nil {
		return fmt.Errorf("reconfigure kernel tunnel %s: %w", c.cfg.Interface, err)
	}
	c.log.Info("kernel tunnel reconfigured", "endpoint", s.Endpoint)
	return nil
}

// SetDirect replaces the direct destinations (ClientConfig.Direct) of the
// current session: one kill switch transaction and the throw routes.
// A consumer uses it to reach a new provider's control address (and its
// bootstrap peers) while the tunnel is down and the kill switch is up.
func (c *Client) SetDirect(ctx context.Context, direct []netip.AddrPort) error {
	if err := c.setExempt(ctx, true, direct, false); err != nil {
		return fmt.Errorf("set direct: %w", err)
	}
	return nil
}

// AdmitChecks lets the ICE connectivity checks of the next session out
// while this tunnel is up (a reconnect): the kill switch admits TCP/UDP to
// the direct destinations plus the peer's candidates, and UDP from and to
// the agent's sockets (marked SocketMark: a peer-reflexive peer is
// answered), in one transaction; the candidates' addresses leave the
// tunnel's routing table. The next SetDirect, Reconfigure or SetPeer
// takes all of it back.
func (c *Client) AdmitChecks(ctx context.Context, candidates []netip.AddrPort) error {
	if err := c.setExempt(ctx, false, candidates, true); err != nil {
		return fmt.Errorf("admit ICE checks: %w", err)
	}
	return nil
}

// setExempt replaces the direct destinations with dests (replace) or adds
// dests to them, and admits the ICE sockets (checks) or not: one kill
// switch transaction, then the throw routes.
func (c *Client) setExempt(ctx context.Context, replace bool, dests []netip.AddrPort, checks bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return tunnel.ErrClosed
	}
	var direct []netip.AddrPort
	if !replace {
		direct = append(direct, c.cfg.Direct...)
	}
	direct = append(direct, dests...)
	for _, d := range direct {
		if !d.IsValid() || d.Port() == 0 {
			return fmt.Errorf("invalid destination %v", d)
		}
	}
	if !c.cfg.NoKillSwitch {
		if err := c.loadKillSwitchFor(ctx, c.ep, c.ice, c.cfg.Path, direct, checks); err != nil {
			return err
		}
	}
	c.cfg.Direct = direct
	if err := c.setThrows(ctx, c.fams, outside(direct, c.cfg.Path)); err != nil {
		return fmt.Errorf("route outside the tunnel: %w", err)
	}
	return nil
}

// reconfigure implements Reconfigure and SetPeer; c.mu is held. It owns
// r.Conn.
func (c *Client) reconfigure(ctx context.Context, s tunnel.SessionConfig, r Route, wait bool) (err error) {
	owned := r.Conn
	defer func() {
		if err != nil && owned != nil {
			_ = owned.Close()
		}
	}()
	if c.closed {
		return tunnel.ErrClosed
	}
	if err := s.Validate(); err != nil {
		return err
	}
	if err := r.validate(); err != nil {
		return err
	}
	if s.MTU == 0 {
		s.MTU = tunnel.DefaultMTU
	}
	direct := append([]netip.AddrPort(nil), r.Direct...)
	path := append([]netip.AddrPort(nil), r.Path...)
	ice := r.Conn != nil
	old := c.cfg.Session
	// 1. The kill switch for the new endpoint or path and direct
	// destinations, in one transaction: the old one is in force until
	// the new one is.
	if !c.cfg.NoKillSwitch {
		if err := c.loadKillSwitchFor(ctx, s.Endpoint, ice, path, direct, false); err != nil {
			return err
		}
	}
	c.cfg.Direct, c.cfg.Path = direct, path
	ifc := c.dev.name
	// 2. Direct destinations and the path leave the tunnel's routing
	// table before the new peer is dialled.
	if err := c.setThrows(ctx, c.fams, outside(direct, path)); err != nil {
		return fmt.Errorf("route outside the tunnel: %w", err)
	}
	// 3. The old peer's connection goes; the new one's comes.
	if c.connID != "" {
		c.dev.bind.Remove(c.connID)
		c.connID = ""
	}
	peer := tunnel.PeerConfig{PublicKey: s.PeerPublicKey, AllowedIPs: s.AllowedIPs, Endpoint: s.Endpoint, PersistentKeepalive: s.PersistentKeepalive, Conn: r.Conn}
	if ice {
		id := s.PeerPublicKey.Hex()
		if _, err := c.dev.bind.Add(id, r.Conn); err != nil {
			return fmt.Errorf("carry provider peer %s over its connection: %w", s.PeerPublicKey, err)
		}
		owned, c.connID = nil, id
	}
	c.ice = ice
	// 4. Our key and the peer, in one UAPI transaction: the old peer and
	// its sessions go, the listening port stays.
	uapi := "replace_peers=true\n"
	if s.PrivateKey != old.PrivateKey {
		uapi = "private_key=" + s.PrivateKey.Hex() + "\n" + uapi
	}
	if err := c.dev.dev.IpcSet(uapi + tunnel.PeerUAPI(peer)); err != nil {
		return fmt.Errorf("configure provider peer %s: %w", s.PeerPublicKey, err)
	}
	c.peer, c.ep = s.PeerPublicKey, s.Endpoint
	// The session is the new one from here: a failure below leaves a
	// partly configured (and fail-closed) tunnel a retry completes.
	c.cfg.Session = s
	if s.MTU != old.MTU {
		if err := ip(ctx, "link", "set", "dev", ifc, "mtu", strconv.Itoa(s.MTU)); err != nil {
			return err
		}
	}
	// 4. Addresses: add the new ones, then drop the old ones.
	has := map[netip.Prefix]bool{}
	for _, a := range old.Addresses {
		has[a] = true
	}
	keep := map[netip.Prefix]bool{}
	for _, a := range s.Addresses {
		keep[a] = true
		if has[a] {
			continue
		}
		args := []string{"addr", "replace", a.String(), "dev", ifc}
		if a.Addr().Is6() {
			args = append([]string{"-6"}, append(args, "nodad")...)
		}
		if err := ip(ctx, args...); err != nil {
			return err
		}
	}
	for _, a := range old.Addresses {
		if keep[a] {
			continue
		}
		if err := ip(ctx, "addr", "del", a.String(), "dev", ifc); err != nil {
			return err
		}
	}
	// 5. Routes of the AllowedIPs, for the families already routed into
	// the tunnel (the policy rules were set up by Connect).
	table := c.routeTable()
	want := map[netip.Prefix]bool{}
	for _, p := range s.AllowedIPs {
		want[p.Masked()] = true
	}
	for p := range want {
		if c.fams[famOf(p.Addr())] {
			if err := ip(ctx, famOf(p.Addr()), "route", "replace", p.String(), "dev", ifc, "table", table); err != nil {
				return fmt.Errorf("route through tunnel: %w", err)
			}
		}
	}
	for _, p := range old.AllowedIPs {
		if p = p.Masked(); !want[p] && c.fams[famOf(p.Addr())] {
			if err := ip(ctx, famOf(p.Addr()), "route", "del", p.String(), "dev", ifc, "table", table); err != nil {
				return fmt.Errorf("route through tunnel: %w", err)
			}
		}
	}
	// 6. DNS.
	if c.cfg.ResolvConf != "" && len(s.DNS) > 0 {
		if err := c.setDNS(ctx, c.cfg.ResolvConf, s.DNS); err != nil {
			return err
		}
	}
	if wait && c.cfg.HandshakeTimeout > 0 {
		if err := tunnel.WaitHandshake(ctx, c, s.PeerPublicKey, c.cfg.HandshakeTimeout); err != nil {
			return fmt.Errorf("connect to %s: %w", c.peerDesc(), err)
		}
	}
	return nil
}

// Exemptions returns what the kill switch admits outside the tunnel: the
// UDP destinations of the provider's datagrams (its WireGuard endpoint,
// or over ICE the selected path's, ClientConfig.Path) and the direct
// destinations (TCP/UDP).
func (c *Client) Exemptions() (udp, direct []netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ice {
		udp = append(udp, c.cfg.Path...)
	} else {
		udp = []netip.AddrPort{c.ep}
	}
	return udp, append([]netip.AddrPort(nil), c.cfg.Direct...)
}

// PeerStats implements tunnel.Counter for the device's single peer.
func (c *Client) PeerStats(pub tunnel.PublicKey) (tunnel.PeerStats, bool) {
	return c.dev.peerStats(pub, c.log)
}

// DialContext opens a connection inside the tunnel: its socket is bound
// to the TUN (SO_BINDTODEVICE), so it leaves through the tunnel even to a
// destination the kill switch exempts and the tunnel's routing table
// throws out (a STUN/TURN server on a relayed path, a control address).
// A consumer asks the network's STUN server through it where the exit's
// traffic comes from.
func (c *Client) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	ifc := c.cfg.Interface
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), ifc) }); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("bind to %s: %w", ifc, serr)
		}
		return nil
	}}
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("dial %s inside the tunnel %s: %w", address, ifc, err)
	}
	return conn, nil
}

// Stats returns the counters of the provider peer.
func (c *Client) Stats() tunnel.PeerStats {
	c.mu.Lock()
	pub := c.peer
	c.mu.Unlock()
	st, _ := c.PeerStats(pub)
	return st
}

// Close removes DNS, routes and rules, stops the device and removes the
// kill switch last. Closing twice returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if err := c.teardown(context.Background()); err != nil {
		return fmt.Errorf("close kernel tunnel %s: %w", c.cfg.Interface, err)
	}
	c.log.Info("kernel tunnel down")
	return nil
}
