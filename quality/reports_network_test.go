package quality

import (
	"context"
	"errors"
	"math"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/p2p"
)

// fakeBacking stands in for the chain: consumers with a funded channel.
type fakeBacking struct {
	mu     sync.Mutex
	limits map[common.Address]*big.Int
}

func (f *fakeBacking) ChannelLimit(_ context.Context, consumer, _ common.Address) ([32]byte, *big.Int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.limits[consumer]
	if l == nil {
		l = new(big.Int)
	}
	return channelOf(consumer), l, nil
}

// TestReportsResistForgeryReplayAndFlood runs reports through a real
// libp2p network: honest, payment-backed reports rank a good provider
// above a failing one on every node, while forged, unbacked, replayed and
// flooding reports from a rogue peer leave the honest scores as they
// were (or, for a funded flooder, move them at most by its daily cap).
func TestReportsResistForgeryReplayAndFlood(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	honest1, honest2, funded, unfunded := keytest.Signer(t), keytest.Signer(t), keytest.Signer(t), keytest.Signer(t)
	backing := &fakeBacking{limits: map[common.Address]*big.Int{
		honest1.Address(): big.NewInt(1e18), honest2.Address(): big.NewInt(1e18), funded.Address(): big.NewInt(1e18),
	}}
	boot := startQNodeWith(t, ctx, nil, t.TempDir(), backing, 1000)
	nodes := []*qnode{boot}
	for i := 1; i < 5; i++ {
		nodes = append(nodes, startQNodeWith(t, ctx, []peer.AddrInfo{boot.node.AddrInfo()}, t.TempDir(), backing, 1000))
	}
	waitFor(t, "report topic peers", func() bool {
		for _, nd := range nodes {
			if len(nd.svc.rep.topic.ListPeers()) == 0 {
				return false
			}
		}
		return true
	})
	// A node outside every mesh when a report is published hears of it
	// through gossip only within the history window (6 heartbeats) and
	// pulls reports only on a new connection. Let the meshes form first
	// (GRAFTs go out on the next heartbeats).
	time.Sleep(time.Second)
	good, bad := keytest.Signer(t).Address(), keytest.Signer(t).Address()
	now := time.Now()
	publish := func(nd *qnode, sr SignedReport) {
		t.Helper()
		if err := nd.svc.PublishReport(ctx, sr); err != nil {
			t.Fatal(err)
		}
	}
	var honest []SignedReport
	for i, c := range []*struct {
		s    interface{ Address() common.Address }
		prov common.Address
		o    Outcome
		paid int64
	}{{honest1, good, OutcomeConnected, 3e15}, {honest2, good, OutcomeConnected, 2e15}, {honest1, bad, OutcomeHandshakeTimeout, 0}, {honest2, bad, OutcomeUnreachable, 0}} {
		sr := report(t, c.s.(signerT), c.prov, now, c.o, c.paid, 150, 2e6)
		honest = append(honest, sr)
		publish(nodes[1+i%4], sr)
	}
	counted := func(n uint64) func() bool {
		return func() bool {
			for _, nd := range nodes {
				if nd.svc.ReportStats().Counted < n {
					return false
				}
			}
			return true
		}
	}
	if !waitUntil(counted(4)) {
		for i, nd := range nodes {
			t.Logf("node %d: %+v, topic peers %d", i, nd.svc.ReportStats(), len(nd.svc.rep.topic.ListPeers()))
		}
		t.Fatal("honest reports not counted everywhere")
	}
	before := make([]Score, len(nodes))
	for i, nd := range nodes {
		g, b, u := nd.svc.Score(good), nd.svc.Score(bad), nd.svc.Score(common.Address{9})
		if !(g.Value > u.Value && u.Value > b.Value) || g.Reports != 2 || b.Reports != 2 {
			t.Fatalf("node %d: good %+v, bad %+v: want good > unknown > bad", i, g, b)
		}
		before[i] = g
	}

	r := startRogue(t, ctx, boot.node.AddrInfo())
	// Forged: a failure "by" honest1, signed by the attacker.
	forged := report(t, honest1, good, now, OutcomeUnreachable, 0, 0, 0)
	forged.Report.DurationMs++
	d, _ := forged.Report.Digest()
	forged.Signature, _ = unfunded.Sign(d[:])
	r.publishReport(t, ctx, forged)
	// Unbacked: failures from an identity without a funded channel.
	for i := 0; i < 5; i++ {
		sr := report(t, unfunded, good, now, OutcomeUnreachable, 0, 0, 0)
		sr.Report.DurationMs = uint64(i + 1)
		resigned, err := SignReport(sr.Report, unfunded)
		if err != nil {
			t.Fatal(err)
		}
		r.publishReport(t, ctx, resigned)
	}
	// Replayed: the honest failure reports on bad, sent again many times,
	// and honest reports on good (would double-count if replays counted).
	for i := 0; i < 10; i++ {
		for _, sr := range honest {
			r.publishReport(t, ctx, sr)
		}
	}
	// Stale: an old report.
	r.publishReport(t, ctx, report(t, funded, good, now.Add(-2*MaxReportAge), OutcomeUnreachable, 0, 0, 0))
	// The rogue's neighbour has judged every attack message (none is
	// forwarded, so only direct neighbours see them).
	processed := func() uint64 {
		st := boot.svc.ReportStats()
		return st.Counted + st.Unbacked + st.Stale + st.RateLimited + st.Invalid
	}
	base := uint64(4) // the honest reports
	waitFor(t, "the rogue's neighbour judged all 47 attack reports", func() bool { return processed() >= base+47 })
	for i, nd := range nodes {
		g := nd.svc.Score(good)
		if g.Reports != before[i].Reports || g.SuccessRate != before[i].SuccessRate {
			t.Fatalf("node %d: good provider's score moved from %+v to %+v", i, before[i], g)
		}
		st := nd.svc.ReportStats()
		if i == 0 && (st.Invalid != 1 || st.Unbacked != 5 || st.Stale != 41 || st.RateLimited != 0) {
			t.Fatalf("rogue's neighbour stats %+v: want 1 invalid, 5 unbacked, 41 stale (40 replays, 1 old), none rate limited", st)
		}
	}

	// Flood: a funded identity sends 50 distinct failure reports on good.
	for i := 0; i < 50; i++ {
		sr := report(t, funded, good, now, OutcomeUnreachable, 0, 0, 0)
		sr.Report.DurationMs = uint64(1000 + i)
		resigned, err := SignReport(sr.Report, funded)
		if err != nil {
			t.Fatal(err)
		}
		r.publishReport(t, ctx, resigned)
	}
	waitFor(t, "the rogue's neighbour judged the flood", func() bool { return processed() >= base+47+50 })
	waitFor(t, "the flood's admitted reports reached every node", func() bool {
		for i, nd := range nodes {
			if nd.svc.Score(good).Reports < before[i].Reports+8 {
				return false
			}
		}
		return true
	})
	s := NewScorer(ScorerConfig{})
	for i, nd := range nodes {
		g := nd.svc.Score(good)
		if extra := g.Reports - before[i].Reports; extra != 8 || g.Weight-before[i].Weight > s.cfg.MaxWeight {
			t.Fatalf("node %d: flood added %d reports, weight %v → %v; want exactly the per-identity burst (8) within the daily cap", i, extra, before[i].Weight, g.Weight)
		}
		if !(g.Value > nd.svc.Score(bad).Value) {
			t.Fatalf("node %d: flood made good (%v) rank below bad (%v)", i, g.Value, nd.svc.Score(bad).Value)
		}
	}
}

// signerT is the signer type the helpers take.
type signerT = interface {
	Address() common.Address
	Sign([]byte) ([]byte, error)
}

// waitUntil polls cond until it holds (true) or propagation passes.
func waitUntil(cond func() bool) bool { return testenv.Until(propagation, cond) }

// TestReportSyncForLateJoiner: a node that joins after a report's gossip
// window (a few heartbeats) still counts it, pulled over
// ReportSyncProtocol from the peer it connects to and validated as gossip;
// a second pull from the same peer counts nothing twice.
func TestReportSyncForLateJoiner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consumer := keytest.Signer(t)
	backing := &fakeBacking{limits: map[common.Address]*big.Int{consumer.Address(): big.NewInt(1e18)}}
	boot := startQNodeWith(t, ctx, nil, t.TempDir(), backing, 1000)
	early := startQNodeWith(t, ctx, []peer.AddrInfo{boot.node.AddrInfo()}, t.TempDir(), backing, 1000)
	waitFor(t, "report topic peers", func() bool { return len(boot.svc.rep.topic.ListPeers()) > 0 })
	time.Sleep(time.Second) // meshes form
	prov := keytest.Signer(t).Address()
	if err := early.svc.PublishReport(ctx, report(t, consumer, prov, time.Now(), OutcomeConnected, 3e15, 150, 2e6)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "report counted on the boot node", func() bool { return boot.svc.ReportStats().Counted == 1 })
	time.Sleep(2 * time.Second) // 20 heartbeats: far past the gossip history

	late := startQNodeWith(t, ctx, []peer.AddrInfo{boot.node.AddrInfo()}, t.TempDir(), backing, 1000)
	if !waitUntil(func() bool { return late.svc.Score(prov).Reports == 1 }) {
		t.Fatalf("late joiner: score %+v, stats %+v", late.svc.Score(prov), late.svc.ReportStats())
	}
	if n, err := late.svc.SyncReportsFrom(ctx, boot.node.ID()); err != nil || n != 0 {
		t.Fatalf("second pull counted %d, %v", n, err)
	}
	if s := late.svc.Score(prov); s.Reports != 1 {
		t.Fatalf("replayed by sync: %+v", s)
	}
	// Serving is rate-limited per peer (2 per 10 minutes: the automatic
	// pull and the one above).
	if _, err := late.svc.SyncReportsFrom(ctx, boot.node.ID()); err == nil {
		t.Fatal("a third pull within the limit window was served")
	}

	// A peer serving a forged report (signed by someone else than its
	// consumer) is cut off and the report not counted.
	r := startRogue(t, ctx, boot.node.AddrInfo())
	forged := report(t, consumer, keytest.Signer(t).Address(), time.Now(), OutcomeUnreachable, 0, 0, 0)
	forged.Report.DurationMs++
	raw, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	r.node.Host.SetStreamHandler(ReportSyncProtocol, func(st network.Stream) {
		defer st.Close()
		_ = p2p.WriteFrames(st, [][]byte{raw})
	})
	invalid := late.svc.ReportStats().Invalid
	if err := late.node.Host.Connect(ctx, r.node.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if n, err := late.svc.SyncReportsFrom(ctx, r.node.ID()); err == nil || n != 0 || late.svc.ReportStats().Invalid != invalid+1 {
		t.Fatalf("forged report by sync: counted %d, err %v, stats %+v", n, err, late.svc.ReportStats())
	}
}

// TestReportSyncAgeAndBytes: a late joiner takes reports up to
// MaxSyncAge old by sync (gossip stops at MaxReportAge), each weighted as
// decayed by its age; an older one is ignored; and a peer serving more
// than MaxSyncBytes is cut off.
func TestReportSyncAgeAndBytes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consumer := keytest.Signer(t)
	backing := &fakeBacking{limits: map[common.Address]*big.Int{consumer.Address(): big.NewInt(1e18)}}
	late := startQNodeWith(t, ctx, nil, t.TempDir(), backing, 1000)
	r := startRogue(t, ctx, late.node.AddrInfo())
	var serve atomic.Pointer[[][]byte]
	serve.Store(&[][]byte{}) // the late node may pull at once
	r.node.Host.SetStreamHandler(ReportSyncProtocol, func(st network.Stream) {
		defer st.Close()
		_ = p2p.WriteFrames(st, *serve.Load())
	})
	encode := func(sr SignedReport) []byte {
		raw, err := sr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	now := time.Now()
	recent, old := keytest.Signer(t).Address(), keytest.Signer(t).Address()
	frames := [][]byte{
		encode(report(t, consumer, old, now.Add(-MaxSyncAge-time.Hour), OutcomeConnected, 3e15, 150, 2e6)),
		encode(report(t, consumer, recent, now.Add(-5*time.Hour), OutcomeConnected, 3e15, 150, 2e6)),
	}
	serve.Store(&frames)
	if !waitUntil(func() bool {
		_, _ = late.svc.SyncReportsFrom(ctx, r.node.ID())
		return late.svc.Score(recent).Reports == 1
	}) {
		t.Fatalf("a 5 h old report was not counted by sync: %+v, stats %+v", late.svc.Score(recent), late.svc.ReportStats())
	}
	// 3 units of payment, decayed by 5 h of the 24 h half-life.
	if w, want := late.svc.Score(recent).Weight, 3*math.Exp2(-5.0/24); math.Abs(w-want) > 0.01 {
		t.Fatalf("weight of the 5 h old report %.4f, want %.4f", w, want)
	}
	if s := late.svc.Score(old); s.Reports != 0 {
		t.Fatalf("a report older than MaxSyncAge was counted: %+v", s)
	}

	// About 1.2 KB per report with evidence: 900 of them are over
	// MaxSyncBytes (and under MaxSyncReports).
	many := make([][]byte, 0, 900)
	size := 0
	for i := 0; len(many) < 900; i++ {
		sr := report(t, keytest.Signer(t), recent, now, OutcomeConnected, 1e15, 100, 1e6)
		many = append(many, encode(sr))
		size += len(many[i])
	}
	if size <= MaxSyncBytes || len(many) > MaxSyncReports {
		t.Fatalf("test frames: %d bytes in %d reports", size, len(many))
	}
	serve.Store(&many)
	if _, err := late.svc.SyncReportsFrom(ctx, r.node.ID()); !errors.Is(err, errBadPeer) {
		t.Fatalf("a peer serving %d bytes of reports was not cut off: %v", size, err)
	}
}

// TestServedReportsBounded: what a node serves is its newest kept
// reports not older than MaxSyncAge, in at most MaxSyncBytes.
func TestServedReportsBounded(t *testing.T) {
	now := time.Now()
	q := &reports{}
	q.remember(make([]byte, 100), now.Add(-MaxSyncAge-time.Minute).Unix()) // too old
	q.remember(make([]byte, 100), now.Add(-MaxSyncAge+time.Minute).Unix())
	if got := q.fresh(now); len(got) != 1 {
		t.Fatalf("served %d reports, want the one within MaxSyncAge", len(got))
	}
	for i := 0; i < MaxSyncReports; i++ {
		raw := make([]byte, 1500)
		raw[0], raw[1] = byte(i>>8), byte(i)
		q.remember(raw, now.Unix())
	}
	got := q.fresh(now)
	size := 0
	for _, raw := range got {
		size += len(raw)
	}
	if size > MaxSyncBytes || size+1500 <= MaxSyncBytes || int(got[len(got)-1][0])<<8|int(got[len(got)-1][1]) != MaxSyncReports-1 {
		t.Fatalf("served %d reports, %d bytes: want the newest that fit in %d bytes", len(got), size, MaxSyncBytes)
	}
}

// TestReplayFilterKeepsGossipWhenFull: a replay filter full of ids from
// the last 24 h (synced reports) makes room by forgetting those older
// than the gossip window, so fresh reports keep being counted, while a
// replay within the gossip window is still caught.
func TestReplayFilterKeepsGossipWhenFull(t *testing.T) {
	now := time.Now()
	q := &reports{seen: make(map[[32]byte]int64, maxSeen)}
	for i := 0; i < maxSeen; i++ {
		var id [32]byte
		id[0], id[1], id[2] = byte(i>>16), byte(i>>8), byte(i)
		q.seen[id] = now.Add(-2 * time.Hour).Unix() // synced, 2 h old
	}
	recent := [32]byte{0xff}
	q.seen[recent] = now.Unix()
	if !q.firstSeen([32]byte{0xfe}, now.Unix(), now) {
		t.Fatal("a fresh report was refused by a filter full of 2 h old ids")
	}
	if q.firstSeen(recent, now.Unix(), now) {
		t.Fatal("a replay within the gossip window was not caught")
	}
}
