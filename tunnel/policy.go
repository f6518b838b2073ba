package tunnel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
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
	// InterfaceAddrs adds every address of the host's interfaces to
	// OwnAddrs when the policy is built (what a real node wants).
	InterfaceAddrs bool
	// NoDefaults drops DefaultDenyPrefixes. Only for lab setups.
	NoDefaults bool
}

// ExitPolicy decides which destinations a consumer's traffic may reach
// from the exit. Evaluation order: Allow rules (first match allows), then
// Deny rules, own addresses and the default deny list (any match blocks),
// then allow. It is safe for concurrent use.
type ExitPolicy struct {
	allow    []Rule
	deny     []Rule
	own      []netip.Addr
	defaults []netip.Prefix
	blocked  atomic.Uint64
}

// NewExitPolicy builds a policy from cfg.
func NewExitPolicy(cfg PolicyConfig) (*ExitPolicy, error) {
	p := &ExitPolicy{
		allow: append([]Rule(nil), cfg.Allow...),
		deny:  append([]Rule(nil), cfg.Deny...),
	}
	if !cfg.NoDefaults {
		p.defaults = DefaultDenyPrefixes()
	}
	for _, a := range cfg.OwnAddrs {
		if !a.IsValid() {
			return nil, fmt.Errorf("exit policy: invalid own address")
		}
		p.own = append(p.own, unmap(a).WithZone(""))
	}
	if cfg.InterfaceAddrs {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, fmt.Errorf("exit policy: list interface addresses: %w", err)
		}
		for _, ia := range addrs {
			if ipn, ok := ia.(*net.IPNet); ok {
				if a, ok := netip.AddrFromSlice(ipn.IP); ok {
					p.own = append(p.own, unmap(a))
				}
			}
		}
	}
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
	for _, o := range p.own {
		if o == a {
			return fmt.Errorf("%w: %s is the node's own address", ErrBlocked, a)
		}
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
// list plus each own address as a /32 or /128. A firewall renders these
// after the AllowRules and DenyRules, in that order.
func (p *ExitPolicy) DenyPrefixes() []netip.Prefix {
	out := append([]netip.Prefix(nil), p.defaults...)
	for _, a := range p.own {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}
