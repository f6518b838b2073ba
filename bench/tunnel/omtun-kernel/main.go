// Command omtun-kernel runs an openmyst kernel-mode exit or client for the
// tunnel benchmark (bench/tunnel/run.sh). It prints READY once the tunnel
// is up and tears everything down on SIGTERM or SIGINT.
//
//	omtun-kernel exit   -key K -port P [-peer PUB -peer-ip A] [-idle-peers N] [-offload]
//	omtun-kernel client -key K -peer PUB -endpoint HOST:PORT -addr A/32
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/kernel"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: omtun-kernel exit|client [flags]")
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
		fmt.Fprintln(os.Stderr, "omtun-kernel:", err)
		os.Exit(1)
	}
}

func runExit(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("exit", flag.ContinueOnError)
	key := fs.String("key", "", "device private key (base64)")
	port := fs.Uint("port", 51820, "UDP listen port")
	peer := fs.String("peer", "", "consumer public key (base64)")
	peerIP := fs.String("peer-ip", "10.182.0.2", "consumer tunnel address")
	idle := fs.Int("idle-peers", 0, "extra idle peers to add (memory measurement)")
	offload := fs.Bool("offload", false, "add the nftables flowtable (ExitConfig.FlowOffload)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	priv, err := tunnel.ParsePrivateKey(*key)
	if err != nil {
		return err
	}
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		return err
	}
	e, err := kernel.NewExit(ctx, kernel.ExitConfig{PrivateKey: priv, ListenPort: uint16(*port), Pool: pool, FlowOffload: *offload, Log: log})
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
	c, err := kernel.Connect(ctx, kernel.ClientConfig{
		Session: tunnel.SessionConfig{
			PrivateKey: priv, Addresses: []netip.Prefix{a}, PeerPublicKey: pub, Endpoint: ep,
			AllowedIPs: tunnel.FullTunnel(), PersistentKeepalive: tunnel.DefaultKeepalive,
		},
		Log: log,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("READY")
	<-ctx.Done()
	return c.Close()
}
