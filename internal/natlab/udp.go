package natlab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// ListenUDP opens a UDP socket inside the host's namespace on port (0 for
// any) and all its addresses. The socket stays in that namespace whatever
// goroutine uses it; the caller closes it.
func (h *Host) ListenUDP(port uint16) (*net.UDPConn, error) {
	var conn *net.UDPConn
	err := h.NS.Do(func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: int(port)})
		conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natlab: listen udp in %s: %w", h.NS.Name(), err)
	}
	return conn, nil
}

// Listen opens a TCP listener inside the host's namespace.
func (h *Host) Listen(port uint16) (net.Listener, error) {
	var ln net.Listener
	err := h.NS.Do(func() error {
		l, err := net.Listen("tcp4", fmt.Sprintf(":%d", port))
		ln = l
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natlab: listen tcp in %s: %w", h.NS.Name(), err)
	}
	return ln, nil
}

// DialTCP connects from inside the host's namespace.
func (h *Host) DialTCP(to netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := h.NS.Do(func() error {
		c, err := net.DialTimeout("tcp4", to.String(), timeout)
		conn = c
		return err
	})
	return conn, err
}

// Reflector is a UDP server that answers every datagram with the source
// address and port it saw, in text ("ip:port"): the smallest STUN-like
// service, for checking what a NAT does.
type Reflector struct {
	conn *net.UDPConn
	done chan struct{}
}

// StartReflector runs a Reflector in h on port until Close.
func (h *Host) StartReflector(port uint16) (*Reflector, error) {
	c, err := h.ListenUDP(port)
	if err != nil {
		return nil, err
	}
	r := &Reflector{conn: c, done: make(chan struct{})}
	go r.serve()
	return r, nil
}

func (r *Reflector) serve() {
	defer close(r.done)
	buf := make([]byte, 1500)
	for {
		_, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		_, _ = r.conn.WriteToUDPAddrPort([]byte(from.String()), from)
	}
}

// Close stops the reflector and waits for it.
func (r *Reflector) Close() error {
	err := r.conn.Close()
	<-r.done
	return err
}

// ErrNoReply is returned by Reflect when no answer came in time.
var ErrNoReply = errors.New("natlab: no reply")

// Reflect sends one datagram from conn to a Reflector at to and returns
// the source address the reflector saw (the mapping the NAT gave conn for
// that destination). It tries a few times within timeout.
func Reflect(conn *net.UDPConn, to netip.AddrPort, timeout time.Duration) (netip.AddrPort, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 128)
	for time.Now().Before(deadline) {
		if _, err := conn.WriteToUDPAddrPort([]byte("?"), to); err != nil {
			return netip.AddrPort{}, fmt.Errorf("natlab: reflect to %s: %w", to, err)
		}
		wait := min(200*time.Millisecond, time.Until(deadline))
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return netip.AddrPort{}, fmt.Errorf("natlab: reflect from %s: %w", to, err)
		}
		if from.Addr().Unmap() != to.Addr() || from.Port() != to.Port() {
			continue
		}
		ap, err := netip.ParseAddrPort(string(buf[:n]))
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("natlab: reflector answer %q: %w", buf[:n], err)
		}
		return ap, nil
	}
	return netip.AddrPort{}, ErrNoReply
}
