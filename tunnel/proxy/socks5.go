package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// handshakeTimeout bounds how long a client may take to send its greeting
// and request.
const handshakeTimeout = 10 * time.Second

// SOCKS5 is a SOCKS5 server (no authentication; CONNECT and UDP ASSOCIATE).
type SOCKS5 struct {
	s *server
}

// NewSOCKS5 returns a SOCKS5 server sending traffic through n.
func NewSOCKS5(n Network, log *slog.Logger) *SOCKS5 {
	return &SOCKS5{s: newServer(n, log)}
}

// Serve accepts connections on ln (a loopback listener) until ctx ends; it
// closes ln and all connections before returning.
func (p *SOCKS5) Serve(ctx context.Context, ln net.Listener) error {
	return p.s.serve(ctx, ln, p.handle)
}

func replyCode(err error) byte {
	var ne net.Error
	switch {
	case errors.Is(err, ErrSOCKSCommand):
		return repCmdNotSupported
	case errors.Is(err, ErrSOCKSAddressType):
		return repAtypNotSupported
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, errConnRefused):
		return repConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return repNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return repHostUnreachable
	case errors.As(err, &ne) && ne.Timeout():
		return repTTLExpired
	}
	return repGeneralFailure
}

// errConnRefused matches gVisor's "connection was refused" which does not
// wrap syscall.ECONNREFUSED.
var errConnRefused = errors.New("connection was refused")

func (p *SOCKS5) handle(ctx context.Context, c net.Conn) {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	br := bufio.NewReader(c)
	noAuth, err := ReadGreeting(br)
	if err != nil {
		p.s.log.Debug("socks5 greeting", "err", err)
		return
	}
	if !noAuth {
		c.Write([]byte{socksVersion, methodNoAcceptable})
		return
	}
	if _, err := c.Write([]byte{socksVersion, methodNoAuth}); err != nil {
		return
	}
	req, err := ReadRequest(br)
	if err != nil {
		p.s.log.Debug("socks5 request", "err", err)
		c.Write(reply(replyCode(err), Addr{}))
		return
	}
	switch req.Cmd {
	case CmdConnect:
		p.connect(ctx, c, br, req)
	case CmdUDPAssociate:
		p.associate(ctx, c, br, req)
	}
}

func (p *SOCKS5) connect(ctx context.Context, c net.Conn, br *bufio.Reader, req Request) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	out, err := p.s.net.DialContext(dctx, "tcp", req.Addr.String())
	cancel()
	if err != nil {
		p.s.log.Debug("socks5 connect failed", "dst", req.Addr.String(), "err", err)
		if errors.Is(err, syscall.ECONNREFUSED) || containsRefused(err) {
			err = errConnRefused
		}
		c.Write(reply(replyCode(err), Addr{}))
		return
	}
	defer out.Close()
	bound := Addr{}
	if ap, err := netip.ParseAddrPort(out.LocalAddr().String()); err == nil {
		bound = Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}
	}
	if _, err := c.Write(reply(repSucceeded, bound)); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	relay(ctx, &bufferedConn{Conn: c, r: br}, out)
}

func containsRefused(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == errConnRefused.Error() {
			return true
		}
	}
	return false
}

// bufferedConn reads through a bufio.Reader that may hold bytes the client
// sent right after its request.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite half-closes the underlying connection when it supports it.
func (b *bufferedConn) CloseWrite() error {
	if cw, ok := b.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return b.Conn.Close()
}

// associate runs a UDP ASSOCIATE: a relay socket on the control
// connection's local (loopback) address, datagrams to and from the tunnel,
// for as long as the control connection stays open.
func (p *SOCKS5) associate(ctx context.Context, c net.Conn, br *bufio.Reader, req Request) {
	local, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		c.Write(reply(repGeneralFailure, Addr{}))
		return
	}
	clientIP, _ := netip.AddrFromSlice(c.RemoteAddr().(*net.TCPAddr).IP)
	clientIP = clientIP.Unmap()
	rc, err := net.ListenUDP("udp", &net.UDPAddr{IP: local.IP, Port: 0})
	if err != nil {
		c.Write(reply(repGeneralFailure, Addr{}))
		return
	}
	defer rc.Close()
	bap := rc.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := c.Write(reply(repSucceeded, Addr{IP: bap.Addr().Unmap(), Port: bap.Port()})); err != nil {
		return
	}
	c.SetDeadline(time.Time{})

	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &association{p: p, ctx: actx, relay: rc, clientIP: clientIP, want: req.Addr}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.fromClient()
		cancel()
	}()
	// The association lives until the control connection closes.
	buf := make([]byte, 1)
	for {
		if _, err := br.Read(buf); err != nil {
			break
		}
	}
	cancel()
	rc.Close()
	a.closeTunnel()
	wg.Wait()
}

type association struct {
	p        *SOCKS5
	ctx      context.Context
	relay    *net.UDPConn
	clientIP netip.Addr
	want     Addr // the client's announced source; zero fields mean "any"

	mu     sync.Mutex
	client netip.AddrPort
	tun4   net.PacketConn
	tun6   net.PacketConn
	wg     sync.WaitGroup
	closed bool
}

func (a *association) acceptSource(src netip.AddrPort) bool {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if src.Addr() != a.clientIP {
		return false
	}
	if a.want.IP.IsValid() && !a.want.IP.IsUnspecified() && a.want.IP != src.Addr() {
		return false
	}
	if a.want.Port != 0 && a.want.Port != src.Port() {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.client.IsValid() {
		a.client = src
	}
	return a.client == src
}

func (a *association) fromClient() {
	buf := make([]byte, 65535)
	for {
		n, src, err := a.relay.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if !a.acceptSource(src) {
			continue
		}
		dst, payload, err := ParseUDPDatagram(buf[:n])
		if err != nil {
			a.p.s.log.Debug("socks5 udp datagram dropped", "err", err)
			continue
		}
		ip := dst.IP
		if !ip.IsValid() {
			ips, err := a.p.s.net.LookupNetIP(a.ctx, "ip", dst.Name)
			if err != nil || len(ips) == 0 {
				a.p.s.log.Debug("socks5 udp resolve failed", "name", dst.Name, "err", err)
				continue
			}
			ip = ips[0].Unmap()
		}
		pc, err := a.tunnelSocket(ip.Is4())
		if err != nil {
			a.p.s.log.Debug("socks5 udp socket", "err", err)
			continue
		}
		pc.WriteTo(payload, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, dst.Port)))
	}
}

func (a *association) tunnelSocket(v4 bool) (net.PacketConn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, net.ErrClosed
	}
	slot, network := &a.tun6, "udp6"
	if v4 {
		slot, network = &a.tun4, "udp4"
	}
	if *slot != nil {
		return *slot, nil
	}
	pc, err := a.p.s.net.ListenPacket(a.ctx, network)
	if err != nil {
		return nil, fmt.Errorf("open tunnel %s socket: %w", network, err)
	}
	*slot = pc
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.toClient(pc)
	}()
	return pc, nil
}

func (a *association) toClient(pc net.PacketConn) {
	buf := make([]byte, 65535)
	out := make([]byte, 0, 65535+22)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		ap, err := netip.ParseAddrPort(from.String())
		if err != nil {
			continue
		}
		a.mu.Lock()
		client := a.client
		a.mu.Unlock()
		if !client.IsValid() {
			continue
		}
		out = AppendUDPDatagram(out[:0], Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}, buf[:n])
		a.relay.WriteToUDPAddrPort(out, client)
	}
}

func (a *association) closeTunnel() {
	a.mu.Lock()
	a.closed = true
	for _, pc := range []net.PacketConn{a.tun4, a.tun6} {
		if pc != nil {
			pc.Close()
		}
	}
	a.mu.Unlock()
	a.wg.Wait()
}
