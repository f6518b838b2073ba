// Command omtun-userspace runs an openmyst userspace-mode exit or client for
// the tunnel benchmark (bench/tunnel/run.sh). The client also runs a plain
// TCP port forwarder that goes through the client's own SOCKS5 proxy, so
// an unmodified iperf3 measures the path SOCKS5 -> netstack -> WireGuard
// -> exit netstack -> host socket. It prints READY once up and tears down
// on SIGTERM or SIGINT.
//
//	omtun-userspace exit   -key K -port P -advertise A [-peer PUB -peer-ip A] [-idle-peers N]
//	omtun-userspace client -key K -peer PUB -endpoint HOST:PORT -addr A/32 -forward LISTEN=TARGET
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/openmyst/openmyst/bench/tunnel/omtun"
	"github.com/openmyst/openmyst/tunnel/userspace"
)

func main() { omtun.Main("omtun-userspace", runExit, runClient) }

func runExit(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("exit", flag.ContinueOnError)
	f := omtun.NewExitFlags(fs)
	adv := fs.String("advertise", "127.0.0.1", "address consumers reach the port at")
	if err := fs.Parse(args); err != nil {
		return err
	}
	priv, pool, err := f.KeyAndPool()
	if err != nil {
		return err
	}
	advAddr, err := netip.ParseAddr(*adv)
	if err != nil {
		return err
	}
	v4, v6 := pool.Ranges()
	e, err := userspace.NewExit(userspace.ExitConfig{
		PrivateKey: priv, ListenPort: f.Port(), AdvertiseAddr: advAddr,
		Gateway: pool.Gateway(), TunnelRanges: []netip.Prefix{v4, v6}, Log: log,
	})
	if err != nil {
		return err
	}
	return f.Serve(ctx, e, pool)
}

func runClient(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	f := omtun.NewClientFlags(fs)
	forward := fs.String("forward", "", "LISTEN=TARGET: forward local TCP connections to TARGET through the SOCKS5 proxy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := f.Session()
	if err != nil {
		return err
	}
	listen, target, ok := strings.Cut(*forward, "=")
	if !ok {
		return errors.New("-forward LISTEN=TARGET is required")
	}
	tgt, err := netip.ParseAddrPort(target)
	if err != nil || !tgt.Addr().Is4() {
		return fmt.Errorf("-forward target %q: want IPv4:port", target)
	}
	c, err := userspace.Connect(ctx, userspace.ClientConfig{Session: s, SOCKSListen: "127.0.0.1:0", Log: log})
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	go func() { <-ctx.Done(); ln.Close() }()
	fmt.Println("READY")
	for {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := forwardViaSOCKS(ctx, conn, c.SOCKSAddr().String(), tgt); err != nil {
				log.Warn("forward", "err", err)
			}
		}()
	}
	wg.Wait()
	return c.Close()
}

// forwardViaSOCKS connects to tgt through the SOCKS5 proxy at socks (no
// authentication, CONNECT) and copies both ways until both sides are done.
func forwardViaSOCKS(ctx context.Context, in net.Conn, socks string, tgt netip.AddrPort) error {
	defer in.Close()
	var d net.Dialer
	out, err := d.DialContext(ctx, "tcp", socks)
	if err != nil {
		return err
	}
	defer out.Close()
	// Shutting down closes both connections so the copies below end.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			in.Close()
			out.Close()
		case <-done:
		}
	}()
	a4 := tgt.Addr().As4()
	req := []byte{5, 1, 0, 5, 1, 0, 1, a4[0], a4[1], a4[2], a4[3], 0, 0}
	binary.BigEndian.PutUint16(req[11:], tgt.Port())
	if _, err := out.Write(req); err != nil {
		return err
	}
	var hdr [2 + 4]byte // greeting reply, then reply header
	if _, err := io.ReadFull(out, hdr[:]); err != nil {
		return fmt.Errorf("socks5 reply: %w", err)
	}
	if hdr[0] != 5 || hdr[1] != 0 || hdr[2] != 5 || hdr[3] != 0 {
		return fmt.Errorf("socks5 refused: % x", hdr)
	}
	var skip int
	switch hdr[5] {
	case 1:
		skip = 4 + 2
	case 4:
		skip = 16 + 2
	default:
		return fmt.Errorf("socks5 reply: unexpected address type %d", hdr[5])
	}
	if _, err := io.ReadFull(out, make([]byte, skip)); err != nil {
		return fmt.Errorf("socks5 reply: %w", err)
	}
	errc := make(chan error, 2)
	pipe := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		errc <- err
	}
	go pipe(out, in)
	go pipe(in, out)
	return errors.Join(<-errc, <-errc)
}
