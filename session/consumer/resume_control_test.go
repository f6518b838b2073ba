package consumer

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/tunnel"
	"github.com/openmyst/openmyst/tunnel/userspace"
)

// TestResumeTellsTheTunnel: a connection with its own tunnel (a kernel
// tunnel with its kill switch in production) learns where its control
// connection goes: the opener gets the relay's address for a circuit
// connection, Options.ControlPath is told before each resume attempt the
// current destinations (and the provider's other known addresses) and,
// once a resume succeeded, the new connection's; a ControlPath that
// refuses makes the attempt fail before anything is dialled, and the
// session then ends instead of resuming outside what a kill switch
// admits.
func TestResumeTellsTheTunnel(t *testing.T) {
	const circuitFor = 2 * time.Second
	for _, refuse := range []bool{false, true} {
		t.Run(map[bool]string{false: "admitted", true: "refused"}[refuse], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			k, pool, exit := iceTestExit(t)
			rp, _ := startRelayedProvider(t, ctx, circuitFor, provider.Config{
				Exit: exit, Pool: pool, ResumeGrace: 8 * time.Second,
				Payment: provider.Payment{Interval: 250 * time.Millisecond, CheckEvery: 50 * time.Millisecond, Grace: 10 * time.Second, Keepalive: 200 * time.Millisecond, ReadTimeout: 3 * time.Second},
			})
			_, _, m := relayedConsumer(t, k, 6*time.Second)
			relay, ok := firstDialAddr(rp.proposal.Addrs)
			if !ok {
				t.Fatalf("no relay address in %v", rp.proposal.Addrs)
			}
			var mu sync.Mutex
			var route TunnelRoute
			var calls [][]netip.AddrPort
			o := Options{
				Tunnel: func(ctx context.Context, s tunnel.SessionConfig, r TunnelRoute) (tunnel.Client, error) {
					mu.Lock()
					route = r
					mu.Unlock()
					return userspace.Connect(ctx, userspace.ClientConfig{Session: s, HandshakeTimeout: 5 * time.Second, Log: slog.New(slog.DiscardHandler)})
				},
				ControlPath: func(_ context.Context, addrs []netip.AddrPort) error {
					mu.Lock()
					defer mu.Unlock()
					calls = append(calls, addrs)
					if refuse {
						return errors.New("no kill switch today")
					}
					return nil
				},
			}
			c, err := m.Connect(ctx, rp.proposal, o)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Disconnect(context.Background()) }()
			mu.Lock()
			if !slices.Equal(route.Control, []netip.AddrPort{relay}) {
				t.Errorf("the opener's control destinations %v, want the relay's %s (the session runs over a circuit)", route.Control, relay)
			}
			mu.Unlock()
			if refuse {
				select {
				case <-c.Done():
				case <-ctx.Done():
					t.Fatal("the session outlived its circuit with every resume refused by ControlPath")
				}
				if c.Resumes() != 0 || c.Err() == nil {
					t.Fatalf("resumes %d, err %v: want the session ended, not resumed", c.Resumes(), c.Err())
				}
				mu.Lock()
				defer mu.Unlock()
				if len(calls) == 0 {
					t.Fatal("ControlPath was never asked before the resume attempts")
				}
				return
			}
			for c.Resumes() == 0 {
				select {
				case <-c.Done():
					t.Fatalf("the session ended: %v", c.Err())
				case <-ctx.Done():
					t.Fatal("no resume")
				case <-time.After(50 * time.Millisecond):
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(calls) < 2 || !slices.Contains(calls[0], relay) || !slices.Equal(calls[len(calls)-1], []netip.AddrPort{relay}) {
				t.Fatalf("ControlPath calls %v: want first the current destinations (with %s), last the new connection's alone", calls, relay)
			}
		})
	}
}

// firstDialAddr is dialAddrPort of the first of addrs that has one (a
// test helper over multiaddr strings).
func firstDialAddr(addrs []string) (netip.AddrPort, bool) {
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		if ap, ok := dialAddrPort(m); ok {
			return ap, true
		}
	}
	return netip.AddrPort{}, false
}
