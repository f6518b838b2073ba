package p2p

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/internal/keytest"
)

// TestForgetDialFailures: a failed dial leaves a dial backoff (the next
// dial is refused without trying); ForgetDialFailures drops it, so the
// next dial tries the address again.
func TestForgetDialFailures(t *testing.T) {
	n, err := New(Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// A peer at a loopback port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	pid := keytest.PeerID(t)
	addr := ma.StringCast("/ip4/127.0.0.1/tcp/" + strconv.Itoa(port))
	dial := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return n.Host.Connect(ctx, peer.AddrInfo{ID: pid, Addrs: []ma.Multiaddr{addr}})
	}
	if err := dial(); err == nil || errors.Is(err, swarm.ErrDialBackoff) {
		t.Fatalf("first dial: %v, want a refused dial", err)
	}
	if err := dial(); !errors.Is(err, swarm.ErrDialBackoff) {
		t.Fatalf("second dial: %v, want the dial backoff", err)
	}
	n.ForgetDialFailures(pid)
	if err := dial(); err == nil || errors.Is(err, swarm.ErrDialBackoff) {
		t.Fatalf("dial after ForgetDialFailures: %v, want a new (refused) dial, not the backoff", err)
	}
}
