package kernel

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/openmyst/openmyst/tunnel"
)

// Defaults of ExitConfig.
const (
	DefaultExitInterface = "myst-exit0"
	DefaultExitTable     = "openmyst"
)

// ExitConfig configures a kernel-mode provider exit.
type ExitConfig struct {
	// Interface is the TUN interface name; DefaultExitInterface if empty.
	Interface string
	// PrivateKey is the device key; a fresh one is generated if zero.
	PrivateKey tunnel.PrivateKey
	// ListenPort is the WireGuard UDP port; 0 lets the kernel pick one.
	ListenPort uint16
	// EndpointAddr is the address consumers are told to send to (the
	// node's public address); unset, Endpoint reports the unspecified
	// address with the port.
	EndpointAddr netip.Addr
	// MTU of the TUN interface; tunnel.DefaultMTU if 0.
	MTU int
	// Pool is the tunnel address pool the session layer allocates consumer
	// leases from; its gateway goes on the interface. A pool over
	// tunnel.DefaultPoolV4 and DefaultPoolV6 if nil.
	Pool *tunnel.AddressPool
	// Policy is the exit policy rendered into nftables;
	// tunnel.DefaultExitPolicy() if nil. While the exit runs it re-reads
	// the host's addresses the policy denies every AddrPollInterval, and
	// whenever the policy's own addresses change (new interface address,
	// SetExtraDenied) the deny sets are replaced in one nft transaction.
	Policy *tunnel.ExitPolicy
	// AddrPollInterval is how often the policy's interface addresses are
	// re-read; 0 means tunnel.DefaultAddrPollInterval.
	AddrPollInterval time.Duration
	// DNSUpstream are the resolvers that DNS queries to the gateway address
	// are forwarded to (the first of each family is used). If nil, the
	// non-loopback nameservers of /etc/resolv.conf are used; if there are
	// none, the gateway serves no DNS.
	DNSUpstream []netip.Addr
	// Table is the nftables table (family inet); DefaultExitTable if empty.
	Table string
	// FlowOffload adds an nftables flowtable that moves established flows
	// between the TUN and the uplinks onto the kernel's software fast path
	// (skipping the forward chains; flows of peers with a bandwidth limit
	// are never offloaded). It is dropped with a warning if the kernel
	// lacks nf_flow_table. Off by default: the kernels this package is
	// tested on (see docs/benchmarks.md) do not have it, so it is unproven.
	FlowOffload bool
	// Log receives operational messages; slog.Default() if nil.
	Log *slog.Logger
}

// Exit is a running kernel-mode provider exit. It implements tunnel.Exit.
type Exit struct {
	cfg     ExitConfig
	log     *slog.Logger
	dev     *wgDevice
	pub     tunnel.PublicKey
	port    uint16
	gateway tunnel.Lease
	sysctls []sysctl

	stopWatch context.CancelFunc // ends the policy watchers
	watchers  sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	peers   map[tunnel.PublicKey]tunnel.PeerConfig
	blocked uint64         // last value read from nftables
	denied  []netip.Prefix // the deny sets' content as last loaded
}

var _ tunnel.Exit = (*Exit)(nil)

// resolvConfNameservers returns the non-loopback nameservers of path.
func resolvConfNameservers(path string) []netip.Addr {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, f := range nameserverFields(b) {
		if a, err := netip.ParseAddr(f); err == nil && !a.IsLoopback() && !a.IsUnspecified() && a.Zone() == "" {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// nameserverFields returns the address field of each nameserver line of
// a resolv.conf.
func nameserverFields(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "nameserver" {
			out = append(out, fields[1])
		}
	}
	return out
}

// RemoveExitLeftovers deletes the exit's nftables table if a crashed run
// left it behind. NewExit calls it itself; `myst` may call it on start.
func RemoveExitLeftovers(ctx context.Context, table string) error {
	return removeTable(ctx, cmp.Or(table, DefaultExitTable))
}

// NewExit brings up a kernel-mode exit: TUN interface and wireguard-go
// device, gateway addresses, IP forwarding and the nftables table. On
// error everything already done is undone.
func NewExit(ctx context.Context, cfg ExitConfig) (_ *Exit, err error) {
	if err := checkTools("ip", "nft"); err != nil {
		return nil, err
	}
	cfg.Interface = cmp.Or(cfg.Interface, DefaultExitInterface)
	cfg.Table = cmp.Or(cfg.Table, DefaultExitTable)
	cfg.MTU = cmp.Or(cfg.MTU, tunnel.DefaultMTU)
	cfg.Log = cmp.Or(cfg.Log, slog.Default())
	if cfg.Pool == nil {
		if cfg.Pool, err = tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6); err != nil {
			return nil, err
		}
	}
	if cfg.Policy == nil {
		if cfg.Policy, err = tunnel.DefaultExitPolicy(); err != nil {
			return nil, err
		}
	}
	if cfg.DNSUpstream == nil {
		cfg.DNSUpstream = resolvConfNameservers("/etc/resolv.conf")
	}
	if cfg.PrivateKey.IsZero() {
		if cfg.PrivateKey, err = tunnel.GenerateKey(); err != nil {
			return nil, err
		}
	}
	if err := validIfName(cfg.Interface); err != nil {
		return nil, err
	}
	if err := validTableName(cfg.Table); err != nil {
		return nil, err
	}
	pool4, pool6 := cfg.Pool.Ranges()
	gw := cfg.Pool.Gateway()
	// Taken before the deny prefixes are read: a change after this point
	// is applied by followPolicy.
	policyChanged := cfg.Policy.Changed()
	rs := exitRuleset{
		Table: cfg.Table, Iface: cfg.Interface,
		Pool4: pool4, Pool6: pool6, Gateway: gw,
		Allow: cfg.Policy.AllowRules(), Deny: cfg.Policy.DenyRules(),
		DenyPrefixes: cfg.Policy.DenyPrefixes(),
	}
	for _, a := range cfg.DNSUpstream {
		switch {
		case a.Is4() && !rs.DNS4.IsValid():
			rs.DNS4 = a
		case a.Is6() && !a.Is4In6() && !rs.DNS6.IsValid():
			rs.DNS6 = a
		}
	}
	if _, err := rs.render(); err != nil {
		return nil, err
	}
	log := cfg.Log.With("component", "tunnel/kernel exit", "iface", cfg.Interface)

	// The TUN lives exactly as long as its exit process: if it exists,
	// another exit is running and its firewall must not be touched.
	if linkExists(cfg.Interface) {
		return nil, fmt.Errorf("kernel exit: interface %s exists: another exit is running", cfg.Interface)
	}
	// A crash may have left the table; the TUN went with the process.
	if err := RemoveExitLeftovers(ctx, cfg.Table); err != nil {
		return nil, err
	}
	e := &Exit{cfg: cfg, log: log, pub: cfg.PrivateKey.PublicKey(), gateway: gw, peers: map[tunnel.PublicKey]tunnel.PeerConfig{}}
	defer func() {
		if err != nil {
			e.teardown(context.WithoutCancel(ctx))
		}
	}()
	if e.dev, err = newWGDevice(cfg.Interface, cfg.MTU, cfg.PrivateKey, cfg.ListenPort, 0, log); err != nil {
		return nil, err
	}
	if e.port, err = e.dev.listenPort(); err != nil {
		return nil, err
	}
	ifc := e.dev.name
	if err = ip(ctx, "addr", "add", netip.PrefixFrom(gw.V4, pool4.Bits()).String(), "dev", ifc); err != nil {
		return nil, err
	}
	if gw.V6.IsValid() {
		if err = ip(ctx, "-6", "addr", "add", netip.PrefixFrom(gw.V6, pool6.Bits()).String(), "dev", ifc, "nodad"); err != nil {
			return nil, err
		}
	}
	if err = ip(ctx, "link", "set", ifc, "up"); err != nil {
		return nil, err
	}
	fwd := []string{"net/ipv4/ip_forward"}
	if gw.V6.IsValid() {
		// With forwarding on, Linux ignores router advertisements on
		// interfaces with accept_ra=1, and a home node would lose its IPv6
		// default route at the next RA: keep accepting them (accept_ra=2).
		for _, k := range acceptRAKeys(ifc) {
			s, changed, serr := setSysctl(k, "2")
			if serr != nil {
				return nil, serr
			}
			if changed {
				e.sysctls = append(e.sysctls, s)
			}
		}
		fwd = append(fwd, "net/ipv6/conf/all/forwarding")
	}
	for _, k := range fwd {
		s, changed, serr := setSysctl(k, "1")
		if serr != nil {
			return nil, serr
		}
		if changed {
			e.sysctls = append(e.sysctls, s)
		}
	}
	if cfg.FlowOffload {
		rs.Offload = offloadDevices(ifc)
	}
	ruleset, err := rs.render()
	if err != nil {
		return nil, err
	}
	if err = nftLoad(ctx, ruleset); err != nil && len(rs.Offload) > 0 {
		log.Warn("nftables flowtable refused; exit runs without flow offload", "err", err)
		rs.Offload = nil
		if ruleset, err = rs.render(); err != nil {
			return nil, err
		}
		err = nftLoad(ctx, ruleset)
	}
	if err != nil {
		return nil, err
	}
	e.denied = rs.DenyPrefixes
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stopWatch = stop
	e.watchers.Add(2)
	go func() {
		defer e.watchers.Done()
		cfg.Policy.WatchInterfaceAddrs(wctx, cfg.AddrPollInterval, log)
	}()
	go func() {
		defer e.watchers.Done()
		e.followPolicy(wctx, policyChanged)
	}()
	log.Info("kernel exit up", "port", e.port, "gateway", gw.V4, "pool", pool4, "dns4", rs.DNS4, "offload", rs.Offload)
	return e, nil
}

// followPolicy reloads the deny sets whenever the policy's own addresses
// change, until ctx ends. A failed load is retried every AddrPollInterval.
func (e *Exit) followPolicy(ctx context.Context, changed <-chan struct{}) {
	interval := e.cfg.AddrPollInterval
	if interval <= 0 {
		interval = tunnel.DefaultAddrPollInterval
	}
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-retry:
		}
		changed = e.cfg.Policy.Changed()
		retry = nil
		if err := e.syncDenySets(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Error("exit policy: update the firewall's deny sets; retrying", "err", err)
			retry = time.After(interval)
		}
	}
}

// syncDenySets replaces the deny sets' elements with the policy's current
// DenyPrefixes in one nft transaction (no moment without them), unless
// they are unchanged or the exit is closed.
func (e *Exit) syncDenySets(ctx context.Context) error {
	want := e.cfg.Policy.DenyPrefixes()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || slices.Equal(want, e.denied) {
		return nil
	}
	if err := nftLoad(ctx, renderDenySets(e.cfg.Table, want)); err != nil {
		return err
	}
	e.denied = want
	e.log.Info("exit policy: deny sets updated", "own", fmt.Sprint(e.cfg.Policy.OwnAddrs()))
	return nil
}

// acceptRAKeys returns the accept_ra sysctls of interfaces (except skip)
// that accept router advertisements only while not forwarding (accept_ra=1).
func acceptRAKeys(skip string) []string {
	dirs, err := os.ReadDir("/proc/sys/net/ipv6/conf")
	if err != nil {
		return nil
	}
	var keys []string
	for _, d := range dirs {
		switch d.Name() {
		case "all", "default", "lo", skip:
			continue
		}
		k := "net/ipv6/conf/" + d.Name() + "/accept_ra"
		if v, err := os.ReadFile("/proc/sys/" + k); err == nil && strings.TrimSpace(string(v)) == "1" {
			keys = append(keys, k)
		}
	}
	return keys
}

// offloadDevices returns the TUN and every other interface that is up
// (not loopback): the devices of the exit's flowtable.
func offloadDevices(tunName string) []string {
	devs := []string{tunName}
	ifs, err := net.Interfaces()
	if err != nil {
		return devs
	}
	for _, i := range ifs {
		if i.Name != tunName && i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 && validIfName(i.Name) == nil {
			devs = append(devs, i.Name)
		}
	}
	return devs
}

// teardown removes the table, the device and restores sysctls; it keeps
// going on errors and returns them all.
func (e *Exit) teardown(ctx context.Context) error {
	if e.stopWatch != nil {
		e.stopWatch()
		e.watchers.Wait()
	}
	var errs []error
	if err := nftDeleteTable(ctx, e.cfg.Table); err != nil {
		errs = append(errs, err)
	}
	if e.dev != nil {
		e.dev.close()
	}
	for i := len(e.sysctls) - 1; i >= 0; i-- {
		if err := e.sysctls[i].restore(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops the device and removes the firewall table and forwarding
// settings it installed. Closing twice returns nil.
func (e *Exit) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	err := e.teardown(context.Background())
	if err != nil {
		return fmt.Errorf("close kernel exit %s: %w", e.cfg.Interface, err)
	}
	e.log.Info("kernel exit down")
	return nil
}

// Interface returns the TUN interface name.
func (e *Exit) Interface() string { return e.dev.name }

// TUNBatchSize reports how many packets wireguard-go moves per TUN read or
// write: above 1 means the kernel's TUN offloads (TSO/GRO via
// IFF_VNET_HDR) are in use; 1 means the slow path.
func (e *Exit) TUNBatchSize() int { return e.dev.tunBatchSize() }

// PublicKey is the device's WireGuard key.
func (e *Exit) PublicKey() tunnel.PublicKey { return e.pub }

// Endpoint is the UDP address consumers send to.
func (e *Exit) Endpoint() netip.AddrPort {
	a := e.cfg.EndpointAddr
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	return netip.AddrPortFrom(a, e.port)
}

// Gateway is the provider's tunnel addresses; DNS is served there when an
// upstream resolver is known.
func (e *Exit) Gateway() tunnel.Lease { return e.gateway }

// checkAllowedIPs makes sure a consumer only claims host addresses inside
// the pool, so no peer can capture other traffic.
func (e *Exit) checkAllowedIPs(ps []netip.Prefix) error {
	v4, v6 := e.cfg.Pool.Ranges()
	for _, p := range ps {
		a := p.Addr()
		switch {
		case a.Is4() && p.Bits() == 32 && v4.Contains(a) && a != e.gateway.V4:
		case a.Is6() && p.Bits() == 128 && v6.IsValid() && v6.Contains(a) && a != e.gateway.V6:
		default:
			return fmt.Errorf("allowed IP %v is not a host address of the tunnel pool", p)
		}
	}
	return nil
}

// AddPeer admits a consumer (or updates it). A BandwidthLimit becomes a
// rate limit in each direction in the firewall.
func (e *Exit) AddPeer(ctx context.Context, cfg tunnel.PeerConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := e.checkAllowedIPs(cfg.AllowedIPs); err != nil {
		return fmt.Errorf("add peer %s: %w", cfg.PublicKey, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("add peer %s: %w", cfg.PublicKey, tunnel.ErrClosed)
	}
	if old, ok := e.peers[cfg.PublicKey]; ok && old.BandwidthLimit != 0 {
		if err := e.removeLimit(ctx, old); err != nil {
			return fmt.Errorf("add peer %s: %w", cfg.PublicKey, err)
		}
	}
	if err := e.dev.setPeer(cfg); err != nil {
		return fmt.Errorf("add peer %s: %w", cfg.PublicKey, err)
	}
	if cfg.BandwidthLimit != 0 {
		if err := nftLoad(ctx, renderPeerLimit(e.cfg.Table, cfg.PublicKey, cfg.AllowedIPs, cfg.BandwidthLimit)); err != nil {
			_ = e.dev.removePeer(cfg.PublicKey)
			delete(e.peers, cfg.PublicKey)
			return fmt.Errorf("add peer %s: bandwidth limit: %w", cfg.PublicKey, err)
		}
	}
	e.peers[cfg.PublicKey] = cfg
	return nil
}

// AttachConn implements tunnel.ConnAttacher.
func (e *Exit) AttachConn(pub tunnel.PublicKey, c net.Conn) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		c.Close()
		return fmt.Errorf("attach connection to %s: %w", pub, tunnel.ErrClosed)
	}
	cfg, ok := e.peers[pub]
	if !ok {
		c.Close()
		return fmt.Errorf("attach connection to %s: %w", pub, tunnel.ErrUnknownPeer)
	}
	cfg.Conn = c
	if err := e.dev.setPeer(cfg); err != nil {
		return fmt.Errorf("attach connection to %s: %w", pub, err)
	}
	e.peers[pub] = cfg
	return nil
}

// removeLimit deletes the rate-limit rules and limited-set elements of
// peer. Caller holds e.mu.
func (e *Exit) removeLimit(ctx context.Context, peer tunnel.PeerConfig) error {
	out, err := run(ctx, "", "nft", "-a", "list", "chain", "inet", e.cfg.Table, "peer_limits")
	if err != nil {
		return err
	}
	tag := q(peerLimitComment(peer.PublicKey))
	var cmds strings.Builder
	for _, p := range peer.AllowedIPs {
		set := "limited4"
		if p.Addr().Is6() {
			set = "limited6"
		}
		fmt.Fprintf(&cmds, "delete element inet %s %s { %s }\n", e.cfg.Table, set, p.Addr())
	}
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "comment "+tag) {
			continue
		}
		_, h, ok := strings.Cut(line, "# handle ")
		if !ok {
			continue
		}
		fmt.Fprintf(&cmds, "delete rule inet %s peer_limits handle %s\n", e.cfg.Table, strings.TrimSpace(h))
	}
	if cmds.Len() == 0 {
		return nil
	}
	return nftLoad(ctx, cmds.String())
}

// RemovePeer drops a consumer; its packets stop at once. Unknown keys give
// tunnel.ErrUnknownPeer.
func (e *Exit) RemovePeer(pub tunnel.PublicKey) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("remove peer %s: %w", pub, tunnel.ErrClosed)
	}
	cfg, ok := e.peers[pub]
	if !ok {
		return fmt.Errorf("remove peer %s: %w", pub, tunnel.ErrUnknownPeer)
	}
	if err := e.dev.removePeer(pub); err != nil {
		return fmt.Errorf("remove peer %s: %w", pub, err)
	}
	delete(e.peers, pub)
	if cfg.BandwidthLimit != 0 {
		if err := e.removeLimit(context.Background(), cfg); err != nil {
			return fmt.Errorf("remove peer %s: bandwidth limit rules: %w", pub, err)
		}
	}
	return nil
}

// PeerStats returns the counters of pub, and false if there is no such peer.
func (e *Exit) PeerStats(pub tunnel.PublicKey) (tunnel.PeerStats, bool) {
	return e.dev.peerStats(pub, e.log)
}

// AllPeerStats returns the counters of every peer.
func (e *Exit) AllPeerStats() (map[tunnel.PublicKey]tunnel.PeerStats, error) {
	return e.dev.stats()
}

// Blocked returns how many packets the exit policy dropped (summed over the
// counters of the firewall's deny rules). Connection attempts that the
// sender retries count once per retry.
func (e *Exit) Blocked() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return e.blocked
	}
	out, err := run(context.Background(), "", "nft", "-j", "list", "table", "inet", e.cfg.Table)
	if err == nil {
		var n uint64
		if n, err = sumBlocked([]byte(out), blockComment); err == nil {
			e.blocked = n
		}
	}
	if err != nil {
		e.log.Warn("read exit policy counters", "err", err)
	}
	return e.blocked
}
