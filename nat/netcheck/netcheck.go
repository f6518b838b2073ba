// Package netcheck finds a node's public UDP address and its NAT's
// mapping behaviour with STUN, as Tailscale's netcheck does: one UDP
// socket sends a Binding request to each of the network's STUN servers;
// when two servers (two destinations) see the same public address and
// port, the NAT maps endpoint-independently (hole punching works);
// different ports mean endpoint-dependent ("symmetric", hard) mapping;
// the local address itself means no NAT; no answer at all means UDP is
// blocked.
package netcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/pion/stun/v3"

	"github.com/openmyst/openmyst/nat/addrs"
)

// Mapping behaviours.
const (
	None                = "none"
	EndpointIndependent = "endpoint-independent"
	EndpointDependent   = "endpoint-dependent"
	UDPBlocked          = "udp-blocked"
	Unknown             = "unknown"
)

// Limits.
const (
	// MaxServers is the most servers one check asks.
	MaxServers = 8
	// DefaultTimeout bounds a check.
	DefaultTimeout = 3 * time.Second
	// retransmit is the Binding request's resend period.
	retransmit = 500 * time.Millisecond
)

// Answer is one server's view of the socket.
type Answer struct {
	// Server is the server's address.
	Server netip.AddrPort
	// Mapped is the public address the server saw (invalid: no answer).
	Mapped netip.AddrPort
}

// Result is a check's outcome.
type Result struct {
	// Behavior is None, EndpointIndependent, EndpointDependent,
	// UDPBlocked or Unknown (one server answered: the public address is
	// known, the behaviour is not).
	Behavior string
	// Public is the first answer's mapped address.
	Public netip.AddrPort
	// Answers has one entry per server asked.
	Answers []Answer
	// At is when the check ended.
	At time.Time
}

// Config configures a check.
type Config struct {
	// Servers are STUN servers as host:port (IP addresses or names);
	// at most MaxServers are asked.
	Servers []string
	// AllowPrivate lets loopback and private server addresses be asked
	// (devnets).
	AllowPrivate bool
	// Timeout bounds the check (default DefaultTimeout).
	Timeout time.Duration
	// Listen is the local UDP address (default ":0", every interface).
	Listen string
	// Conn, when set, is the socket to ask from instead of one opened on
	// Listen (e.g. one inside a network namespace); the caller closes it.
	Conn net.PacketConn
}

// ServersFromURLs returns the host:port of each stun: URL and of each
// turn: URL over UDP (a TURN server answers STUN Binding requests too),
// each once.
func ServersFromURLs(urls []string) []string {
	var out []string
	for _, u := range urls {
		uri, err := stun.ParseURI(u)
		if err != nil {
			continue
		}
		switch {
		case uri.Scheme == stun.SchemeTypeSTUN,
			uri.Scheme == stun.SchemeTypeTURN && (uri.Proto == stun.ProtoTypeUDP || uri.Proto == stun.ProtoTypeUnknown):
		default:
			continue
		}
		hp := net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
		if !slices.Contains(out, hp) {
			out = append(out, hp)
		}
	}
	return out
}

// Check runs one check.
func Check(ctx context.Context, cfg Config) (Result, error) {
	if len(cfg.Servers) == 0 {
		return Result{}, errors.New("netcheck: no STUN server")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Listen == "" {
		cfg.Listen = ":0"
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var servers []netip.AddrPort
	var errs []error
	for _, s := range cfg.Servers[:min(len(cfg.Servers), MaxServers)] {
		ap, err := resolve(ctx, s)
		switch {
		case err != nil:
			errs = append(errs, err)
		case !addrs.Remote(ap.Addr(), cfg.AllowPrivate):
			errs = append(errs, fmt.Errorf("netcheck: server %s: address %s refused", s, ap.Addr()))
		case !slices.Contains(servers, ap):
			servers = append(servers, ap)
		}
	}
	if len(servers) == 0 {
		return Result{}, fmt.Errorf("netcheck: no usable STUN server: %w", errors.Join(errs...))
	}
	pc := cfg.Conn
	if pc == nil {
		c, err := net.ListenPacket("udp", cfg.Listen)
		if err != nil {
			return Result{}, fmt.Errorf("netcheck: %w", err)
		}
		defer c.Close()
		pc = c
	} else {
		defer pc.SetReadDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer stop()

	res := Result{Answers: make([]Answer, len(servers))}
	txs := make([]stun.Message, len(servers))
	for i, s := range servers {
		res.Answers[i].Server = s
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest)
		if err != nil {
			return Result{}, fmt.Errorf("netcheck: %w", err)
		}
		txs[i] = *m
	}
	send := func() {
		for i, s := range servers {
			if !res.Answers[i].Mapped.IsValid() {
				_, _ = pc.WriteTo(txs[i].Raw, net.UDPAddrFromAddrPort(s))
			}
		}
	}
	send()
	next := time.Now().Add(retransmit)
	buf := make([]byte, 1500)
	for answered := 0; answered < len(servers) && ctx.Err() == nil; {
		_ = pc.SetReadDeadline(next)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				send()
				next = time.Now().Add(retransmit)
				continue
			}
			break
		}
		i, mapped, ok := match(buf[:n], from, servers, txs)
		if !ok || res.Answers[i].Mapped.IsValid() {
			continue
		}
		res.Answers[i].Mapped = mapped
		answered++
	}
	res.At = time.Now()
	local := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	res.Behavior, res.Public = classify(res.Answers, local.Port(), localIPs())
	return res, nil
}

// match decodes a Binding success from from and returns the index of the
// server and transaction it answers and the mapped address.
func match(b []byte, from net.Addr, servers []netip.AddrPort, txs []stun.Message) (int, netip.AddrPort, bool) {
	if !stun.IsMessage(b) {
		return 0, netip.AddrPort{}, false
	}
	var m stun.Message
	m.Raw = append([]byte(nil), b...)
	if err := m.Decode(); err != nil || m.Type != stun.BindingSuccess {
		return 0, netip.AddrPort{}, false
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return 0, netip.AddrPort{}, false
	}
	src := ua.AddrPort()
	for i, s := range servers {
		if s.Addr().Unmap() != src.Addr().Unmap() || s.Port() != src.Port() || txs[i].TransactionID != m.TransactionID {
			continue
		}
		var xa stun.XORMappedAddress
		if err := xa.GetFrom(&m); err != nil {
			return 0, netip.AddrPort{}, false
		}
		ip, ok := netip.AddrFromSlice(xa.IP)
		if !ok || xa.Port <= 0 || xa.Port > 65535 {
			return 0, netip.AddrPort{}, false
		}
		return i, netip.AddrPortFrom(ip.Unmap(), uint16(xa.Port)), true
	}
	return 0, netip.AddrPort{}, false
}

// classify names the mapping behaviour from the answers, the socket's
// local port and the host's own addresses.
func classify(answers []Answer, localPort uint16, local []netip.Addr) (string, netip.AddrPort) {
	var mapped []netip.AddrPort
	for _, a := range answers {
		if a.Mapped.IsValid() {
			mapped = append(mapped, a.Mapped)
		}
	}
	switch {
	case len(mapped) == 0:
		return UDPBlocked, netip.AddrPort{}
	case mapped[0].Port() == localPort && slices.Contains(local, mapped[0].Addr()):
		return None, mapped[0]
	case len(mapped) == 1:
		return Unknown, mapped[0]
	}
	for _, m := range mapped[1:] {
		if m != mapped[0] {
			return EndpointDependent, mapped[0]
		}
	}
	return EndpointIndependent, mapped[0]
}

func localIPs() []netip.Addr {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

func resolve(ctx context.Context, hostport string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("netcheck: server %q: %w", hostport, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("netcheck: server %q: bad port", hostport)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("netcheck: resolve %q: %w", host, err)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(p)), nil
}
