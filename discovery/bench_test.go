package discovery

import (
	"context"
	"math"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/p2p"
)

// BenchmarkPropagation50 measures how long a new proposal takes to reach
// 99% of a 50-node loopback network whose nodes only know the bootstrap
// node. Each iteration publishes a price update and waits for it. The
// baseline, measured in the same run, is one hop between two directly
// connected nodes; "x_one_hop" is the ratio.
//
//	go test -run '^$' -bench Propagation50 -benchtime 20x ./discovery
func BenchmarkPropagation50(b *testing.B) {
	const nodes = 50
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	oneHop := measureUpdates(b, ctx, 2, 10)
	net := startNet(b, ctx, nodes, netOpts{rateBurst: 1 << 20})
	time.Sleep(5 * time.Second) // a settled network: meshes formed, DHT refreshed
	b.ResetTimer()
	lat := measureOn(b, ctx, net, b.N)
	b.StopTimer()
	need := int(math.Ceil(0.99 * float64(nodes-1)))
	b.ReportMetric(float64(pct(lat, 50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(pct(lat, 90).Microseconds())/1000, "p90_ms")
	b.ReportMetric(float64(pct(lat, 100).Microseconds())/1000, "max_ms")
	under := 0
	for _, l := range lat {
		if l < 2*time.Second {
			under++
		}
	}
	b.ReportMetric(100*float64(under)/float64(len(lat)), "pct_under_2s")
	b.ReportMetric(float64(pct(lat, 50))/float64(pct(oneHop, 50)), "x_one_hop")
	b.Logf("99%% (%d of %d receivers) hold the update: median %s, max %s over %d updates; one hop median %s",
		need, nodes-1, pct(lat, 50), pct(lat, 100), len(lat), pct(oneHop, 50))
}

func measureUpdates(b *testing.B, ctx context.Context, nodes, n int) []time.Duration {
	net := startNet(b, ctx, nodes, netOpts{rateBurst: 1 << 20})
	defer net.close()
	time.Sleep(2 * time.Second)
	return measureOn(b, ctx, net, n)
}

// measureOn publishes n updates from the last node and returns, for each,
// the time until 99% of the other nodes hold it.
func measureOn(b *testing.B, ctx context.Context, net *testNet, n int) []time.Duration {
	prov := net.nodes[len(net.nodes)-1]
	others := net.nodes[:len(net.nodes)-1]
	need := int(math.Ceil(0.99 * float64(len(others))))
	signer := keytest.Signer(b)
	a, err := NewAnnouncer(prov.svc, AnnouncerConfig{Proposal: offer(b, "DE", "0.1"), Signer: signer, Host: prov.node.Host, TTL: time.Hour, Log: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for i := 0; i < n; i++ {
		raw, p, err := a.Build(false)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := prov.svc.Publish(ctx, raw); err != nil {
			b.Fatal(err)
		}
		for {
			have := 0
			for _, o := range others {
				if s, ok := o.svc.Cache().Seq(signer.Address()); ok && s >= p.Seq {
					have++
				}
			}
			if have >= need {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("update %d reached %d of %d nodes in 30s", i, have, len(others))
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	return lat
}

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s) - 1) * p / 100
	return s[i]
}

// BenchmarkIdleNodeMemory reports the heap held per idle node in a
// 50-node loopback network that joined through one bootstrap node: full
// nodes (libp2p host, DHT, GossipSub, discovery) against the baseline of
// the same network of bare p2p nodes (host + DHT, no discovery), both
// measured in this run after the same settling time.
//
//	go test -run '^$' -bench IdleNodeMemory -benchtime 1x ./discovery
func BenchmarkIdleNodeMemory(b *testing.B) {
	const nodes = 50
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < b.N; i++ {
		base := heap()
		bare := startBareNet(b, ctx, nodes)
		time.Sleep(3 * time.Second) // let the DHT settle
		bareHeap := heap()
		conns := 0
		for _, n := range bare {
			conns += len(n.Host.Network().Peers())
		}
		for _, n := range bare {
			n.Close()
		}
		start := heap()
		net := startNet(b, ctx, nodes, netOpts{})
		time.Sleep(3 * time.Second) // let meshes and the DHT settle
		full := heap()
		net.close()
		perBare := float64(bareHeap-base) / nodes
		perFull := float64(full-start) / nodes
		b.ReportMetric(perFull/1024, "KiB/node")
		b.ReportMetric(perBare/1024, "KiB/bare_node")
		b.ReportMetric(perFull/perBare, "x_bare_node")
		b.Logf("idle node with discovery: %.0f KiB; bare host+DHT: %.0f KiB (%.1f connections per bare node)",
			perFull/1024, perBare/1024, float64(conns)/nodes)
	}
}

func startBareNet(b *testing.B, ctx context.Context, n int) []*p2p.Node {
	b.Helper()
	cfg := p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Log: quietLog}
	boot, err := p2p.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	out := []*p2p.Node{boot}
	cfg.Bootstrap = []peer.AddrInfo{boot.AddrInfo()}
	for len(out) < n {
		nd, err := p2p.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, nd)
		if err := nd.Bootstrap(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

func heap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// BenchmarkValidate measures how many announcements per second one node
// validates (decode, both signatures, binding, clocks, sequence). The
// baseline is the two secp256k1 signature recoveries alone.
//
//	go test -run '^$' -bench Validate ./discovery
func BenchmarkValidate(b *testing.B) {
	s := keytest.Signer(b)
	pid := keytest.PeerID(b)
	now := time.Now()
	raw := signedBy(b, s, pid, now, nil)
	v := NewValidator(ValidatorConfig{ChainID: testChain, RateBurst: 1 << 30}, NewCache(nil))
	a, _, err := DecodeAnnouncement(raw)
	if err != nil {
		b.Fatal(err)
	}
	d, _ := a.Proposal.Proposal.Digest()
	bd := a.Binding.Digest()

	// Baseline: the same number of bare signature checks, timed in this run.
	t0 := time.Now()
	for i := 0; i < max(b.N, 200); i++ {
		if err := identity.Verify(s.Address(), d[:], a.Proposal.Signature); err != nil {
			b.Fatal(err)
		}
		if err := identity.Verify(s.Address(), bd[:], a.Binding.Signature); err != nil {
			b.Fatal(err)
		}
	}
	basePer := time.Since(t0).Seconds() / float64(max(b.N, 200))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, r, err := v.Check(raw, pid); r != ReasonAccepted {
			b.Fatal(r, err)
		}
	}
	b.StopTimer()
	per := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(1/per, "proposals/s")
	b.ReportMetric(per/basePer, "x_two_ecrecovers")
}
