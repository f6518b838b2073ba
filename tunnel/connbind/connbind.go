// Package connbind is a wireguard-go conn.Bind that carries some peers'
// datagrams over connections of their own — an ICE connection through a
// NAT or a TURN relay (nat/ice) — and every other peer's over an inner
// Bind such as wireguard-go's UDP socket. A provider's exit serves
// consumers that reach it directly and consumers behind NATs on one
// WireGuard device.
package connbind

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// Bind is a conn.Bind whose endpoints are either connections added with
// Add (one per peer: WireGuard sends that peer's datagrams over it and
// receives from it) or the inner Bind's endpoints. Configure a peer's
// endpoint as the string Add returns.
type Bind struct {
	inner conn.Bind // nil: connections only

	mu     sync.Mutex
	conns  map[string]*bindConn
	recv   chan packet
	closed chan struct{} // of the current Open; nil while closed
	stop   chan struct{} // closed when the Bind is discarded
}

type bindConn struct {
	name string
	c    net.Conn
	done chan struct{}
}

type packet struct {
	b  []byte
	ep Endpoint
}

var _ conn.Bind = (*Bind)(nil)

// endpointPrefix marks a connection endpoint in WireGuard's configuration.
const endpointPrefix = "conn:"

// EndpointOf is the endpoint string of the connection added as id.
func EndpointOf(id string) string { return endpointPrefix + id }

// New returns a Bind with no connections, delegating every other endpoint
// to inner (nil for none).
func New(inner conn.Bind) *Bind {
	return &Bind{inner: inner, conns: make(map[string]*bindConn), recv: make(chan packet, 256), stop: make(chan struct{})}
}

// Add carries the peer's datagrams over c and returns the endpoint string
// to configure for the peer ("conn:<id>"). c must keep datagram
// boundaries (one Read returns one Write), as ICE and UDP connections do. id is a short name without
// spaces or newlines, unique among the Bind's connections. Datagrams read
// from c reach WireGuard until Remove or until c fails.
func (b *Bind) Add(id string, c net.Conn) (string, error) {
	if id == "" || strings.ContainsAny(id, " \n=") || len(id) > 64 {
		return "", fmt.Errorf("connbind: id %q", id)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.conns[id]; ok {
		return "", fmt.Errorf("connbind: id %q is in use", id)
	}
	bc := &bindConn{name: id, c: c, done: make(chan struct{})}
	b.conns[id] = bc
	go b.read(bc)
	return EndpointOf(id), nil
}

// Remove stops carrying id's datagrams and closes its connection.
func (b *Bind) Remove(id string) {
	b.mu.Lock()
	bc, ok := b.conns[id]
	delete(b.conns, id)
	b.mu.Unlock()
	if ok {
		bc.c.Close()
		<-bc.done
	}
}

// Shutdown removes every connection; the Bind is not usable afterwards.
func (b *Bind) Shutdown() {
	b.mu.Lock()
	ids := make([]string, 0, len(b.conns))
	for id := range b.conns {
		ids = append(ids, id)
	}
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.mu.Unlock()
	for _, id := range ids {
		b.Remove(id)
	}
}

func (b *Bind) read(bc *bindConn) {
	defer close(bc.done)
	ep := Endpoint{id: bc.name}
	for {
		buf := make([]byte, 1<<16)
		n, err := bc.c.Read(buf)
		if err != nil {
			b.mu.Lock()
			if b.conns[bc.name] == bc {
				delete(b.conns, bc.name)
			}
			b.mu.Unlock()
			return
		}
		select {
		case b.recv <- packet{b: buf[:n], ep: ep}:
		case <-b.stop:
			return
		}
	}
}

// Open implements conn.Bind: it opens the inner Bind on port, and adds
// the receive function of the connections.
func (b *Bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	var fns []conn.ReceiveFunc
	var actual uint16
	if b.inner != nil {
		var err error
		fns, actual, err = b.inner.Open(port)
		if err != nil {
			return nil, 0, err
		}
	}
	closed := make(chan struct{})
	b.closed = closed
	fn := func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		select {
		case p := <-b.recv:
			sizes[0] = copy(bufs[0], p.b)
			eps[0] = p.ep
			return 1, nil
		case <-closed:
			return 0, net.ErrClosed
		case <-b.stop:
			return 0, net.ErrClosed
		}
	}
	return append(fns, fn), actual, nil
}

// Close implements conn.Bind: the receive functions return net.ErrClosed.
// Connections stay (WireGuard closes and reopens its Bind on changes).
func (b *Bind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed != nil {
		close(b.closed)
		b.closed = nil
	}
	if b.inner != nil {
		return b.inner.Close()
	}
	return nil
}

// SetMark implements conn.Bind for the inner Bind's sockets.
func (b *Bind) SetMark(mark uint32) error {
	if b.inner != nil {
		return b.inner.SetMark(mark)
	}
	return nil
}

// BatchSize implements conn.Bind: the inner Bind's (the connections'
// receive function fills one buffer a call).
func (b *Bind) BatchSize() int {
	if b.inner != nil {
		return b.inner.BatchSize()
	}
	return 1
}

// ErrUnknownEndpoint is returned for an endpoint whose connection is gone.
var ErrUnknownEndpoint = errors.New("connbind: no connection for endpoint")

// Send implements conn.Bind.
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(Endpoint)
	if !ok {
		if b.inner == nil {
			return fmt.Errorf("connbind: endpoint %T is not a connection", ep)
		}
		return b.inner.Send(bufs, ep)
	}
	b.mu.Lock()
	bc := b.conns[e.id]
	b.mu.Unlock()
	if bc == nil {
		return fmt.Errorf("%w %q", ErrUnknownEndpoint, e.id)
	}
	for _, buf := range bufs {
		if _, err := bc.c.Write(buf); err != nil {
			return fmt.Errorf("connbind: send to %q: %w", e.id, err)
		}
	}
	return nil
}

// ParseEndpoint implements conn.Bind: "conn:<id>", or whatever the inner
// Bind parses.
func (b *Bind) ParseEndpoint(s string) (conn.Endpoint, error) {
	id, ok := strings.CutPrefix(s, endpointPrefix)
	if !ok {
		if b.inner == nil {
			return nil, fmt.Errorf("connbind: endpoint %q is not conn:<id>", s)
		}
		return b.inner.ParseEndpoint(s)
	}
	if id == "" {
		return nil, fmt.Errorf("connbind: endpoint %q has no id", s)
	}
	return Endpoint{id: id}, nil
}

// Endpoint is a connection as a WireGuard endpoint.
type Endpoint struct{ id string }

var _ conn.Endpoint = Endpoint{}

// ClearSrc implements conn.Endpoint.
func (Endpoint) ClearSrc() {}

// SrcToString implements conn.Endpoint.
func (Endpoint) SrcToString() string { return "" }

// DstToString implements conn.Endpoint.
func (e Endpoint) DstToString() string { return endpointPrefix + e.id }

// DstToBytes implements conn.Endpoint (the input of WireGuard's cookie MAC).
func (e Endpoint) DstToBytes() []byte { return []byte(endpointPrefix + e.id) }

// DstIP implements conn.Endpoint. A connection has no single address
// (an ICE pair's may change; a relayed one is the TURN server's, shared by
// many peers), but wireguard-go keys its handshake rate limiter (20 a
// second, applied while the device is under load) by this address: one
// address for every connection let one peer flooding handshakes starve
// every other peer on connections. Each connection gets its own address
// instead, derived from its id in 100::/64 (RFC 6666, discard-only: never
// routed, never sent to).
func (e Endpoint) DstIP() netip.Addr { return limiterAddr(e.id) }

// limiterAddr is the address DstIP gives the connection id: 100::/64
// with the interface identifier taken from the id's SHA-256.
func limiterAddr(id string) netip.Addr {
	h := sha256.Sum256([]byte(endpointPrefix + id))
	var a [16]byte
	a[0], a[1] = 0x01, 0x00 // 100::/64
	copy(a[8:], h[:8])
	return netip.AddrFrom16(a)
}

// SrcIP implements conn.Endpoint.
func (Endpoint) SrcIP() netip.Addr { return netip.Addr{} }
