package ice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
)

// Defaults of MappedAddress: the whole exchange is bounded by
// DefaultMappedTimeout, and a request is sent at most MappedAttempts
// times (once, then again after each lost answer), so a dead server
// costs a handful of datagrams, never a storm.
const (
	DefaultMappedTimeout = 3 * time.Second
	MappedAttempts       = 3
)

// STUNTargets returns the host:port of every stun: server among servers
// (TURN servers are left out: a TURN-only network has no plain STUN
// endpoint to ask), in order. Host names are left unresolved so that the
// caller resolves them where it dials (through a tunnel, its DNS).
func STUNTargets(servers []Server) []string {
	var out []string
	for _, s := range servers {
		u, err := stun.ParseURI(s.URL)
		if err != nil || u.Scheme != stun.SchemeTypeSTUN || u.Port <= 0 || u.Port > 65535 {
			continue
		}
		out = append(out, net.JoinHostPort(u.Host, fmt.Sprint(u.Port)))
	}
	return out
}

// MappedAddress sends a STUN binding request (RFC 8489) on conn, a UDP
// connection to a STUN server, and returns the XOR-MAPPED-ADDRESS of the
// answer: the address the server saw the request come from. It gives up
// when ctx ends or after DefaultMappedTimeout, sending the request at
// most MappedAttempts times. It does not close conn.
//
// The address is that of whatever network path conn takes: dialed
// through a VPN tunnel it is the tunnel's exit as an outside host sees
// it; dialed directly, the caller's own public address.
func MappedAddress(ctx context.Context, conn net.Conn) (netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultMappedTimeout)
	defer cancel()
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("ice: build binding request: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	deadline, _ := ctx.Deadline()
	wait := time.Until(deadline) / MappedAttempts
	buf := make([]byte, 1500)
	var lastErr error
	for range MappedAttempts {
		if _, err := conn.Write(req.Raw); err != nil {
			return netip.AddrPort{}, fmt.Errorf("ice: send binding request: %w", err)
		}
		next := time.Now().Add(wait)
		for ctx.Err() == nil {
			if err := conn.SetReadDeadline(next); err != nil {
				return netip.AddrPort{}, fmt.Errorf("ice: binding request: %w", err)
			}
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					lastErr = errors.New("no answer")
					break // send again
				}
				return netip.AddrPort{}, fmt.Errorf("ice: read binding response: %w", err)
			}
			ap, err := ParseBindingResponse(buf[:n], req.TransactionID)
			if err != nil {
				lastErr = err // a stray or bad datagram: keep waiting
				continue
			}
			return ap, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return netip.AddrPort{}, fmt.Errorf("ice: binding request to %s: %w", conn.RemoteAddr(), lastErr)
}

// ParseBindingResponse decodes raw as the success response to the
// binding request with transaction id tid and returns its
// XOR-MAPPED-ADDRESS. Anything else (another transaction, an error
// response, a missing or malformed attribute, a bad fingerprint) is an
// error.
func ParseBindingResponse(raw []byte, tid [stun.TransactionIDSize]byte) (netip.AddrPort, error) {
	if !stun.IsMessage(raw) {
		return netip.AddrPort{}, errors.New("ice: not a STUN message")
	}
	m := &stun.Message{Raw: append([]byte(nil), raw...)}
	if err := m.Decode(); err != nil {
		return netip.AddrPort{}, fmt.Errorf("ice: decode STUN message: %w", err)
	}
	if m.TransactionID != tid {
		return netip.AddrPort{}, errors.New("ice: STUN message of another transaction")
	}
	if m.Type != stun.BindingSuccess {
		return netip.AddrPort{}, fmt.Errorf("ice: STUN %s instead of a binding success", m.Type)
	}
	if m.Contains(stun.AttrFingerprint) {
		if err := stun.Fingerprint.Check(m); err != nil {
			return netip.AddrPort{}, fmt.Errorf("ice: STUN fingerprint: %w", err)
		}
	}
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(m); err != nil {
		return netip.AddrPort{}, fmt.Errorf("ice: XOR-MAPPED-ADDRESS: %w", err)
	}
	ip, ok := netip.AddrFromSlice(xa.IP)
	if !ok || xa.Port <= 0 || xa.Port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("ice: XOR-MAPPED-ADDRESS %v:%d is not an address", xa.IP, xa.Port)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(xa.Port)), nil
}
