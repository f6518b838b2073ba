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
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/userspace"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: omtun-userspace exit|client [flags]")
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch os.Args[1] {
	case "exit":
		err = runExit(ctx, os.Args[2:], log)
	case "client":
		err = runClient(ctx, os.Args[2:], log)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "omtun-userspace:", err)
		os.Exit(1)
	}
}

func runExit(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("exit", flag.ContinueOnError)
	key := fs.String("key", "", "device private key (base64)")
	port := fs.Uint("port", 51820, "UDP listen port")
	adv := fs.String("advertise", "127.0.0.1", "address consumers reach the port at")
	peer := fs.String("peer", "", "consumer public key (base64)")
	peerIP := fs.String("peer-ip", "10.182.0.2", "consumer tunnel address")
	idle := fs.Int("idle-peers", 0, "extra idle peers to add (memory measurement)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	priv, err := tunnel.ParsePrivateKey(*key)
	if err != nil {
		return err
	}
	advAddr, err := netip.ParseAddr(*adv)
	if err != nil {
		return err
	}
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		return err
	}
	v4, v6 := pool.Ranges()
	e, err := userspace.NewExit(userspace.ExitConfig{
		PrivateKey: priv, ListenPort: uint16(*port), AdvertiseAddr: advAddr,
		Gateway: pool.Gateway(), TunnelRanges: []netip.Prefix{v4, v6}, Log: log,
	})
	if err != nil {
		return err
	}
	defer e.Close()
	if *peer != "" {
		pub, err := tunnel.ParsePublicKey(*peer)
		if err != nil {
			return err
		}
		a, err := netip.ParseAddr(*peerIP)
		if err != nil {
			return err
		}
		l := tunnel.Lease{V4: a}
		if err := pool.Reserve(l); err != nil {
			return err
		}
		if err := e.AddPeer(ctx, tunnel.PeerConfig{PublicKey: pub, AllowedIPs: l.Prefixes()}); err != nil {
			return err
		}
	}
	for range *idle {
		k, err := tunnel.GenerateKey()
		if err != nil {
			return err
		}
		l, err := pool.Allocate()
		if err != nil {
			return err
		}
		if err := e.AddPeer(ctx, tunnel.PeerConfig{PublicKey: k.PublicKey(), AllowedIPs: l.Prefixes()}); err != nil {
			return err
		}
	}
	fmt.Println("READY")
	<-ctx.Done()
	return e.Close()
}

func runClient(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	key := fs.String("key", "", "our private key (base64)")
	peer := fs.String("peer", "", "exit public key (base64)")
	endpoint := fs.String("endpoint", "", "exit UDP endpoint host:port")
	addr := fs.String("addr", "10.182.0.2/32", "our tunnel address")
	forward := fs.String("forward", "", "LISTEN=TARGET: forward local TCP connections to TARGET through the SOCKS5 proxy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	priv, err := tunnel.ParsePrivateKey(*key)
	if err != nil {
		return err
	}
	pub, err := tunnel.ParsePublicKey(*peer)
	if err != nil {
		return err
	}
	ep, err := netip.ParseAddrPort(*endpoint)
	if err != nil {
		return err
	}
	a, err := netip.ParsePrefix(*addr)
	if err != nil {
		return err
	}
	listen, target, ok := cut(*forward, "=")
	if !ok {
		return errors.New("-forward LISTEN=TARGET is required")
	}
	tgt, err := netip.ParseAddrPort(target)
	if err != nil || !tgt.Addr().Is4() {
		return fmt.Errorf("-forward target %q: want IPv4:port", target)
	}
	c, err := userspace.Connect(ctx, userspace.ClientConfig{
		Session: tunnel.SessionConfig{
			PrivateKey: priv, Addresses: []netip.Prefix{a}, PeerPublicKey: pub, Endpoint: ep,
			AllowedIPs: tunnel.FullTunnel(), PersistentKeepalive: tunnel.DefaultKeepalive,
		},
		SOCKSListen: "127.0.0.1:0",
		Log:         log,
	})
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

func cut(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
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
