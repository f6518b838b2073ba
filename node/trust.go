package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/quality"
	sconsumer "github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong"
)

// Trust is a node's fraud-proof blacklist (package quality): the durable
// store in <dataDir>/blacklist.db, the proof gossip and sync, and the
// discovery hooks that hide convicted providers and report equivocating
// ones.
type Trust struct {
	Store   *quality.Store
	Service *quality.Service
	log     *slog.Logger

	reports chan quality.SignedReport // queued for publishing
	cancel  context.CancelFunc
	done    chan struct{}
}

// reportQueue bounds the reports waiting to be published; more are dropped.
const reportQueue = 64

// startDiscovery starts proposal gossip on h together with the node's
// blacklist: discovery never lists a provider the blacklist holds, and a
// provider that signs two proposals with one sequence number is convicted
// network-wide.
//
// With backing (the chain's view of consumers' channels) quality reports
// are on too: the node counts payment-backed reports into scores that
// GET /proposals?sort=quality uses, and its consumer publishes its own.
func startDiscovery(h host.Host, cfg discovery.Config, dataDir string, backing quality.Backing) (_ *discovery.Service, _ *Trust, err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("node: %w", err)
	}
	st, err := quality.OpenStore(filepath.Join(dataDir, quality.FileName))
	if err != nil {
		return nil, nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	t := &Trust{Store: st, log: log}
	var svc atomic.Pointer[quality.Service] // set once the topic is joined
	cfg.Blocked = st.Blocked
	cfg.OnConflict = func(a, b market.SignedProposal) {
		if s := svc.Load(); s != nil {
			s.ReportConflict(a, b)
		}
	}
	cfg.Quality = func(p common.Address) float64 {
		if s := svc.Load(); s != nil {
			return s.Score(p).Value
		}
		return 0
	}
	d, err := discovery.New(h, cfg)
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	if t.Service, err = quality.New(quality.Config{ChainID: cfg.ChainID, Host: h, PubSub: d.PubSub(), Store: st, Log: log, Backing: backing}); err != nil {
		_ = d.Close()
		_ = st.Close()
		return nil, nil, err
	}
	svc.Store(t.Service)
	if backing != nil {
		ctx, cancel := context.WithCancel(context.Background())
		t.reports, t.cancel, t.done = make(chan quality.SignedReport, reportQueue), cancel, make(chan struct{})
		go t.publish(ctx)
	}
	return d, t, nil
}

// publish sends queued reports until ctx ends.
func (t *Trust) publish(ctx context.Context) {
	defer close(t.done)
	for {
		select {
		case <-ctx.Done():
			return
		case sr := <-t.reports:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := t.Service.PublishReport(pctx, sr); err != nil {
				t.log.Debug("quality: publish report", "provider", sr.Report.Provider.Hex(), "err", err)
			}
			cancel()
		}
	}
}

// Reporter returns a consumer.Config.OnResult that signs a quality report
// for every attempt and session of consumer (paying through hermes on
// chainID) and queues it for publishing. Nil when reports are off.
func (t *Trust) Reporter(consumer identity.Signer, chainID uint64, hermes common.Address) func(sconsumer.Result) {
	if t == nil || t.reports == nil {
		return nil
	}
	return func(res sconsumer.Result) {
		sr, err := quality.SignReport(ReportFor(res, consumer.Address(), chainID, hermes, time.Now()), consumer)
		if err != nil {
			t.log.Warn("quality: sign report", "err", err)
			return
		}
		select {
		case t.reports <- sr:
		default:
			t.log.Debug("quality: report queue full; report dropped")
		}
	}
}

// ReportFor turns what a consumer measured into a quality report (not
// signed): the outcome from where and why it ended, connect time, a
// throughput sample and, when something was paid, the latest exchange
// message as evidence.
func ReportFor(res sconsumer.Result, consumer common.Address, chainID uint64, hermes common.Address, now time.Time) quality.Report {
	r := quality.Report{
		Version: quality.ReportVersion, ChainID: chainID, Consumer: consumer, Provider: res.Proposal.ProviderID, Hermes: hermes,
		ProposalSeq: res.Proposal.Seq, DurationMs: uint64(max(res.Duration, 0) / time.Millisecond), Bytes: res.Bytes,
		Paid: money.MustAmount(new(big.Int)), IssuedAt: now.Unix(),
	}
	switch res.Stage {
	case sconsumer.StageConnect:
		r.Outcome = quality.OutcomeUnreachable
	case sconsumer.StageRequest:
		r.Outcome = quality.OutcomeRefused
	case sconsumer.StageTunnel:
		r.Outcome = quality.OutcomeHandshakeTimeout
	default:
		switch {
		case res.Err == nil:
			r.Outcome = quality.OutcomeConnected
		case errors.Is(res.Err, pingpong.ErrOvercharge):
			r.Outcome = quality.OutcomeOvercharge
		default:
			r.Outcome = quality.OutcomeStalled
		}
		r.ConnectMs = max(uint64(res.TunnelUp/time.Millisecond), 1)
		if r.DurationMs > 0 {
			r.Throughput = res.Bytes * 1000 / r.DurationMs
		}
	}
	if res.Paid != nil && res.Paid.Sign() > 0 && res.Exchange != nil {
		r.Paid, r.Evidence = money.MustAmount(res.Paid), res.Exchange
	}
	return r
}

// Close stops the proof service and closes the store (discovery is
// closed by its owner).
func (t *Trust) Close() error {
	if t == nil {
		return nil
	}
	if t.cancel != nil {
		t.cancel()
		<-t.done
	}
	return errors.Join(t.Service.Close(), t.Store.Close())
}

// SignedProposal returns the signed proposal of provider with sequence
// number seq from the discovery cache, for a consumer to keep with its
// session (consumer.Config.SignedProposal).
func signedProposal(d *discovery.Service) func(common.Address, uint64) (market.SignedProposal, bool) {
	return func(provider common.Address, seq uint64) (market.SignedProposal, bool) {
		a, ok := d.Cache().Announcement(provider)
		if !ok || a.Proposal.Proposal.Seq != seq {
			return market.SignedProposal{}, false
		}
		return a.Proposal, true
	}
}

// ReportOvercharge publishes the fraud proof for an invoice the consumer
// refused, when the invoice proves the overcharge by itself; otherwise it
// only logs (the provider lied about time or bytes, which others cannot
// check).
func (t *Trust) ReportOvercharge(ctx context.Context, sp market.SignedProposal, inv *payments.Invoice) {
	if t == nil {
		return
	}
	provider, err := t.Service.ReportOvercharge(ctx, sp, inv)
	if err != nil {
		t.log.Warn("quality: overcharge not provable to others", "provider", sp.Proposal.ProviderID.Hex(), "err", err)
		return
	}
	t.log.Warn("quality: fraud proof published", "provider", provider.Hex(), "kind", quality.KindOvercharge)
}

// chainBacking answers quality.Backing from the chain: a consumer's
// channel with a hermes and what it can pay (balance plus settled).
// Answers, negative ones included, are cached for backingTTL, at most
// maxBacked consumers, so a flood of reports costs few RPCs.
type chainBacking struct {
	client func(ctx context.Context) (*chain.Client, error)

	mu    sync.Mutex
	cache map[[2]common.Address]backed
}

type backed struct {
	id    [32]byte
	limit *big.Int
	at    time.Time
}

const (
	backingTTL = 10 * time.Minute
	maxBacked  = 10000
)

// newChainBacking returns a Backing reading the chain through client.
func newChainBacking(client func(ctx context.Context) (*chain.Client, error)) *chainBacking {
	return &chainBacking{client: client, cache: map[[2]common.Address]backed{}}
}

// ChannelLimit implements quality.Backing.
func (b *chainBacking) ChannelLimit(ctx context.Context, consumer, hermes common.Address) ([32]byte, *big.Int, error) {
	key := [2]common.Address{consumer, hermes}
	now := time.Now()
	b.mu.Lock()
	e, ok := b.cache[key]
	b.mu.Unlock()
	if ok && now.Sub(e.at) < backingTTL {
		return e.id, e.limit, nil
	}
	cl, err := b.client(ctx)
	if err != nil {
		return [32]byte{}, nil, err
	}
	addr := cl.ChannelAddress(consumer, hermes)
	limit, err := channelLimit(ctx, cl, addr)
	if err != nil {
		return [32]byte{}, nil, err
	}
	e = backed{id: payments.ConsumerChannelID(addr), limit: limit, at: now}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.cache) >= maxBacked {
		for k, v := range b.cache {
			if now.Sub(v.at) >= backingTTL {
				delete(b.cache, k)
			}
		}
	}
	if len(b.cache) < maxBacked {
		b.cache[key] = e
	}
	return e.id, e.limit, nil
}
