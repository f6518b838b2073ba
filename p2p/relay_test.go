package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// TestRelayedControlStream: a relay-role node carries, over a limited
// (relayed) connection, more control traffic than libp2p's default relay
// limit (128 KiB), and the connection is limited, so a stream needs
// network.WithAllowLimitedConn (as the consumer's session stream has).
// With libp2p's default limit the echo below is cut.
func TestRelayedControlStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	loop := []string{"/ip4/127.0.0.1/tcp/0"}
	relay, err := New(Config{ListenAddrs: loop, RelayService: true, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	// Provider and consumer listen nowhere: reachable only through the
	// relay, as behind symmetric NATs (else their DHTs dial each other
	// directly once identify has told them the other's addresses).
	prov, err := New(Config{ListenAddrs: []string{}, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	cons, err := New(Config{ListenAddrs: []string{}, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()

	const proto = "/openmyst/test/echo/1"
	prov.Host.SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, s)
	})
	// The relay service starts once the relay node sees itself public.
	var rsvp *client.Reservation
	for {
		if rsvp, err = client.Reserve(ctx, prov.Host, relay.AddrInfo()); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("reserve a slot on the relay: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if rsvp.LimitDuration != CircuitDuration || rsvp.LimitData != CircuitData {
		t.Fatalf("relay limits %v / %d bytes, want %v / %d", rsvp.LimitDuration, rsvp.LimitData, CircuitDuration, CircuitData)
	}
	circuit, err := ma.NewMultiaddr(fmt.Sprintf("%s/p2p/%s/p2p-circuit", relay.Host.Addrs()[0], relay.ID()))
	if err != nil {
		t.Fatal(err)
	}
	lctx := network.WithAllowLimitedConn(ctx, "test")
	if err := cons.Host.Connect(lctx, peer.AddrInfo{ID: prov.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	if c := cons.Host.Network().ConnsToPeer(prov.ID()); len(c) != 1 || !c[0].Stat().Limited {
		t.Fatalf("connections to the provider %v, want one limited (relayed)", c)
	}
	s, err := cons.Host.NewStream(lctx, prov.ID(), proto)
	if err != nil {
		t.Fatalf("stream over the relayed connection: %v", err)
	}
	defer s.Reset()
	want := make([]byte, 512<<10) // 4x libp2p's default relay data limit
	if _, err := rand.Read(want); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = s.Write(want)
		_ = s.CloseWrite()
	}()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echoed %d of %d bytes through the relay: %v", len(got), len(want), err)
	}
}
