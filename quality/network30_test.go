package quality

import (
	"context"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// provKind is how a simulated provider behaves.
type provKind int

const (
	kindGood provKind = iota
	kindDropper
	kindSlow
	kindOvercharger
)

// TestThirtyNodes runs 30 in-process nodes (real libp2p, discovery,
// proof and report gossip): six providers announce real proposals (three
// honest; a dropper, a slow one and an overcharger, all cheaper than the
// honest ones), 20 funded consumers on the other nodes each report one
// session per provider (the sessions themselves are simulated: their
// outcomes, timings and payment evidence are what the consumer would
// sign; package quality cannot run sessions, which live above it, and 120
// real paid sessions would not fit the default test budget on 2 cores:
// node.TestQualityPaidSessions drives one real paid session against an
// honest, a dropping, a slow and an overcharging provider through the
// devnet), and the overcharger is convicted by a proof built from a v2
// invoice it signed. Then on every node: the overcharger is blacklisted
// and not listed, sort=quality puts the three honest providers first and
// the dropper and the slow one last although price order is the
// reverse; a rogue's forged, unbacked and replayed reports on an honest
// provider change nothing; and a fresh node learns the blacklist.
func TestThirtyNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("30-node network; skipped with -short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const nNodes, nConsumers = 30, 20
	consumers := make([]*identity.KeySigner, nConsumers)
	backing := &fakeBacking{limits: map[common.Address]*big.Int{}}
	for i := range consumers {
		consumers[i] = keytest.Signer(t)
		backing.limits[consumers[i].Address()] = big.NewInt(1e18)
	}
	boot := startQNodeWith(t, ctx, nil, t.TempDir(), backing, 0)
	nodes := []*qnode{boot}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 1; i < nNodes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd := startQNodeWith(t, ctx, []peer.AddrInfo{boot.node.AddrInfo()}, t.TempDir(), backing, 0)
			mu.Lock()
			nodes = append(nodes, nd)
			mu.Unlock()
		}()
	}
	wg.Wait()
	waitFor(t, "every node has report and proof topic peers", func() bool {
		for _, nd := range nodes {
			if len(nd.svc.rep.topic.ListPeers()) == 0 || len(nd.svc.topic.ListPeers()) == 0 || len(nd.disc.TopicPeers()) == 0 {
				return false
			}
		}
		return true
	})

	// Six providers on nodes 1..6; the bad ones are the cheapest.
	kinds := []provKind{kindGood, kindGood, kindGood, kindDropper, kindSlow, kindOvercharger}
	perGiB := []int64{9e17, 8e17, 7e17, 1e17, 2e17, 5e16}
	provs := make([]*identity.KeySigner, len(kinds))
	actx, acancel := context.WithCancel(ctx)
	var awg sync.WaitGroup
	defer func() { acancel(); awg.Wait() }()
	for i, k := range kinds {
		_ = k
		provs[i] = keytest.Signer(t)
		offer := market.Proposal{
			ChainID: testChain, ServiceType: market.ServiceWireGuard,
			Location: market.Location{Country: "NL", IPType: market.IPResidential},
			Price:    market.Price{PerHour: money.MustAmount(perHour), PerGiB: money.MustAmount(big.NewInt(perGiB[i]))},
			Hermes:   []common.Address{testHermes}, Access: market.AccessPolicy{Kind: market.AccessPublic},
		}
		ann, err := discovery.NewAnnouncer(nodes[1+i].disc, discovery.AnnouncerConfig{
			Proposal: offer, Signer: provs[i], Host: nodes[1+i].node.Host, TTL: 10 * time.Minute, Log: quietLog,
		})
		if err != nil {
			t.Fatal(err)
		}
		awg.Add(1)
		go func() { defer awg.Done(); _ = ann.Run(actx) }()
	}
	waitFor(t, "every node lists the six providers", func() bool {
		all := true
		for _, nd := range nodes {
			if nd.disc.Cache().Len() != len(provs) {
				all = false
				nd.disc.SyncConnected(ctx, 3) // as a node does on joining
			}
		}
		return all
	})
	priceOrder := boot.disc.Cache().Query(market.Filter{})
	if priceOrder[0].ProviderID != provs[5].Address() || priceOrder[5].ProviderID != provs[0].Address() {
		t.Fatal("the price order should put the bad providers first")
	}

	// The overcharger is caught: consumer 0's node builds the proof from
	// the proposal it saw and an invoice the overcharger signed.
	ocNode := nodes[7]
	ann, ok := ocNode.disc.Cache().Announcement(provs[5].Address())
	if !ok {
		t.Fatal("overcharger's proposal not cached")
	}
	u := payments.Usage{ProposalSeq: ann.Proposal.Proposal.Seq, ElapsedMs: 30_000, Bytes: 50 << 20}
	fairTotal := payments.PriceTotal(perHour, big.NewInt(perGiB[5]), u.Elapsed(), u.Bytes)
	inv := invoice(t, provs[5], provs[5].Address(), new(big.Int).Mul(fairTotal, big.NewInt(3)), &u)
	if _, err := ocNode.svc.ReportOvercharge(ctx, ann.Proposal, inv); err != nil {
		t.Fatal(err)
	}

	// Every consumer reports one session per provider.
	now := time.Now()
	for ci, c := range consumers {
		nd := nodes[7+ci%(nNodes-7)]
		for pi, k := range kinds {
			var sr SignedReport
			switch k {
			case kindGood:
				sr = report(t, c, provs[pi].Address(), now, OutcomeConnected, 2e15, 120+uint64(pi*10), 3_000_000)
			case kindSlow:
				sr = report(t, c, provs[pi].Address(), now, OutcomeConnected, 2e15, 2500, 20_000)
			case kindDropper:
				sr = report(t, c, provs[pi].Address(), now, OutcomeStalled, 1e14, 150, 500_000)
			case kindOvercharger:
				sr = report(t, c, provs[pi].Address(), now, OutcomeOvercharge, 0, 150, 0)
			}
			if err := nd.svc.PublishReport(ctx, sr); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // paced: no validation queue overflow
		}
	}
	ranked := func(nd *qnode) bool {
		ps := nd.disc.Cache().Query(market.Filter{Sort: market.SortQuality})
		if len(ps) != 5 {
			return false // the overcharger must be gone
		}
		good := map[common.Address]bool{provs[0].Address(): true, provs[1].Address(): true, provs[2].Address(): true}
		return good[ps[0].ProviderID] && good[ps[1].ProviderID] && good[ps[2].ProviderID]
	}
	deadline := time.Now().Add(propagation)
	for {
		bad := -1
		for i, nd := range nodes {
			if !nd.svc.Blocked(provs[5].Address()) || !ranked(nd) {
				bad = i
				break
			}
		}
		if bad < 0 {
			break
		}
		if time.Now().After(deadline) {
			nd := nodes[bad]
			for i, p := range provs {
				t.Logf("provider %d: %+v", i, nd.svc.Score(p.Address()))
			}
			t.Fatalf("node %d: blocked %v, listed %d, report stats %+v", bad, nd.svc.Blocked(provs[5].Address()),
				len(nd.disc.Cache().Query(market.Filter{})), nd.svc.ReportStats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := make([]Score, len(nodes))
	for i, nd := range nodes {
		before[i] = nd.svc.Score(provs[0].Address())
	}

	// Adversarial reports on honest provider 0 from a rogue peer.
	r := startRogue(t, ctx, boot.node.AddrInfo())
	attacker, unfunded := keytest.Signer(t), keytest.Signer(t)
	for i := 0; i < 10; i++ {
		sr := report(t, unfunded, provs[0].Address(), now, OutcomeUnreachable, 0, 0, 0)
		sr.Report.DurationMs = uint64(i)
		sr, _ = SignReport(sr.Report, unfunded)
		r.publishReport(t, ctx, sr)
	}
	replay := report(t, consumers[0], provs[0].Address(), now, OutcomeConnected, 2e15, 120, 3_000_000)
	for i := 0; i < 10; i++ {
		r.publishReport(t, ctx, replay) // consumer 0's honest report was already counted everywhere
	}
	// Forged last: every invalid message costs the rogue GossipSub score,
	// and after ten it is graylisted (its messages dropped unread).
	for i := 0; i < 10; i++ {
		forged := report(t, consumers[i], provs[0].Address(), now, OutcomeUnreachable, 0, 0, 0)
		d, _ := forged.Report.Digest()
		forged.Signature, _ = attacker.Sign(d[:])
		r.publishReport(t, ctx, forged)
	}
	st := func() uint64 {
		s := boot.svc.ReportStats()
		return s.Invalid + s.Unbacked + s.Stale
	}
	waitFor(t, "the rogue's neighbour judged its unbacked, replayed and first forged reports", func() bool { return st() >= 21 })
	time.Sleep(time.Second) // anything still in flight
	for i, nd := range nodes {
		// Only the 20 honest (successful) reports may count: any attack
		// report counted would add a failure or a 21st report.
		if g := nd.svc.Score(provs[0].Address()); g.Reports > nConsumers || g.SuccessRate != 1 || !ranked(nd) {
			t.Fatalf("node %d: honest provider's score moved from %+v to %+v", i, before[i], g)
		}
	}

	// A fresh node learns the blacklist on joining.
	fresh := startQNodeWith(t, ctx, []peer.AddrInfo{nodes[12].node.AddrInfo()}, t.TempDir(), backing, 0)
	waitFor(t, "a fresh node learns the blacklist", func() bool { return fresh.svc.Blocked(provs[5].Address()) })
}
