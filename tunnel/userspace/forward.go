package userspace

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/proxy"
)

const copyBufSize = 64 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

func toAddr(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip.Unmap()
}

// route decides where a consumer's flow to dst goes on the host: the DNS
// upstream for the gateway's port 53, dst itself if the policy allows it,
// or an error (counted as blocked).
func (e *Exit) route(dst netip.AddrPort, proto tunnel.Proto) (netip.AddrPort, error) {
	a := dst.Addr().Unmap()
	gw := e.cfg.Gateway
	if a == gw.V4 || (gw.V6.IsValid() && a == gw.V6) {
		if dst.Port() == 53 && e.cfg.DNSUpstream.IsValid() {
			return e.cfg.DNSUpstream, nil
		}
		e.policy.CountBlocked()
		return netip.AddrPort{}, fmt.Errorf("%w: %s is the provider's tunnel address", tunnel.ErrBlocked, dst)
	}
	for _, r := range e.cfg.TunnelRanges {
		if r.Contains(a) {
			e.policy.CountBlocked()
			return netip.AddrPort{}, fmt.Errorf("%w: %s is inside the tunnel network %s", tunnel.ErrBlocked, a, r)
		}
	}
	if err := e.policy.Check(dst, proto); err != nil {
		e.policy.CountBlocked()
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, dst.Port()), nil
}

// flowOf returns the peer a new flow with id comes from (false: none, or
// the exit is closed) and the destination it is for.
func (e *Exit) flowOf(id stack.TransportEndpointID) (*peer, netip.AddrPort, bool) {
	dst := netip.AddrPortFrom(toAddr(id.LocalAddress), id.LocalPort)
	p, ok := e.peerFor(toAddr(id.RemoteAddress))
	return p, dst, ok
}

// handleTCP runs in a goroutine gVisor starts per SYN: it dials the
// destination first so a refused or blocked destination gets a RST.
func (e *Exit) handleTCP(r *tcp.ForwarderRequest) {
	p, dst, ok := e.flowOf(r.ID())
	if !ok {
		r.Complete(true)
		return
	}
	defer e.flowDone(p)
	target, err := e.route(dst, tunnel.ProtoTCP)
	if err != nil {
		e.log.Debug("tcp flow refused", "peer", p.cfg.PublicKey.String(), "err", err)
		r.Complete(true)
		return
	}
	dctx, cancel := context.WithTimeout(p.ctx, e.cfg.DialTimeout)
	out, err := e.dialer.DialContext(dctx, "tcp", target.String())
	cancel()
	if err != nil {
		e.log.Debug("tcp dial failed", "dst", target, "err", err)
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		r.Complete(true)
		out.Close()
		e.log.Debug("tcp accept in netstack failed", "dst", dst, "err", terr)
		return
	}
	r.Complete(false)
	ep.SocketOptions().SetKeepAlive(true)
	in := gonet.NewTCPConn(&wq, ep)
	spliceTCP(p.ctx, in, out, p.up, p.down)
}

// spliceTCP copies both ways until both directions end or ctx is done,
// propagating half-closes, then closes both connections; in to out is
// paced by up, out to in by down.
func spliceTCP(ctx context.Context, in, out net.Conn, up, down *rate.Limiter) {
	proxy.Splice(ctx, in, out, limitedCopy(ctx, up), limitedCopy(ctx, down))
}

// limitedCopy is a proxy.CopyFunc of copyLimited.
func limitedCopy(ctx context.Context, lim *rate.Limiter) proxy.CopyFunc {
	return func(dst io.Writer, src io.Reader) error {
		_, err := copyLimited(ctx, dst, src, lim)
		return err
	}
}

// copyLimited copies src to dst, paced by lim when it is not nil.
func copyLimited(ctx context.Context, dst io.Writer, src io.Reader, lim *rate.Limiter) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if lim != nil {
				if err := lim.WaitN(ctx, n); err != nil {
					return total, err
				}
			}
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// handleUDP runs on the stack's receive path for the first datagram of a
// flow; it must not block.
func (e *Exit) handleUDP(r *udp.ForwarderRequest) {
	p, dst, ok := e.flowOf(r.ID())
	if !ok {
		return
	}
	target, err := e.route(dst, tunnel.ProtoUDP)
	if err != nil {
		e.flowDone(p)
		e.log.Debug("udp flow refused", "peer", p.cfg.PublicKey.String(), "err", err)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		e.flowDone(p)
		e.log.Debug("udp endpoint failed", "dst", dst, "err", terr)
		return
	}
	in := gonet.NewUDPConn(&wq, ep)
	go func() {
		defer e.flowDone(p)
		e.relayUDP(p, in, target)
	}()
}

// relayUDP forwards datagrams between the consumer's flow and a host UDP
// socket until the flow is idle for UDPIdleTimeout or the peer goes away.
func (e *Exit) relayUDP(p *peer, in net.Conn, target netip.AddrPort) {
	defer in.Close()
	dctx, cancel := context.WithTimeout(p.ctx, e.cfg.DialTimeout)
	out, err := e.dialer.DialContext(dctx, "udp", target.String())
	cancel()
	if err != nil {
		e.log.Debug("udp dial failed", "dst", target, "err", err)
		return
	}
	defer out.Close()
	stop := context.AfterFunc(p.ctx, func() {
		in.Close()
		out.Close()
	})
	defer stop()
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	idle := e.cfg.UDPIdleTimeout
	var wg sync.WaitGroup
	pump := func(dst, src net.Conn, lim *rate.Limiter) {
		defer wg.Done()
		defer in.Close()
		defer out.Close()
		buf := make([]byte, 65535)
		for {
			src.SetReadDeadline(time.Now().Add(idle))
			n, err := src.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
					continue
				}
				return
			}
			last.Store(time.Now().UnixNano())
			if lim != nil && lim.WaitN(p.ctx, n) != nil {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go pump(out, in, p.up)
	go pump(in, out, p.down)
	wg.Wait()
}

// hostResolver returns the first nameserver of a resolv.conf file.
func hostResolver(path string) (netip.AddrPort, error) {
	f, err := os.Open(path)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("host resolver: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			a, err := netip.ParseAddr(fields[1])
			if err != nil {
				continue
			}
			return netip.AddrPortFrom(a.WithZone(""), 53), nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("host resolver: no nameserver in %s", path)
}
