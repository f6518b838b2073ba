package discovery

import (
	"bytes"
	"context"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/transport/quicreuse.(*reuse).gc"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p-kad-dht/internal/net.(*peerMessageSender).ctxReadMsg"),
	)
}

// runAnnouncer runs an announcer until the returned stop is called; stop
// waits for Run (and its withdrawal) to finish.
func runAnnouncer(t *testing.T, ctx context.Context, a *Announcer) (stop func()) {
	t.Helper()
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("announcer: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func allHold(nodes []*testNode, pred func(*testNode) bool) bool {
	for _, n := range nodes {
		if !pred(n) {
			return false
		}
	}
	return true
}

// TestNetwork runs the scenarios on one 20-node loopback network in
// which every node only knows the bootstrap node.
func TestNetwork(t *testing.T) {
	ctx := testenv.Long(t, "20-node network test; skipped with -short", 4*time.Minute)
	net := startNet(t, ctx, 20, netOpts{})

	prov := net.nodes[7]
	provID := keytest.Signer(t)
	ann, err := NewAnnouncer(prov.svc, AnnouncerConfig{
		// The TTL is long enough that the announcer never re-announces
		// (every TTL/3) within ctx: an unplanned re-announcement would
		// reach the late joiner before its sync and count as one more
		// accepted message at every node in the rate-limit check.
		Proposal: offer(t, "DE", "0.2"), Signer: provID, Host: prov.node.Host, TTL: 15 * time.Minute, Log: quietLog,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopProv := runAnnouncer(t, ctx, ann)
	priceIs := func(gib string) func(*testNode) bool {
		want := mystAmount(t, gib)
		return func(n *testNode) bool {
			p, ok := n.svc.Cache().Get(provID.Address())
			return ok && p.Price.PerGiB.Cmp(want) == 0
		}
	}

	t.Run("proposal reaches every node", func(t *testing.T) {
		testenv.WaitFor(t, propagation, "all 20 nodes hold the proposal", func() bool { return allHold(net.nodes, priceIs("0.2")) })
		got := net.nodes[19].svc.Cache().Query(market.Filter{Country: "DE", IPType: market.IPResidential})
		if len(got) != 1 || got[0].PeerID != prov.node.ID().String() || len(got[0].Addrs) == 0 {
			t.Fatalf("query on a consumer: %+v", got)
		}
		if n := len(net.nodes[19].svc.Cache().Query(market.Filter{Country: "FR"})); n != 0 {
			t.Fatalf("country filter FR returned %d", n)
		}
	})

	t.Run("update replaces the old proposal", func(t *testing.T) {
		ann.Update(offer(t, "DE", "0.15"))
		testenv.WaitFor(t, propagation, "all nodes hold the new price", func() bool { return allHold(net.nodes, priceIs("0.15")) })
		for _, n := range net.nodes {
			if l := n.svc.Cache().Len(); l != 1 {
				t.Fatalf("cache holds %d proposals, want 1 (old one replaced)", l)
			}
		}
	})

	t.Run("late joiner syncs and finds the provider in the DHT", func(t *testing.T) {
		// Wait out the gossip window of the update (its id is offered
		// in IHAVE for historyGossip heartbeats): a joiner started within
		// it pulls the proposal through gossip (IWANT) before its sync,
		// which then rightly finds nothing new.
		time.Sleep((historyGossip + 2) * pubsub.DefaultGossipSubParams().HeartbeatInterval)
		late := startNode(t, ctx, net.info, netOpts{})
		defer late.close()
		if n := late.svc.SyncConnected(ctx, 3); n != 1 {
			t.Fatalf("sync pulled %d new proposals, want 1", n)
		}
		p, ok := late.svc.Cache().Get(provID.Address())
		if !ok || p.Price.PerGiB.Cmp(mystAmount(t, "0.15")) != 0 {
			t.Fatalf("late joiner has %+v, %v", p, ok)
		}
		pid, err := p.Peer()
		if err != nil {
			t.Fatal(err)
		}
		// Forget the provider so its addresses can only come from a lookup.
		_ = late.node.Host.Network().ClosePeer(pid)
		late.node.DHT.RoutingTable().RemovePeer(pid)
		late.node.Host.Peerstore().ClearAddrs(pid)
		pi, err := late.node.FindPeer(ctx, pid)
		if err != nil {
			t.Fatalf("DHT lookup of the proposal's peer: %v", err)
		}
		if err := late.node.Host.Connect(ctx, pi); err != nil {
			t.Fatalf("connect to provider: %v", err)
		}
	})

	t.Run("forged and invalid messages are dropped at every node and counted", func(t *testing.T) {
		forgedAtEveryNode(t, ctx, net, ann)
		if !allHold(net.nodes, priceIs("0.15")) {
			t.Fatal("forgeries disturbed the real proposal")
		}
	})

	t.Run("per-origin rate limit", func(t *testing.T) {
		rateLimitedAtEveryNode(t, ctx, net)
	})

	t.Run("clean stop withdraws", func(t *testing.T) {
		stopProv()
		testenv.WaitFor(t, propagation, "all nodes drop the withdrawn proposal", func() bool {
			return allHold(net.nodes, func(n *testNode) bool {
				_, live := n.svc.Cache().Get(provID.Address())
				_, tomb := n.svc.Cache().Seq(provID.Address())
				return !live && tomb
			})
		})
	})

	t.Run("crashed provider's proposal disappears after expiry", func(t *testing.T) {
		crash := net.nodes[11]
		crashID := keytest.Signer(t)
		const ttl = 4 * time.Second
		a, err := NewAnnouncer(crash.svc, AnnouncerConfig{
			Proposal: offer(t, "US", "0.3"), Signer: crashID, Host: crash.node.Host, TTL: ttl, Log: quietLog,
		})
		if err != nil {
			t.Fatal(err)
		}
		stop := runAnnouncer(t, ctx, a)
		others := append(append([]*testNode{}, net.nodes[:11]...), net.nodes[12:]...)
		has := func(n *testNode) bool { _, ok := n.svc.Cache().Get(crashID.Address()); return ok }
		testenv.WaitFor(t, propagation, "all nodes hold the short-lived proposal", func() bool { return allHold(others, has) })
		// Crash: the node goes away without publishing a withdrawal.
		crash.close()
		stop()
		expiry := make([]int64, len(others))
		for i, n := range others {
			if p, ok := n.svc.Cache().Get(crashID.Address()); ok {
				expiry[i] = p.ExpiresAt
			}
		}
		gone := make([]bool, len(others))
		testenv.WaitFor(t, ttl+propagation, "all nodes drop the expired proposal", func() bool {
			all := true
			for i, n := range others {
				if gone[i] {
					continue
				}
				if has(n) {
					all = false
					continue
				}
				gone[i] = true
				// It left because it expired, not for any other reason.
				if now := time.Now().Unix(); now < expiry[i] {
					t.Errorf("node %d dropped the proposal at %d, before its expiry %d", i, now, expiry[i])
				}
			}
			return all
		})
	})
}

// forger is a libp2p peer that publishes raw bytes on the proposal topic
// with no validator of its own.
type forger struct {
	node   *p2p.Node
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	cancel context.CancelFunc
}

func newForger(t *testing.T, ctx context.Context, net *testNet) *forger {
	t.Helper()
	node, err := p2p.New(p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, DHTMode: p2p.DHTClient, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	f := &forger{node: node, cancel: cancel}
	t.Cleanup(func() {
		if f.topic != nil {
			_ = f.topic.Close()
		}
		cancel()
		_ = node.Close()
	})
	if f.ps, err = pubsub.NewGossipSub(pctx, node.Host, pubsub.WithMaxMessageSize(64<<10), pubsub.WithFloodPublish(true)); err != nil {
		t.Fatal(err)
	}
	if f.topic, err = f.ps.Join(TopicName(testChain)); err != nil {
		t.Fatal(err)
	}
	// Connect to every node so flood publishing hands each one every
	// forgery directly (honest nodes never forward them).
	for _, n := range net.nodes {
		var err error
		dctx := ctx
		for try := 0; try < 3; try++ { // handshakes can time out on a loaded machine
			if err = node.Host.Connect(dctx, n.node.AddrInfo()); err == nil {
				break
			}
			// A failed dial puts the peer in the swarm's dial backoff,
			// which would fail the retry at once ("dial backoff").
			dctx = network.WithForceDirectDial(ctx, "test retry")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, propagation, "forger sees every node on the topic", func() bool { return len(f.topic.ListPeers()) == len(net.nodes) })
	return f
}

func (f *forger) publish(t *testing.T, ctx context.Context, raw []byte) {
	t.Helper()
	if err := f.topic.Publish(ctx, raw); err != nil {
		t.Fatal(err)
	}
}

// signedBy builds a valid-looking announcement for signer bound to pid,
// letting mut change the proposal before signing.
func signedBy(t testing.TB, signer identity.Signer, pid peer.ID, now time.Time, mut func(p *market.Proposal, b *p2p.Binding)) []byte {
	t.Helper()
	p := offer(t, "NL", "0.01")
	p.Version = market.ProposalVersion
	p.ProviderID = signer.Address()
	p.PeerID = pid.String()
	p.Seq = uint64(now.UnixMilli())
	p.IssuedAt = now.Unix()
	p.ExpiresAt = now.Add(time.Minute).Unix()
	bindNow, chain := now, uint64(testChain)
	b := p2p.Binding{ChainID: chain}
	if mut != nil {
		mut(&p, &b)
	}
	if b.IssuedAt != 0 {
		bindNow = time.Unix(b.IssuedAt, 0)
	}
	binding, err := p2p.NewBinding(signer, b.ChainID, pid, bindNow, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(d[:])
	if err != nil {
		t.Fatal(err)
	}
	a := Announcement{Proposal: market.SignedProposal{Proposal: p, Signature: sig}, Binding: binding}
	raw, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func forgedAtEveryNode(t *testing.T, ctx context.Context, net *testNet, real *Announcer) {
	f := newForger(t, ctx, net)
	fid := keytest.Signer(t)
	pid := f.node.ID()
	now := time.Now()
	before := make([]Stats, len(net.nodes))
	for i, n := range net.nodes {
		before[i] = n.svc.Stats()
	}

	// A real provider's fresh, valid announcement replayed by the forger.
	replay, _, err := real.Build(false)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner := keytest.Signer(t)
	forgedSig := signedBy(t, fid, pid, now, nil)
	{
		// Re-sign the proposal with a different key: signature mismatch.
		var a Announcement
		a, _, err = DecodeAnnouncement(forgedSig)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := a.Proposal.Proposal.Digest()
		a.Proposal.Signature, _ = otherSigner.Sign(d[:])
		if forgedSig, err = a.Encode(); err != nil {
			t.Fatal(err)
		}
	}
	valid := signedBy(t, fid, pid, now, nil)
	msgs := map[Reason][]byte{
		ReasonSignature: forgedSig,
		ReasonBinding:   replay,
		ReasonExpired: signedBy(t, fid, pid, now, func(p *market.Proposal, b *p2p.Binding) {
			p.IssuedAt, p.ExpiresAt = now.Add(-20*time.Minute).Unix(), now.Add(-10*time.Minute).Unix()
		}),
		ReasonFuture: signedBy(t, fid, pid, now, func(p *market.Proposal, b *p2p.Binding) {
			p.IssuedAt, p.ExpiresAt = now.Add(10*time.Minute).Unix(), now.Add(20*time.Minute).Unix()
		}),
		ReasonWrongChain: signedBy(t, fid, pid, now, func(p *market.Proposal, b *p2p.Binding) { p.ChainID, b.ChainID = 999, 999 }),
		ReasonOversized:  append(bytes.Repeat([]byte(" "), MaxMessageSize), valid...),
		ReasonMalformed:  []byte(`{"v":1,"proposal":{"version":1},"binding":{}}`),
		ReasonVersion:    bytes.Replace(valid, []byte(`{"v":1,`), []byte(`{"v":2,`), 1),
	}
	for r, raw := range msgs {
		if _, got, _ := DecodeAnnouncement(raw); got == ReasonAccepted && r != ReasonBinding && r != ReasonExpired && r != ReasonFuture && r != ReasonWrongChain {
			t.Fatalf("%s forgery decodes fine; the test is broken", r)
		}
		f.publish(t, ctx, raw)
	}
	count := func(s Stats, r Reason) uint64 {
		return map[Reason]uint64{
			ReasonSignature: s.Signature, ReasonBinding: s.Binding, ReasonExpired: s.Expired, ReasonFuture: s.Future,
			ReasonWrongChain: s.WrongChain, ReasonOversized: s.Oversized, ReasonMalformed: s.Malformed, ReasonVersion: s.Version,
		}[r]
	}
	testenv.WaitFor(t, propagation, "every node counts every forgery", func() bool {
		return allHold(net.nodes, func(n *testNode) bool {
			s := n.svc.Stats()
			for r := range msgs {
				if count(s, r) < 1 {
					return false
				}
			}
			return true
		})
	})
	// Each node got each forgery once, straight from the forger: nobody
	// forwarded one.
	for i, n := range net.nodes {
		after := n.svc.Stats()
		for r := range msgs {
			if d := count(after, r) - count(before[i], r); d != 1 {
				t.Errorf("node %d counted %d %s forgeries, want 1", i, d, r)
			}
		}
		if after.Accepted != before[i].Accepted {
			t.Errorf("node %d accepted something during the forgery run", i)
		}
		if _, ok := n.svc.Cache().Seq(fid.Address()); ok {
			t.Errorf("node %d cached the forger's proposal", i)
		}
	}
	testenv.WaitFor(t, propagation, "every node lowered the forger's score", func() bool {
		return allHold(net.nodes, func(n *testNode) bool {
			s, ok := n.svc.PeerScore(pid)
			return ok && s < 0
		})
	})
}

func rateLimitedAtEveryNode(t *testing.T, ctx context.Context, net *testNet) {
	f := newForger(t, ctx, net)
	fid := keytest.Signer(t)
	before := make([]Stats, len(net.nodes))
	for i, n := range net.nodes {
		before[i] = n.svc.Stats()
	}
	const sent, burst = 12, 8 // burst is the default RateBurst
	base := time.Now()
	for i := 0; i < sent; i++ {
		f.publish(t, ctx, signedBy(t, fid, f.node.ID(), base, func(p *market.Proposal, _ *p2p.Binding) { p.Seq += uint64(i) }))
	}
	testenv.WaitFor(t, propagation, "every node validated all messages", func() bool {
		for i, n := range net.nodes {
			s := n.svc.Stats()
			passed := (s.Accepted + s.Stale) - (before[i].Accepted + before[i].Stale)
			if s.RateLimited-before[i].RateLimited+passed < sent {
				return false
			}
			// Accepted messages reach the cache just after validation.
			if _, ok := n.svc.Cache().Get(fid.Address()); !ok {
				return false
			}
		}
		return true
	})
	for i, n := range net.nodes {
		s := n.svc.Stats()
		if got := s.RateLimited - before[i].RateLimited; got != sent-burst {
			t.Errorf("node %d rate-limited %d messages, want %d", i, got, sent-burst)
		}
		if got := (s.Accepted + s.Stale) - (before[i].Accepted + before[i].Stale); got != burst {
			t.Errorf("node %d let %d messages through the limiter, want %d", i, got, burst)
		}
		if s.Rejected() != before[i].Rejected() {
			t.Errorf("node %d rejected (penalised) a rate-limited origin", i)
		}
		if _, ok := n.svc.Cache().Get(fid.Address()); !ok {
			t.Errorf("node %d lacks the origin's valid proposal", i)
		}
	}
}
