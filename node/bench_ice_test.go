package node

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tunnel"
)

// TestBenchICEPaths measures connect -> first byte of a whole session
// (request, ICE, WireGuard handshake, a 1 KiB fetch through SOCKS5) on the
// loopback devnet per path: the static UDP endpoint (a consumer without
// ICE) as the baseline, an ICE direct pair, and an ICE pair through the
// devnet's TURN relay (a consumer that gathers only relayed candidates).
// It runs only with MYST_BENCH=1 (MYST_BENCH_ROUNDS overrides 20); results
// go to docs/benchmarks.md.
func TestBenchICEPaths(t *testing.T) {
	testenv.RequireBench(t)
	rounds := testenv.EnvInt("MYST_BENCH_ROUNDS", 20)
	ctx := testenv.Timeout(t, 10*time.Minute)
	small := payload(1 << 10)
	srv, rule := startServer(t, small)
	d := startTestDevnet(ctx, t, DevnetConfig{DataDir: t.TempDir(), Allow: []tunnel.Rule{rule}, Log: testLog()})
	relayOnly := *d.ICE
	relayOnly.RelayOnly = true
	paths := []struct {
		name, want string
		ice        *ice.Config
	}{
		{"static", consumer.PathStatic, nil},
		{"ice-direct", ice.PathDirect, d.ICE},
		{"ice-relay", ice.PathRelay, &relayOnly},
	}
	p50 := map[string]time.Duration{}
	for _, p := range paths {
		c, err := StartConsumer(ctx, ConsumerConfig{
			DataDir: filepath.Join(t.TempDir(), p.name), Signer: d.ConsumerSigner, Chain: d.Client, Hermes: d.Chain.Deployment().Hermes,
			Bootstrap: []peer.AddrInfo{d.Boot.AddrInfo()}, MaxFee: d.cfg.HermesMinFee, ICE: p.ice, Log: testLog(),
		})
		if err != nil {
			t.Fatal(err)
		}
		ps, err := c.WaitProposals(ctx, market.Filter{Country: "NL"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		var ds []time.Duration
		for range rounds {
			t0 := time.Now()
			conn, err := c.Sessions.Connect(ctx, ps[0], consumer.Options{SOCKSListen: "127.0.0.1:0"})
			if err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			if _, err := download(ctx, conn.SOCKSAddr(), srv.URL); err != nil {
				t.Fatalf("%s: fetch: %v", p.name, err)
			}
			ds = append(ds, time.Since(t0))
			if conn.Path() != p.want {
				t.Fatalf("%s: path %q, want %q", p.name, conn.Path(), p.want)
			}
			if err := conn.Disconnect(ctx); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
		p50[p.name] = pct(ds, 50)
		fmt.Printf("%-10s connect->first byte p50 %7.1f ms  p90 %7.1f ms\n", p.name, ms(pct(ds, 50)), ms(pct(ds, 90)))
	}
	for _, p := range paths[1:] {
		fmt.Printf("%-10s p50 / static p50 = %.2fx\n", p.name, float64(p50[p.name])/float64(p50["static"]))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
