package userspace

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// boundBind is a wireguard-go conn.Bind on one specific local address
// (wireguard-go's standard bind always listens on every address). It moves
// one datagram per call, so it is slower than the standard bind; the exit
// uses it only when ExitConfig.ListenAddr names an address, as tests do
// with 127.0.0.1.
type boundBind struct {
	addr netip.Addr

	mu sync.Mutex
	pc *net.UDPConn
}

var _ conn.Bind = (*boundBind)(nil)

func newBoundBind(addr netip.Addr) *boundBind { return &boundBind{addr: addr} }

// Open implements conn.Bind.
func (b *boundBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pc != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	network := "udp4"
	if b.addr.Is6() {
		network = "udp6"
	}
	pc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.addr, port)))
	if err != nil {
		return nil, 0, fmt.Errorf("bind %s port %d: %w", b.addr, port, err)
	}
	// Larger socket buffers absorb bursts; failures only cost throughput.
	pc.SetReadBuffer(4 << 20)
	pc.SetWriteBuffer(4 << 20)
	b.pc = pc
	recv := func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n, ap, err := pc.ReadFromUDPAddrPort(packets[0])
		if err != nil {
			return 0, err
		}
		sizes[0] = n
		eps[0] = &conn.StdNetEndpoint{AddrPort: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
		return 1, nil
	}
	return []conn.ReceiveFunc{recv}, uint16(pc.LocalAddr().(*net.UDPAddr).Port), nil
}

// Close implements conn.Bind.
func (b *boundBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pc == nil {
		return nil
	}
	err := b.pc.Close()
	b.pc = nil
	return err
}

// SetMark implements conn.Bind.
func (b *boundBind) SetMark(uint32) error { return nil }

// Send implements conn.Bind.
func (b *boundBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	b.mu.Lock()
	pc := b.pc
	b.mu.Unlock()
	if pc == nil {
		return net.ErrClosed
	}
	se, ok := ep.(*conn.StdNetEndpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	var errs []error
	for _, buf := range bufs {
		if _, err := pc.WriteToUDPAddrPort(buf, se.AddrPort); err != nil {
			errs = append(errs, err)
			break
		}
	}
	return errors.Join(errs...)
}

// ParseEndpoint implements conn.Bind.
func (b *boundBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return &conn.StdNetEndpoint{AddrPort: ap}, nil
}

// BatchSize implements conn.Bind.
func (b *boundBind) BatchSize() int { return 1 }
