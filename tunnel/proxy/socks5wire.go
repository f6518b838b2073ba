package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// SOCKS5 constants (RFC 1928).
const (
	socksVersion = 5

	methodNoAuth       = 0x00
	methodNoAcceptable = 0xff

	// CmdConnect asks for a TCP connection.
	CmdConnect = 0x01
	// CmdBind asks for an inbound TCP listener (not supported).
	CmdBind = 0x02
	// CmdUDPAssociate asks for a UDP relay.
	CmdUDPAssociate = 0x03

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04

	repSucceeded          = 0x00
	repGeneralFailure     = 0x01
	repNotAllowed         = 0x02
	repNetworkUnreachable = 0x03
	repHostUnreachable    = 0x04
	repConnectionRefused  = 0x05
	repTTLExpired         = 0x06
	repCmdNotSupported    = 0x07
	repAtypNotSupported   = 0x08
)

// Errors a SOCKS5 request can be refused with; each maps to a reply code.
var (
	ErrSOCKSVersion     = errors.New("socks5: unsupported version")
	ErrSOCKSCommand     = errors.New("socks5: unsupported command")
	ErrSOCKSAddressType = errors.New("socks5: unsupported address type")
	ErrSOCKSMalformed   = errors.New("socks5: malformed message")
)

// Addr is a SOCKS5 address: an IP or a domain name, and a port.
type Addr struct {
	IP   netip.Addr // valid for IPv4/IPv6 addresses
	Name string     // set for domain names
	Port uint16
}

// String returns host:port.
func (a Addr) String() string {
	host := a.Name
	if a.IP.IsValid() {
		host = a.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(a.Port)))
}

// Request is a parsed SOCKS5 request.
type Request struct {
	Cmd  byte
	Addr Addr
}

// ReadGreeting reads the client's method selection message and reports
// whether it offers "no authentication".
func ReadGreeting(r io.Reader) (noAuth bool, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return false, fmt.Errorf("%w: greeting: %w", ErrSOCKSMalformed, err)
	}
	if hdr[0] != socksVersion {
		return false, fmt.Errorf("%w %d", ErrSOCKSVersion, hdr[0])
	}
	if hdr[1] == 0 {
		return false, fmt.Errorf("%w: greeting offers no methods", ErrSOCKSMalformed)
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return false, fmt.Errorf("%w: greeting methods: %w", ErrSOCKSMalformed, err)
	}
	for _, m := range methods {
		if m == methodNoAuth {
			return true, nil
		}
	}
	return false, nil
}

// ReadRequest reads and validates a SOCKS5 request. It rejects other
// versions, unknown commands, a nonzero reserved byte, unknown address
// types, empty domain names and, for CONNECT, port 0.
func ReadRequest(r io.Reader) (Request, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Request{}, fmt.Errorf("%w: request header: %w", ErrSOCKSMalformed, err)
	}
	if hdr[0] != socksVersion {
		return Request{}, fmt.Errorf("%w %d", ErrSOCKSVersion, hdr[0])
	}
	if hdr[2] != 0 {
		return Request{}, fmt.Errorf("%w: reserved byte is %d", ErrSOCKSMalformed, hdr[2])
	}
	req := Request{Cmd: hdr[1]}
	switch req.Cmd {
	case CmdConnect, CmdUDPAssociate:
	case CmdBind:
		return req, fmt.Errorf("%w: BIND", ErrSOCKSCommand)
	default:
		return req, fmt.Errorf("%w %d", ErrSOCKSCommand, req.Cmd)
	}
	a, err := readAddr(r, hdr[3])
	if err != nil {
		return req, err
	}
	if req.Cmd == CmdConnect && a.Port == 0 {
		return req, fmt.Errorf("%w: CONNECT to port 0", ErrSOCKSMalformed)
	}
	req.Addr = a
	return req, nil
}

func readAddr(r io.Reader, atyp byte) (Addr, error) {
	var a Addr
	switch atyp {
	case atypIPv4:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return a, fmt.Errorf("%w: ipv4 address: %w", ErrSOCKSMalformed, err)
		}
		a.IP = netip.AddrFrom4(b)
	case atypIPv6:
		var b [16]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return a, fmt.Errorf("%w: ipv6 address: %w", ErrSOCKSMalformed, err)
		}
		a.IP = netip.AddrFrom16(b).Unmap()
	case atypDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return a, fmt.Errorf("%w: domain length: %w", ErrSOCKSMalformed, err)
		}
		if l[0] == 0 {
			return a, fmt.Errorf("%w: empty domain name", ErrSOCKSMalformed)
		}
		name := make([]byte, l[0])
		if _, err := io.ReadFull(r, name); err != nil {
			return a, fmt.Errorf("%w: domain name: %w", ErrSOCKSMalformed, err)
		}
		for _, c := range name {
			if c <= ' ' || c >= 0x7f {
				return a, fmt.Errorf("%w: domain name has byte 0x%02x", ErrSOCKSMalformed, c)
			}
		}
		a.Name = string(name)
		if ip, err := netip.ParseAddr(a.Name); err == nil {
			if ip.Zone() != "" {
				return a, fmt.Errorf("%w: address with a zone", ErrSOCKSMalformed)
			}
			a.IP, a.Name = ip.Unmap(), ""
		}
	default:
		return a, fmt.Errorf("%w %d", ErrSOCKSAddressType, atyp)
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return a, fmt.Errorf("%w: port: %w", ErrSOCKSMalformed, err)
	}
	a.Port = binary.BigEndian.Uint16(p[:])
	return a, nil
}

// appendAddr appends ATYP, address and port.
func appendAddr(b []byte, a Addr) []byte {
	switch {
	case a.IP.Is4():
		b = append(b, atypIPv4)
		ip := a.IP.As4()
		b = append(b, ip[:]...)
	case a.IP.Is6():
		b = append(b, atypIPv6)
		ip := a.IP.As16()
		b = append(b, ip[:]...)
	case a.Name != "" && len(a.Name) <= 255:
		b = append(b, atypDomain, byte(len(a.Name)))
		b = append(b, a.Name...)
	default:
		b = append(b, atypIPv4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(b, a.Port)
}

// reply encodes a SOCKS5 reply.
func reply(code byte, bound Addr) []byte {
	return appendAddr([]byte{socksVersion, code, 0}, bound)
}

// ParseUDPDatagram parses a SOCKS5 UDP request header (RSV RSV FRAG ATYP
// DST.ADDR DST.PORT DATA). Fragments (FRAG != 0) and nonzero reserved
// bytes are rejected.
func ParseUDPDatagram(b []byte) (Addr, []byte, error) {
	if len(b) < 4 {
		return Addr{}, nil, fmt.Errorf("%w: udp header too short", ErrSOCKSMalformed)
	}
	if b[0] != 0 || b[1] != 0 {
		return Addr{}, nil, fmt.Errorf("%w: udp reserved bytes not zero", ErrSOCKSMalformed)
	}
	if b[2] != 0 {
		return Addr{}, nil, fmt.Errorf("%w: udp fragmentation is not supported", ErrSOCKSMalformed)
	}
	r := &sliceReader{b: b[4:]}
	a, err := readAddr(r, b[3])
	if err != nil {
		return Addr{}, nil, err
	}
	if a.Port == 0 {
		return Addr{}, nil, fmt.Errorf("%w: udp to port 0", ErrSOCKSMalformed)
	}
	return a, r.b, nil
}

// AppendUDPDatagram appends a SOCKS5 UDP header for src and the payload.
func AppendUDPDatagram(b []byte, src Addr, payload []byte) []byte {
	b = append(b, 0, 0, 0)
	b = appendAddr(b, src)
	return append(b, payload...)
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
