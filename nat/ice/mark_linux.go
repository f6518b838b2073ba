package ice

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"github.com/pion/transport/v3"
	"github.com/pion/transport/v3/stdnet"
	"golang.org/x/sys/unix"
)

// MarkControl returns a socket Control function (net.Dialer,
// net.ListenConfig) that sets SO_MARK to mark (needs CAP_NET_ADMIN): a
// kill switch admits sockets by their mark (tunnel/kernel SocketMark for
// the agent's, PortMapMark for nat/portmap's).
func MarkControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		return setMark(c, mark)
	}
}

// setMark sets SO_MARK on the socket behind c.
func setMark(c syscall.RawConn, mark uint32) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	}); err != nil {
		return fmt.Errorf("ice: mark socket: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("ice: mark socket %#x (needs CAP_NET_ADMIN): %w", mark, serr)
	}
	return nil
}

// markedNet is pion's standard network whose every socket (host and
// server-reflexive UDP sockets, TURN clients' UDP and TCP sockets)
// carries SO_MARK mark.
type markedNet struct {
	*stdnet.Net
	lc   net.ListenConfig
	mark uint32
}

func newMarkedNet(mark uint32) (transport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("ice: network: %w", err)
	}
	return &markedNet{Net: n, lc: net.ListenConfig{Control: MarkControl(mark)}, mark: mark}, nil
}

func (n *markedNet) dialer(laddr net.Addr) *net.Dialer {
	return &net.Dialer{LocalAddr: laddr, Control: MarkControl(n.mark)}
}

// ListenPacket implements transport.Net.
func (n *markedNet) ListenPacket(network, address string) (net.PacketConn, error) {
	return n.lc.ListenPacket(context.Background(), network, address)
}

// ListenUDP implements transport.Net.
func (n *markedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	address := ""
	if laddr != nil {
		address = laddr.String()
	}
	pc, err := n.lc.ListenPacket(context.Background(), network, address)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// ListenTCP implements transport.Net.
func (n *markedNet) ListenTCP(network string, laddr *net.TCPAddr) (transport.TCPListener, error) {
	address := ""
	if laddr != nil {
		address = laddr.String()
	}
	l, err := n.lc.Listen(context.Background(), network, address)
	if err != nil {
		return nil, err
	}
	return tcpListener{l.(*net.TCPListener)}, nil
}

type tcpListener struct{ *net.TCPListener }

func (l tcpListener) AcceptTCP() (transport.TCPConn, error) { return l.TCPListener.AcceptTCP() }

// Dial implements transport.Net.
func (n *markedNet) Dial(network, address string) (net.Conn, error) {
	return n.dialer(nil).Dial(network, address)
}

// DialUDP implements transport.Net.
func (n *markedNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (transport.UDPConn, error) {
	return dialMarked[*net.UDPConn](n, network, laddr, raddr)
}

// DialTCP implements transport.Net.
func (n *markedNet) DialTCP(network string, laddr, raddr *net.TCPAddr) (transport.TCPConn, error) {
	return dialMarked[*net.TCPConn](n, network, laddr, raddr)
}

// dialMarked dials raddr from a marked socket bound to laddr (nil: any).
func dialMarked[C net.Conn, A interface {
	*net.UDPAddr | *net.TCPAddr
	net.Addr
}](n *markedNet, network string, laddr, raddr A) (C, error) {
	var la net.Addr
	if laddr != nil {
		la = laddr // not a typed nil in the interface
	}
	c, err := n.dialer(la).Dial(network, raddr.String())
	if err != nil {
		var zero C
		return zero, err
	}
	return c.(C), nil
}

// CreateDialer implements transport.Net: d's sockets are marked too.
func (n *markedNet) CreateDialer(d *net.Dialer) transport.Dialer {
	md := *d
	ctl := d.Control
	md.Control = func(network, address string, c syscall.RawConn) error {
		if ctl != nil {
			if err := ctl(network, address, c); err != nil {
				return err
			}
		}
		return setMark(c, n.mark)
	}
	return &md
}
