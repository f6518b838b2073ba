package sessionproto

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func loopbackHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// TestOverLibp2pStream runs a session handshake, a keepalive and a destroy
// over a real libp2p stream on loopback, and checks the read deadline on a
// silent libp2p stream.
func TestOverLibp2pStream(t *testing.T) {
	provider, consumer := loopbackHost(t), loopbackHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	got := make(chan error, 1)
	provider.SetStreamHandler(ProtocolID, func(s network.Stream) {
		defer s.Close()
		got <- func() error {
			r, w := NewReader(s, 5*time.Second), NewWriter(s, 5*time.Second)
			m, err := r.ReadMessage(ctx)
			if err != nil {
				return err
			}
			req, ok := m.(*SessionRequest)
			if !ok {
				return errors.New("first message is not a session request")
			}
			if err := req.VerifySignature(); err != nil {
				return err
			}
			resp := &SessionResponse{
				SessionID: SessionID{1}, ProviderWGKey: Key{2}, Endpoint: "127.0.0.1:51820",
				ConsumerAddrs: []netip.Prefix{netip.MustParsePrefix("10.182.0.2/32")},
				ProviderAddr:  netip.MustParseAddr("10.182.0.1"), DNS: []netip.Addr{},
			}
			if err := w.WriteMessage(ctx, resp); err != nil {
				return err
			}
			if err := w.WriteMessage(ctx, &Keepalive{Seq: 1}); err != nil {
				return err
			}
			m, err = r.ReadMessage(ctx)
			if err != nil {
				return err
			}
			if d, ok := m.(*Destroy); !ok || d.Reason != "bye" {
				return errors.New("want destroy")
			}
			return nil
		}()
	})

	if err := consumer.Connect(ctx, peer.AddrInfo{ID: provider.ID(), Addrs: provider.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := consumer.NewStream(ctx, provider.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, w := NewReader(s, 5*time.Second), NewWriter(s, 5*time.Second)
	if err := w.WriteMessage(ctx, signedRequest(t)); err != nil {
		t.Fatal(err)
	}
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp, ok := m.(*SessionResponse); !ok || resp.Endpoint != "127.0.0.1:51820" {
		t.Fatalf("response %+v", m)
	}
	if m, err := r.ReadMessage(ctx); err != nil || m.(*Keepalive).Seq != 1 {
		t.Fatalf("keepalive: %v %v", m, err)
	}
	if err := w.WriteMessage(ctx, &Destroy{Reason: "bye"}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("provider side: %v", err)
	}
	if _, err := r.ReadMessage(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after the provider closed: %v, want io.EOF", err)
	}

	// A peer that opens a stream and stays silent is cut off by the read
	// deadline.
	silent := make(chan error, 1)
	provider.SetStreamHandler(ProtocolID, func(s network.Stream) {
		defer s.Close()
		_, err := NewReader(s, 100*time.Millisecond).ReadMessage(ctx)
		silent <- err
	})
	s2, err := consumer.NewStream(ctx, provider.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	// libp2p negotiates the protocol lazily; a first write makes the
	// provider see the stream. Half a length prefix, then silence.
	if _, err := s2.Write([]byte{0, 0}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-silent:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("silent peer: %v, want a timeout", err)
		}
	case <-ctx.Done():
		t.Fatal("read deadline not honoured on a libp2p stream")
	}
}
