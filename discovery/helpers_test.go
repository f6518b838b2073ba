package discovery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/p2p"
)

const testChain = 1337

// propagation bounds how long the network tests wait for something to
// spread. Normally it takes well under a second; the bound is generous
// for the race detector on a loaded 2-core machine.
const propagation = 60 * time.Second

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func mystAmount(t testing.TB, s string) money.Amount {
	t.Helper()
	a, err := money.ParseMYSTAmount(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var testHermes = common.HexToAddress("0x00000000000000000000000000000000000000aa")

// offer is a proposal template as a provider would configure it.
func offer(t testing.TB, country string, perGiB string) market.Proposal {
	return market.Proposal{
		ChainID:     testChain,
		ServiceType: market.ServiceWireGuard,
		Location:    market.Location{Country: country, IPType: market.IPResidential},
		Price:       market.Price{PerHour: mystAmount(t, "0.01"), PerGiB: mystAmount(t, perGiB)},
		Hermes:      []common.Address{testHermes},
		Access:      market.AccessPolicy{Kind: market.AccessPublic},
	}
}

// testNode is one in-process node: libp2p host, DHT and discovery.
type testNode struct {
	node *p2p.Node
	svc  *Service
}

func (n *testNode) close() {
	_ = n.svc.Close()
	_ = n.node.Close()
}

type netOpts struct {
	rateBurst    int
	rateInterval time.Duration
}

// startNode starts a loopback node bootstrapping from boot (nil: it is the
// bootstrap node itself).
func startNode(t testing.TB, ctx context.Context, boot []peer.AddrInfo, o netOpts) *testNode {
	t.Helper()
	n, err := startNodeErr(ctx, boot, o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func startNodeErr(ctx context.Context, boot []peer.AddrInfo, o netOpts) (*testNode, error) {
	node, err := p2p.New(p2p.Config{
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		Bootstrap:   boot,
		DHTMode:     p2p.DHTServer,
		Log:         quietLog,
	})
	if err != nil {
		return nil, err
	}
	cfg := Config{
		ValidatorConfig: ValidatorConfig{ChainID: testChain, RateBurst: o.rateBurst, RateInterval: o.rateInterval},
		Log:             quietLog,
		Bootstrapper:    boot == nil,
	}
	svc, err := New(node.Host, cfg)
	if err != nil {
		node.Close()
		return nil, err
	}
	if boot != nil {
		if err := node.Bootstrap(ctx); err != nil {
			svc.Close()
			node.Close()
			return nil, err
		}
	}
	return &testNode{node: node, svc: svc}, nil
}

// testNet is a bootstrap node plus n-1 nodes that only know the bootstrap.
type testNet struct {
	boot  *testNode
	nodes []*testNode // nodes[0] is the bootstrap
	info  []peer.AddrInfo
}

func startNet(t testing.TB, ctx context.Context, n int, o netOpts) *testNet {
	t.Helper()
	boot := startNode(t, ctx, nil, o)
	net := &testNet{boot: boot, nodes: []*testNode{boot}, info: []peer.AddrInfo{boot.node.AddrInfo()}}
	t.Cleanup(net.close)
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	nodes := make([]*testNode, n-1)
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd, err := startNodeErr(ctx, net.info, o)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("node %d: %w", i, err))
				return
			}
			nodes[i] = nd
		}()
	}
	wg.Wait()
	for _, nd := range nodes {
		if nd != nil {
			net.nodes = append(net.nodes, nd)
		}
	}
	if len(errs) > 0 || len(net.nodes) != n {
		t.Fatalf("starting nodes: %v", errs)
	}
	// Wait until every node sees at least one other topic member, so a
	// publish can reach it.
	testenv.WaitFor(t, propagation, "every node has topic peers", func() bool {
		for _, nd := range net.nodes {
			if len(nd.svc.TopicPeers()) == 0 {
				return false
			}
		}
		return true
	})
	return net
}

func (n *testNet) close() {
	var wg sync.WaitGroup
	for _, nd := range n.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); nd.close() }()
	}
	wg.Wait()
}
