package tunnel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/internal/tick"
)

// Proto is an IP transport protocol number as used by the exit policy.
type Proto uint8

// Transport protocols the exit policy distinguishes. ProtoAny in a Rule
// matches every protocol.
const (
	ProtoAny  Proto = 0
	ProtoICMP Proto = 1
	ProtoTCP  Proto = 6
	ProtoUDP  Proto = 17
)

// String returns "tcp", "udp", "icmp", "any" or the number.
func (p Proto) String() string {
	switch p {
	case ProtoAny:
		return "any"
	case ProtoICMP:
		return "icmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// ErrBlocked is returned (wrapped, with the reason) by ExitPolicy.Check for a
// destination the policy refuses.
var ErrBlocked = errors.New("blocked by exit policy")

// Rule matches destinations by prefix, optional protocol and optional port
// range. PortMin == PortMax == 0 matches every port.
type Rule struct {
	Prefix  netip.Prefix
	Proto   Proto
	PortMin uint16
	PortMax uint16
}

// Matches reports whether dst over proto falls under r.
func (r Rule) Matches(dst netip.AddrPort, proto Proto) bool {
	if r.Proto != ProtoAny && r.Proto != proto {
		return false
	}
	if !r.Prefix.Contains(unmap(dst.Addr())) {
		return false
	}
	if r.PortMin == 0 && r.PortMax == 0 {
		return true
	}
	return dst.Port() >= r.PortMin && dst.Port() <= r.PortMax
}

// String renders r in the form ParseRule accepts.
func (r Rule) String() string {
	var b strings.Builder
	if r.Proto != ProtoAny {
		b.WriteString(r.Proto.String())
		b.WriteByte(':')
	}
	b.WriteString(r.Prefix.String())
	if r.PortMin != 0 || r.PortMax != 0 {
		b.WriteString(" port ")
		b.WriteString(strconv.Itoa(int(r.PortMin)))
		if r.PortMax != r.PortMin {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(r.PortMax)))
		}
	}
	return b.String()
}

// ParseRule parses an operator rule: "[tcp:|udp:]CIDR[ port N[-M]]", e.g.
// "203.0.113.0/24", "tcp:0.0.0.0/0 port 25", "udp:2001:db8::/32 port 1000-2000".
// A bare address is taken as a /32 or /128.
func ParseRule(s string) (Rule, error) {
	var r Rule
	rest := strings.TrimSpace(s)
	if p, after, ok := strings.Cut(rest, ":"); ok && (p == "tcp" || p == "udp") {
		r.Proto = map[string]Proto{"tcp": ProtoTCP, "udp": ProtoUDP}[p]
		rest = after
	}
	cidr, ports, hasPorts := strings.Cut(rest, " port ")
	cidr = strings.TrimSpace(cidr)
	if strings.Contains(cidr, "/") {
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil {
			return Rule{}, fmt.Errorf("exit rule %q: %w", s, err)
		}
		if pfx.Addr().Is4In6() {
			return Rule{}, fmt.Errorf("exit rule %q: use a plain IPv4 prefix, not IPv4-mapped IPv6", s)
		}
		r.Prefix = pfx.Masked()
	} else {
		a, err := netip.ParseAddr(cidr)
		if err != nil {
			return Rule{}, fmt.Errorf("exit rule %q: %w", s, err)
		}
		a = unmap(a).WithZone("")
		r.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	if hasPorts {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(ports), "-")
		min, err := parsePort(lo)
		if err != nil {
			return Rule{}, fmt.Errorf("exit rule %q: %w", s, err)
		}
		max := min
		if isRange {
			if max, err = parsePort(hi); err != nil {
				return Rule{}, fmt.Errorf("exit rule %q: %w", s, err)
			}
		}
		if max < min {
			return Rule{}, fmt.Errorf("exit rule %q: port range %d-%d is reversed", s, min, max)
		}
		r.PortMin, r.PortMax = min, max
	}
	return r, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad port %q (want 1-65535)", s)
	}
	return uint16(n), nil
}

// DefaultDenyPrefixes returns the networks no consumer may reach by default:
// "this network", loopback, RFC 1918, CGNAT, link-local, IETF protocol
// assignments, benchmarking, multicast, reserved and broadcast for IPv4;
// unspecified, loopback, unique-local, site-local, link-local and multicast
// for IPv6. IPv4-mapped IPv6 destinations are matched as IPv4.
func DefaultDenyPrefixes() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("224.0.0.0/4"),
		netip.MustParsePrefix("240.0.0.0/4"), // includes 255.255.255.255
		netip.MustParsePrefix("::/128"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fc00::/7"),
		netip.MustParsePrefix("fec0::/10"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("ff00::/8"),
	}
}

// DefaultAddrPollInterval is how often an exit re-reads the host's
// interface addresses (ExitPolicy.WatchInterfaceAddrs) when its policy
// denies them: an address added to an interface is denied to consumers
// within this interval. Polling (one netlink dump per interval) rather than
// netlink address events keeps the policy free of a netlink dependency.
const DefaultAddrPollInterval = 2 * time.Second

// PolicyConfig configures an ExitPolicy.
type PolicyConfig struct {
	// Allow rules take precedence over everything else, including the
	// default deny list: an operator (or a test) that allows 127.0.0.1/32
	// port 8080 really opens it. Use sparingly.
	Allow []Rule
	// Deny rules are added to the defaults.
	Deny []Rule
	// OwnAddrs are the node's own addresses, denied like loopback. Tests
	// pass them explicitly.
	OwnAddrs []netip.Addr
	// InterfaceAddrs adds every address of the host's interfaces to the
	// denied own addresses: read when the policy is built and again on
	// every RefreshInterfaceAddrs (an exit calls it periodically through
	// WatchInterfaceAddrs). What a real node wants.
	InterfaceAddrs bool
	// ListAddrs lists the interface addresses InterfaceAddrs denies; nil
	// means every address of every interface in this process's network
	// namespace (HostAddrs). An exit that egresses from another namespace
	// lists that namespace's addresses.
	ListAddrs func() ([]netip.Addr, error)
	// ExtraDenied are further addresses of the node that are not on its
	// interfaces: its public, advertised or NAT-mapped addresses. They can
	// be replaced later with SetExtraDenied.
	ExtraDenied []netip.Addr
	// NoDefaults drops DefaultDenyPrefixes. Only for lab setups.
	NoDefaults bool
}

// ExitPolicy decides which destinations a consumer's traffic may reach
// from the exit. Evaluation order: Allow rules (first match allows), then
// Deny rules, own addresses and the default deny list (any match blocks),
// then allow. Own addresses are the configured OwnAddrs, the host's
// interface addresses (InterfaceAddrs, re-read by RefreshInterfaceAddrs)
// and the extra denied ones (SetExtraDenied); Changed signals when they
// change, so firewall renderings can follow. It is safe for concurrent use.
type ExitPolicy struct {
	allow     []Rule
	deny      []Rule
	static    []netip.Addr
	listAddrs func() ([]netip.Addr, error) // nil: InterfaceAddrs off
	defaults  []netip.Prefix
	blocked   atomic.Uint64

	own atomic.Pointer[ownAddrs] // static ∪ iface ∪ extra, read by Check

	mu      sync.Mutex // guards iface, extra, changed and writes of own
	iface   []netip.Addr
	extra   []netip.Addr
	changed chan struct{}
}

// ownAddrs is one immutable snapshot of the denied own addresses.
type ownAddrs struct {
	set    map[netip.Addr]struct{}
	sorted []netip.Addr
}

// NewExitPolicy builds a policy from cfg.
func NewExitPolicy(cfg PolicyConfig) (*ExitPolicy, error) {
	p := &ExitPolicy{
		allow:   append([]Rule(nil), cfg.Allow...),
		deny:    append([]Rule(nil), cfg.Deny...),
		changed: make(chan struct{}),
	}
	if !cfg.NoDefaults {
		p.defaults = DefaultDenyPrefixes()
	}
	var err error
	if p.static, err = cleanAddrs(cfg.OwnAddrs); err != nil {
		return nil, fmt.Errorf("exit policy: own address: %w", err)
	}
	if p.extra, err = cleanAddrs(cfg.ExtraDenied); err != nil {
		return nil, fmt.Errorf("exit policy: extra denied address: %w", err)
	}
	if cfg.InterfaceAddrs {
		p.listAddrs = cfg.ListAddrs
		if p.listAddrs == nil {
			p.listAddrs = HostAddrs
		}
		addrs, err := p.listAddrs()
		if err != nil {
			return nil, fmt.Errorf("exit policy: list interface addresses: %w", err)
		}
		if p.iface, err = cleanAddrs(addrs); err != nil {
			return nil, fmt.Errorf("exit policy: interface address: %w", err)
		}
	}
	p.own.Store(p.unionLocked())
	for _, r := range append(append([]Rule(nil), p.allow...), p.deny...) {
		if !r.Prefix.IsValid() {
			return nil, fmt.Errorf("exit policy: rule with invalid prefix")
		}
		if r.PortMax < r.PortMin {
			return nil, fmt.Errorf("exit policy: rule %s has a reversed port range", r)
		}
	}
	return p, nil
}

// HostAddrs returns every address of every interface of this process's
// network namespace, IPv4-mapped ones unmapped, zones dropped.
func HostAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, ia := range addrs {
		if ipn, ok := ia.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(ipn.IP); ok {
				out = append(out, unmap(a))
			}
		}
	}
	return out, nil
}

// cleanAddrs validates, unmaps, drops zones, sorts and deduplicates addrs.
func cleanAddrs(addrs []netip.Addr) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if !a.IsValid() {
			return nil, fmt.Errorf("invalid address")
		}
		out = append(out, unmap(a).WithZone(""))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

// unionLocked builds the own-address snapshot; callers hold p.mu (or own
// p exclusively, as NewExitPolicy does).
func (p *ExitPolicy) unionLocked() *ownAddrs {
	all := make([]netip.Addr, 0, len(p.static)+len(p.iface)+len(p.extra))
	all = append(append(append(all, p.static...), p.iface...), p.extra...)
	slices.SortFunc(all, netip.Addr.Compare)
	all = slices.Compact(all)
	o := &ownAddrs{set: make(map[netip.Addr]struct{}, len(all)), sorted: all}
	for _, a := range all {
		o.set[a] = struct{}{}
	}
	return o
}

// publishLocked stores the new snapshot and wakes Changed's waiters if
// the set of own addresses changed. Callers hold p.mu.
func (p *ExitPolicy) publishLocked() bool {
	next := p.unionLocked()
	if slices.Equal(next.sorted, p.own.Load().sorted) {
		return false
	}
	p.own.Store(next)
	close(p.changed)
	p.changed = make(chan struct{})
	return true
}

// SetExtraDenied replaces the node's denied addresses that are not on its
// interfaces (public, advertised, NAT-mapped: what reachability discovery
// learns). Exits that render the policy into a firewall update it.
func (p *ExitPolicy) SetExtraDenied(addrs []netip.Addr) error {
	clean, err := cleanAddrs(addrs)
	if err != nil {
		return fmt.Errorf("exit policy: extra denied address: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.extra = clean
	p.publishLocked()
	return nil
}

// RefreshInterfaceAddrs re-reads the host's interface addresses (when
// the policy was built with InterfaceAddrs) and reports whether the denied
// own addresses changed. A failed read keeps the previous addresses.
func (p *ExitPolicy) RefreshInterfaceAddrs() (bool, error) {
	if p.listAddrs == nil {
		return false, nil
	}
	addrs, err := p.listAddrs()
	if err != nil {
		return false, fmt.Errorf("exit policy: list interface addresses: %w", err)
	}
	clean, err := cleanAddrs(addrs)
	if err != nil {
		return false, fmt.Errorf("exit policy: interface address: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.iface = clean
	return p.publishLocked(), nil
}

// WatchInterfaceAddrs calls RefreshInterfaceAddrs every interval
// (DefaultAddrPollInterval if 0) until ctx ends; it returns at once when
// the policy does not deny interface addresses. Read errors go to log
// (nil: slog.Default()). The caller owns the goroutine it runs in.
func (p *ExitPolicy) WatchInterfaceAddrs(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if p.listAddrs == nil {
		return
	}
	interval = defaults.Positive(interval, DefaultAddrPollInterval)
	log = cmp.Or(log, slog.Default())
	tick.Every(ctx, interval, func(context.Context) {
		changed, err := p.RefreshInterfaceAddrs()
		if err != nil {
			log.Warn("exit policy: re-read interface addresses", "err", err)
		} else if changed {
			log.Info("exit policy: the node's addresses changed", "own", fmt.Sprint(p.OwnAddrs()))
		}
	})
}

// Changed returns a channel that is closed the next time the denied own
// addresses change (RefreshInterfaceAddrs, SetExtraDenied). Take it
// before reading OwnAddrs or DenyPrefixes so no change is missed.
func (p *ExitPolicy) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// OwnAddrs returns the currently denied own addresses, sorted.
func (p *ExitPolicy) OwnAddrs() []netip.Addr {
	return slices.Clone(p.own.Load().sorted)
}

// DefaultExitPolicy is the policy a node runs with when the operator set
// nothing: the default deny list plus the host's interface addresses.
func DefaultExitPolicy() (*ExitPolicy, error) {
	return NewExitPolicy(PolicyConfig{InterfaceAddrs: true})
}

func unmap(a netip.Addr) netip.Addr {
	if a.Is4In6() {
		return a.Unmap()
	}
	return a
}

// Check returns nil if dst over proto may be reached, or an error wrapping
// ErrBlocked with the reason. It does not count; see Allowed.
func (p *ExitPolicy) Check(dst netip.AddrPort, proto Proto) error {
	a := unmap(dst.Addr()).WithZone("")
	dst = netip.AddrPortFrom(a, dst.Port())
	if !a.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrBlocked)
	}
	for _, r := range p.allow {
		if r.Matches(dst, proto) {
			return nil
		}
	}
	for _, r := range p.deny {
		if r.Matches(dst, proto) {
			return fmt.Errorf("%w: %s %s matches operator deny %s", ErrBlocked, proto, dst, r)
		}
	}
	if _, ok := p.own.Load().set[a]; ok {
		return fmt.Errorf("%w: %s is the node's own address", ErrBlocked, a)
	}
	for _, pfx := range p.defaults {
		if pfx.Contains(a) {
			return fmt.Errorf("%w: %s is in %s", ErrBlocked, a, pfx)
		}
	}
	return nil
}

// Allowed reports whether dst over proto may be reached and counts a
// refusal in Blocked.
func (p *ExitPolicy) Allowed(dst netip.AddrPort, proto Proto) bool {
	if p.Check(dst, proto) != nil {
		p.blocked.Add(1)
		return false
	}
	return true
}

// CountBlocked adds one to the blocked counter; for enforcement points that
// call Check themselves (for example to log the reason).
func (p *ExitPolicy) CountBlocked() { p.blocked.Add(1) }

// Blocked returns how many attempts the policy has refused.
func (p *ExitPolicy) Blocked() uint64 { return p.blocked.Load() }

// AllowRules returns a copy of the operator allow rules (highest precedence).
func (p *ExitPolicy) AllowRules() []Rule { return append([]Rule(nil), p.allow...) }

// DenyRules returns a copy of the operator deny rules.
func (p *ExitPolicy) DenyRules() []Rule { return append([]Rule(nil), p.deny...) }

// DenyPrefixes returns every prefix denied regardless of port: the default
// list plus each current own address as a /32 or /128. A firewall renders
// these after the AllowRules and DenyRules, in that order, and renders
// them again when Changed fires.
func (p *ExitPolicy) DenyPrefixes() []netip.Prefix {
	out := append([]netip.Prefix(nil), p.defaults...)
	for _, a := range p.own.Load().sorted {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}
