package punch

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Conn is a punched path: one local socket and the peer's public address
// and port. It is a net.Conn whose every Read returns one datagram from
// the peer and every Write sends one (as tunnel/connbind needs). Punch
// packets are handled inside it: the peer's pings are answered, and when
// nothing was sent for LostAfter/4 a keepalive ping goes out, so the NAT
// mappings stay open and a silent path is noticed (Lost).
type Conn struct {
	c      *net.UDPConn
	remote netip.AddrPort
	raddr  *net.UDPAddr
	key    Key
	role   byte
	port   uint16
	after  time.Duration
	log    *slog.Logger

	answers  *rate.Limiter
	lastRecv atomic.Int64 // unix nanoseconds
	lastSend atomic.Int64

	lost      chan struct{}
	lostOnce  sync.Once
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ net.Conn = (*Conn)(nil)

func newConn(c *net.UDPConn, remote netip.AddrPort, key Key, role byte, cfg Config) *Conn {
	pc := &Conn{
		c: c, remote: remote, raddr: net.UDPAddrFromAddrPort(remote), key: key, role: role,
		port: c.LocalAddr().(*net.UDPAddr).AddrPort().Port(), after: cfg.LostAfter, log: cfg.Logger,
		answers: rate.NewLimiter(answerRate, answerBurst),
		lost:    make(chan struct{}), done: make(chan struct{}),
	}
	now := time.Now().UnixNano()
	pc.lastRecv.Store(now)
	pc.lastSend.Store(now)
	pc.wg.Add(1)
	go pc.keepalive()
	return pc
}

func (c *Conn) peerRole() byte { return 1 - c.role }

// keepalive pings the peer when nothing was sent for LostAfter/4 and
// declares the path lost when nothing came back for LostAfter.
func (c *Conn) keepalive() {
	defer c.wg.Done()
	every := max(c.after/4, 10*time.Millisecond)
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			if now.Sub(time.Unix(0, c.lastRecv.Load())) > c.after {
				c.lostOnce.Do(func() {
					c.log.Warn("punch: path lost", "remote", c.remote, "silent_for", c.after)
					close(c.lost)
				})
			}
			if now.Sub(time.Unix(0, c.lastSend.Load())) >= every {
				c.send(packet{kind: kindPing, role: c.role, txid: txid(c.key, c.role, false, c.port, c.remote)})
			}
		}
	}
}

func (c *Conn) send(p packet) {
	if _, err := c.c.WriteToUDPAddrPort(p.encode(c.key), c.remote); err == nil {
		c.lastSend.Store(time.Now().UnixNano())
	}
}

// Read reads the next datagram from the peer. Datagrams from any other
// address are dropped; punch packets are handled (a ping answered) and
// not returned.
func (c *Conn) Read(b []byte) (int, error) {
	for {
		n, from, err := c.c.ReadFromUDPAddrPort(b)
		if err != nil {
			return 0, err
		}
		if from.Addr().Unmap() != c.remote.Addr() || from.Port() != c.remote.Port() {
			continue
		}
		if isPunch(b[:n]) {
			p, err := decode(b[:n], c.key, c.peerRole())
			if err != nil {
				continue
			}
			c.lastRecv.Store(time.Now().UnixNano())
			if p.kind != kindPong && c.answers.Allow() {
				c.send(packet{kind: kindPong, role: c.role, txid: p.txid})
			}
			continue
		}
		c.lastRecv.Store(time.Now().UnixNano())
		return n, nil
	}
}

// Write sends b as one datagram to the peer.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.c.WriteToUDPAddrPort(b, c.remote)
	if err == nil {
		c.lastSend.Store(time.Now().UnixNano())
	}
	return n, err
}

// Lost is closed when the path received nothing — no datagram, no answer
// to the keepalive pings — for Config.LostAfter. It is not closed by
// Close.
func (c *Conn) Lost() <-chan struct{} { return c.lost }

// Remote is the peer's public address and port the path sends to.
func (c *Conn) Remote() netip.AddrPort { return c.remote }

// Close stops the keepalives and closes the socket.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.done)
		c.wg.Wait()
		err = c.c.Close()
	})
	return err
}

// LocalAddr is the local socket's address.
func (c *Conn) LocalAddr() net.Addr { return c.c.LocalAddr() }

// RemoteAddr is the peer's public address.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the socket's read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// SetReadDeadline sets the socket's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// SetWriteDeadline sets the socket's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.c.SetWriteDeadline(t) }
