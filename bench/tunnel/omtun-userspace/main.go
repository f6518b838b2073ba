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
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/net/proxy"

	"github.com/openmyst/openmyst/bench/tunnel/omtun"
	tproxy "github.com/openmyst/openmyst/tunnel/proxy"
	"github.com/openmyst/openmyst/tunnel/userspace"
)

func main() { omtun.Main("omtun-userspace", runExit, runClient) }

func runExit(ctx context.Context, args []string, log *slog.Logger) error {
	f := omtun.NewExitFlags()
	adv := f.String("advertise", "127.0.0.1", "address consumers reach the port at")
	priv, pool, err := f.ParseKeyAndPool(args)
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
	f := omtun.NewClientFlags()
	forward := f.String("forward", "", "LISTEN=TARGET: forward local TCP connections to TARGET through the SOCKS5 proxy")
	s, err := f.ParseSession(args)
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
// authentication, CONNECT; golang.org/x/net/proxy) and copies both ways
// until both sides are done; it returns the copies' errors.
func forwardViaSOCKS(ctx context.Context, in net.Conn, socks string, tgt netip.AddrPort) error {
	defer in.Close()
	d, err := proxy.SOCKS5("tcp", socks, nil, &net.Dialer{})
	if err != nil {
		return err
	}
	out, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", tgt.String())
	if err != nil {
		return fmt.Errorf("socks5: %w", err)
	}
	defer out.Close()
	// tunnel/proxy.Splice half-closes each side at EOF and closes both
	// when a copy fails or ctx ends (shutting down).
	var errs [2]error
	copyInto := func(i int) tproxy.CopyFunc {
		return func(dst io.Writer, src io.Reader) error {
			_, errs[i] = io.Copy(dst, src) // TCP to TCP: splice(2) in the kernel
			return errs[i]
		}
	}
	tproxy.Splice(ctx, in, out, copyInto(0), copyInto(1))
	return errors.Join(errs[0], errs[1])
}
