// Package omtun is what the tunnel benchmark's two commands (omtun-kernel
// and omtun-userspace, bench/tunnel/run.sh) share: the exit|client
// dispatch with signal handling, and the flags and set-up of an exit's
// peers and of a client's session, which are the same in both modes.
package omtun

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/openmyst/openmyst/tunnel"
)

// RunFunc runs one mode of a command with its arguments until ctx ends.
type RunFunc func(ctx context.Context, args []string, log *slog.Logger) error

// Main runs `name exit|client [flags]`: it calls exit or client with the
// remaining arguments and a context that ends on SIGTERM or SIGINT, and
// exits the process with status 1 on an error (2 on a usage error).
func Main(name string, exit, client RunFunc) {
	if len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "usage: %s exit|client [flags]\n", name)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch os.Args[1] {
	case "exit":
		err = exit(ctx, os.Args[2:], log)
	case "client":
		err = client(ctx, os.Args[2:], log)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		stop()
		os.Exit(1)
	}
}

// ExitFlags are the flag set of an exit, with the flags both exits take:
// -key, -port, -peer, -peer-ip and -idle-peers.
type ExitFlags struct {
	*flag.FlagSet
	key, peer, peerIP *string
	port              *uint
	idle              *int
}

// NewExitFlags is an exit's flag set with the common flags; a command
// adds its own before ParseKeyAndPool.
func NewExitFlags() *ExitFlags {
	fs := flag.NewFlagSet("exit", flag.ContinueOnError)
	return &ExitFlags{
		FlagSet: fs,
		key:     fs.String("key", "", "device private key (base64)"),
		port:    fs.Uint("port", 51820, "UDP listen port"),
		peer:    fs.String("peer", "", "consumer public key (base64)"),
		peerIP:  fs.String("peer-ip", "10.182.0.2", "consumer tunnel address"),
		idle:    fs.Int("idle-peers", 0, "extra idle peers to add (memory measurement)"),
	}
}

// ParseKeyAndPool parses args, then -key, and makes the exit's address
// pool (the default tunnel ranges).
func (f *ExitFlags) ParseKeyAndPool(args []string) (tunnel.PrivateKey, *tunnel.AddressPool, error) {
	if err := f.Parse(args); err != nil {
		return tunnel.PrivateKey{}, nil, err
	}
	priv, err := tunnel.ParsePrivateKey(*f.key)
	if err != nil {
		return tunnel.PrivateKey{}, nil, err
	}
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	return priv, pool, err
}

// Port is -port.
func (f *ExitFlags) Port() uint16 { return uint16(*f.port) }

// Exit is the part of an exit Serve needs.
type Exit interface {
	// AddPeer admits a consumer.
	AddPeer(ctx context.Context, p tunnel.PeerConfig) error
	// Close stops the exit.
	Close() error
}

// Serve adds the flags' peers to e (see AddPeers), then runs e until ctx
// ends (see Wait). It closes e either way.
func (f *ExitFlags) Serve(ctx context.Context, e Exit, pool *tunnel.AddressPool) error {
	defer e.Close()
	if err := f.AddPeers(ctx, e, pool); err != nil {
		return err
	}
	return Wait(ctx, e)
}

// Wait prints READY (what bench/tunnel/run.sh waits for), waits until ctx
// ends and closes c.
func Wait(ctx context.Context, c io.Closer) error {
	fmt.Println("READY")
	<-ctx.Done()
	return c.Close()
}

// AddPeers adds the -peer consumer at -peer-ip (reserved in pool) and
// -idle-peers generated peers with addresses allocated from pool.
func (f *ExitFlags) AddPeers(ctx context.Context, e Exit, pool *tunnel.AddressPool) error {
	if *f.peer != "" {
		pub, err := tunnel.ParsePublicKey(*f.peer)
		if err != nil {
			return err
		}
		a, err := netip.ParseAddr(*f.peerIP)
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
	for range *f.idle {
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
	return nil
}

// ClientFlags are the flag set of a client, with the flags both clients
// take: -key, -peer, -endpoint and -addr.
type ClientFlags struct {
	*flag.FlagSet
	key, peer, endpoint, addr *string
}

// NewClientFlags is a client's flag set with the common flags; a command
// adds its own before ParseSession.
func NewClientFlags() *ClientFlags {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	return &ClientFlags{
		FlagSet:  fs,
		key:      fs.String("key", "", "our private key (base64)"),
		peer:     fs.String("peer", "", "exit public key (base64)"),
		endpoint: fs.String("endpoint", "", "exit UDP endpoint host:port"),
		addr:     fs.String("addr", "10.182.0.2/32", "our tunnel address"),
	}
}

// ParseSession parses args and returns the full-tunnel session the flags
// describe.
func (f *ClientFlags) ParseSession(args []string) (tunnel.SessionConfig, error) {
	if err := f.Parse(args); err != nil {
		return tunnel.SessionConfig{}, err
	}
	priv, err := tunnel.ParsePrivateKey(*f.key)
	if err != nil {
		return tunnel.SessionConfig{}, err
	}
	pub, err := tunnel.ParsePublicKey(*f.peer)
	if err != nil {
		return tunnel.SessionConfig{}, err
	}
	ep, err := netip.ParseAddrPort(*f.endpoint)
	if err != nil {
		return tunnel.SessionConfig{}, err
	}
	a, err := netip.ParsePrefix(*f.addr)
	if err != nil {
		return tunnel.SessionConfig{}, err
	}
	return tunnel.SessionConfig{
		PrivateKey: priv, Addresses: []netip.Prefix{a}, PeerPublicKey: pub, Endpoint: ep,
		AllowedIPs: tunnel.FullTunnel(), PersistentKeepalive: tunnel.DefaultKeepalive,
	}, nil
}
