package quality

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// propagation bounds waits for gossip; generous for -race on 2 busy cores.
const propagation = 60 * time.Second

// qnode is one in-process node: libp2p host, discovery and the proof
// service wired as the node package wires them.
type qnode struct {
	node  *p2p.Node
	disc  *discovery.Service
	svc   *Service
	store *Store
	dir   string
	once  sync.Once
}

func startQNode(t *testing.T, ctx context.Context, boot []peer.AddrInfo, dir string) *qnode {
	t.Helper()
	return startQNodeWith(t, ctx, boot, dir, nil, 0)
}

func startQNodeWith(t *testing.T, ctx context.Context, boot []peer.AddrInfo, dir string, backing Backing, peerBurst int) *qnode {
	t.Helper()
	node, err := p2p.New(p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot, DHTMode: p2p.DHTServer, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(filepath.Join(dir, FileName))
	if err != nil {
		node.Close()
		t.Fatal(err)
	}
	n := &qnode{node: node, store: st, dir: dir}
	var svc *Service
	var mu sync.Mutex
	n.disc, err = discovery.New(node.Host, discovery.Config{
		ValidatorConfig: discovery.ValidatorConfig{ChainID: testChain, Blocked: st.Blocked,
			Quality: func(p common.Address) float64 {
				mu.Lock()
				defer mu.Unlock()
				if svc == nil {
					return 0
				}
				return svc.Score(p).Value
			},
			OnConflict: func(a, b market.SignedProposal) {
				mu.Lock()
				defer mu.Unlock()
				if svc != nil {
					svc.ReportConflict(a, b)
				}
			}},
		Bootstrapper: boot == nil, HeartbeatInterval: 100 * time.Millisecond, Log: quietLog,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{ChainID: testChain, Host: node.Host, PubSub: n.disc.PubSub(), Store: st, Log: quietLog, Backing: backing, ReportPeerBurst: peerBurst})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	svc, n.svc = s, s
	mu.Unlock()
	if boot != nil {
		if err := node.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(n.close)
	return n
}

func (n *qnode) close() {
	n.once.Do(func() {
		_ = n.svc.Close()
		_ = n.disc.Close()
		_ = n.node.Close()
		_ = n.store.Close()
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, propagation, what, cond)
}

func startQNet(t *testing.T, ctx context.Context, n int) []*qnode {
	boot := startQNode(t, ctx, nil, t.TempDir())
	nodes := []*qnode{boot}
	for i := 1; i < n; i++ {
		nodes = append(nodes, startQNode(t, ctx, []peer.AddrInfo{boot.node.AddrInfo()}, t.TempDir()))
	}
	waitFor(t, "every node has proof topic peers", func() bool {
		for _, nd := range nodes {
			if len(nd.svc.topic.ListPeers()) == 0 {
				return false
			}
		}
		return true
	})
	return nodes
}

func allBlock(nodes []*qnode, who common.Address) bool {
	for _, nd := range nodes {
		if !nd.svc.Blocked(who) {
			return false
		}
	}
	return true
}

// rogue is a libp2p node with a GossipSub router but no validators: it
// sends whatever it likes on the proposal and proof topics.
type rogue struct {
	node    *p2p.Node
	props   *pubsub.Topic
	proofs  *pubsub.Topic
	reports *pubsub.Topic
}

// publishReport publishes sr on the reports topic as the rogue, paced:
// GossipSub drops what overflows its validation queue (32), and the tests
// want every attack judged, not dropped.
func (r *rogue) publishReport(t *testing.T, ctx context.Context, sr SignedReport) {
	t.Helper()
	raw, err := sr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.reports.Publish(ctx, raw); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
}

func startRogue(t *testing.T, ctx context.Context, boot peer.AddrInfo) *rogue {
	t.Helper()
	node, err := p2p.New(p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: []peer.AddrInfo{boot}, DHTMode: p2p.DHTServer, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); node.Close() })
	ps, err := pubsub.NewGossipSub(rctx, node.Host, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign), pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	r := &rogue{node: node}
	if r.props, err = ps.Join(discovery.TopicName(testChain)); err != nil {
		t.Fatal(err)
	}
	if r.proofs, err = ps.Join(TopicName(testChain)); err != nil {
		t.Fatal(err)
	}
	if r.reports, err = ps.Join(ReportTopicName(testChain)); err != nil {
		t.Fatal(err)
	}
	if err := node.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rogue has topic peers", func() bool { return len(r.proofs.ListPeers()) > 0 && len(r.props.ListPeers()) > 0 })
	return r
}

// announcement returns an announcement of s for the rogue's peer.
func (r *rogue) announcement(t *testing.T, s identity.Signer, seq uint64, country string) []byte {
	t.Helper()
	now := time.Now()
	p := proposal(t, s, r.node.Host.ID(), seq, func(p *market.Proposal) {
		p.IssuedAt, p.ExpiresAt = now.Unix(), now.Add(10*time.Minute).Unix()
		p.Location.Country = country
	})
	b, err := p2p.NewBinding(s, testChain, r.node.Host.ID(), now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := discovery.Announcement{Proposal: signProposal(t, s, p), Binding: b}
	raw, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestBlacklistNetwork runs proofs through a small real libp2p network:
// an overcharge proof published by one node blacklists the provider on
// every node; a provider that equivocates on the proposal topic is caught
// by discovery and blacklisted everywhere and no longer listed; forged and
// junk proofs from a rogue peer are rejected and convict no one; a node
// joining afterwards learns the whole blacklist over SyncProtocol; and a
// restarted node keeps it.
func TestBlacklistNetwork(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodes := startQNet(t, ctx, 6)

	// 1. An overcharge proof from one consumer node reaches all.
	cheat := keytest.Signer(t)
	if _, err := nodes[3].svc.Publish(ctx, overchargeProof(t, cheat)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "overcharger blacklisted on every node", func() bool { return allBlock(nodes, cheat.Address()) })

	// 2. Equivocation on the proposal topic.
	r := startRogue(t, ctx, nodes[0].node.AddrInfo())
	liar := keytest.Signer(t)
	seq := uint64(time.Now().UnixMilli())
	first := r.announcement(t, liar, seq, "NL")
	// Re-announced every 2 s until every node lists it, as a provider's
	// announcer re-announces: the rogue is a bare GossipSub router whose
	// one publish can be lost for good (a topic peer learned from its
	// subscription while the rogue's own stream to it failed to open
	// under load has no outgoing queue, and the rogue serves no sync).
	// Nodes that hold it ignore the copies (stale, no penalty). At most
	// 5 copies: the equivocation and the next proposal must stay within
	// the validator's per-origin burst (8).
	var published time.Time
	copies := 0
	waitFor(t, "the liar's first proposal is listed", func() bool {
		if copies < 5 && time.Since(published) > 2*time.Second {
			if err := r.props.Publish(ctx, first); err != nil {
				t.Fatal(err)
			}
			published, copies = time.Now(), copies+1
		}
		for _, nd := range nodes {
			if _, ok := nd.disc.Cache().Get(liar.Address()); !ok {
				return false
			}
		}
		return true
	})
	if err := r.props.Publish(ctx, r.announcement(t, liar, seq, "DE")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "equivocating provider blacklisted on every node", func() bool { return allBlock(nodes, liar.Address()) })
	for i, nd := range nodes {
		if _, ok := nd.disc.Cache().Get(liar.Address()); ok {
			t.Fatalf("node %d still lists the blacklisted provider", i)
		}
	}
	// Its next, higher proposal is not listed either.
	if err := r.props.Publish(ctx, r.announcement(t, liar, seq+1, "FR")); err != nil {
		t.Fatal(err)
	}

	// 3. Forged and junk proofs from the rogue convict no one.
	victim, reporter := keytest.Signer(t), keytest.Signer(t)
	honest := signProposal(t, victim, proposal(t, victim, keytest.PeerID(t), 5, nil))
	forged := Proof{Kind: KindConflict, Proposals: ordered(t, honest,
		signProposal(t, reporter, proposal(t, victim, keytest.PeerID(t), 5, func(p *market.Proposal) { p.Location.Country = "DE" })))}
	forgedRaw, _ := forged.Encode()
	for _, junk := range [][]byte{forgedRaw, []byte(`{"v":1}`), make([]byte, MaxProofSize+1)} {
		if err := r.proofs.Publish(ctx, junk); err != nil {
			t.Fatal(err)
		}
	}
	// Rejected by whichever nodes the rogue's publish reached directly
	// (nobody forwards an invalid proof): not necessarily its bootstrap
	// node, whose stream from the rogue may have failed to open (the
	// go-libp2p-pubsub gap above) while another works.
	waitFor(t, "the rogue's proofs are rejected by its neighbours", func() bool {
		invalid := uint64(0)
		for _, nd := range nodes {
			invalid += nd.svc.Stats().Invalid
		}
		return invalid >= 3
	})
	// A marker proof sent after the junk shows the junk had its chance.
	marker := keytest.Signer(t)
	mp := overchargeProof(t, marker)
	markerRaw, _ := mp.Encode()
	if err := r.proofs.Publish(ctx, markerRaw); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a valid proof from the rogue still spreads", func() bool { return allBlock(nodes, marker.Address()) })
	for i, nd := range nodes {
		if nd.svc.Blocked(victim.Address()) || nd.svc.Blocked(reporter.Address()) {
			t.Fatalf("node %d blacklisted on a forged proof", i)
		}
		if _, ok := nd.disc.Cache().Get(liar.Address()); ok {
			t.Fatalf("node %d lists the blacklisted provider's newer proposal", i)
		}
	}

	// 4. A late joiner learns everything over sync.
	fresh := startQNode(t, ctx, []peer.AddrInfo{nodes[2].node.AddrInfo()}, t.TempDir())
	waitFor(t, "a fresh node learns the blacklist", func() bool {
		return fresh.svc.Blocked(cheat.Address()) && fresh.svc.Blocked(liar.Address()) && fresh.svc.Blocked(marker.Address())
	})
	if n := fresh.store.Len(); n != 3 {
		t.Fatalf("fresh node holds %d proofs, want 3", n)
	}

	// 5. A restarted node keeps its blacklist.
	dir := nodes[4].dir
	nodes[4].close()
	st, err := OpenStore(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, who := range []common.Address{cheat.Address(), liar.Address(), marker.Address()} {
		if !st.Blocked(who) {
			t.Fatalf("restarted node forgot %s", who.Hex())
		}
	}
}
