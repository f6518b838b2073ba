package ice

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// Bind is a wireguard-go conn.Bind whose endpoints are ICE connections,
// one per peer, instead of UDP addresses: WireGuard sends a peer's
// datagrams over the candidate pair ICE selected for it (direct or through
// a relay) and receives from all of them. Add a connection with Add and
// configure the peer's endpoint as the returned name.
type Bind struct {
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

// endpointPrefix marks an ICE endpoint in WireGuard's configuration.
const endpointPrefix = "ice:"

// NewBind returns an empty Bind.
func NewBind() *Bind {
	return &Bind{conns: make(map[string]*bindConn), recv: make(chan packet, 256), stop: make(chan struct{})}
}

// Add carries the peer's datagrams over c and returns the endpoint string
// to configure for the peer ("ice:<id>"). id is a short name without
// spaces or newlines, unique among the Bind's connections. Datagrams read
// from c reach WireGuard until Remove or until c fails.
func (b *Bind) Add(id string, c net.Conn) (string, error) {
	if id == "" || strings.ContainsAny(id, " \n=") || len(id) > 64 {
		return "", fmt.Errorf("ice: bind id %q", id)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.conns[id]; ok {
		return "", fmt.Errorf("ice: bind id %q is in use", id)
	}
	bc := &bindConn{name: id, c: c, done: make(chan struct{})}
	b.conns[id] = bc
	go b.read(bc)
	return endpointPrefix + id, nil
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

// Open implements conn.Bind. The port is meaningless for ICE endpoints
// and reported as 0.
func (b *Bind) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
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
	return []conn.ReceiveFunc{fn}, 0, nil
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
	return nil
}

// SetMark implements conn.Bind; ICE sockets are not marked.
func (b *Bind) SetMark(uint32) error { return nil }

// BatchSize implements conn.Bind.
func (b *Bind) BatchSize() int { return 1 }

// ErrUnknownEndpoint is returned for an endpoint whose connection is gone.
var ErrUnknownEndpoint = errors.New("ice: no connection for endpoint")

// Send implements conn.Bind.
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(Endpoint)
	if !ok {
		return fmt.Errorf("ice: endpoint %T is not an ICE endpoint", ep)
	}
	b.mu.Lock()
	bc := b.conns[e.id]
	b.mu.Unlock()
	if bc == nil {
		return fmt.Errorf("%w %q", ErrUnknownEndpoint, e.id)
	}
	for _, buf := range bufs {
		if _, err := bc.c.Write(buf); err != nil {
			return fmt.Errorf("ice: send to %q: %w", e.id, err)
		}
	}
	return nil
}

// ParseEndpoint implements conn.Bind: "ice:<id>".
func (b *Bind) ParseEndpoint(s string) (conn.Endpoint, error) {
	id, ok := strings.CutPrefix(s, endpointPrefix)
	if !ok || id == "" {
		return nil, fmt.Errorf("ice: endpoint %q is not ice:<id>", s)
	}
	return Endpoint{id: id}, nil
}

// Endpoint is an ICE connection as a WireGuard endpoint.
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

// DstIP implements conn.Endpoint; an ICE endpoint has no single address.
func (Endpoint) DstIP() netip.Addr { return netip.Addr{} }

// SrcIP implements conn.Endpoint.
func (Endpoint) SrcIP() netip.Addr { return netip.Addr{} }
