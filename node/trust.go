package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/quality"
)

// Trust is a node's fraud-proof blacklist (package quality): the durable
// store in <dataDir>/blacklist.db, the proof gossip and sync, and the
// discovery hooks that hide convicted providers and report equivocating
// ones.
type Trust struct {
	Store   *quality.Store
	Service *quality.Service
	log     *slog.Logger
}

// startDiscovery starts proposal gossip on h together with the node's
// blacklist: discovery never lists a provider the blacklist holds, and a
// provider that signs two proposals with one sequence number is convicted
// network-wide.
func startDiscovery(h host.Host, cfg discovery.Config, dataDir string) (_ *discovery.Service, _ *Trust, err error) {
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
	d, err := discovery.New(h, cfg)
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	if t.Service, err = quality.New(quality.Config{ChainID: cfg.ChainID, Host: h, PubSub: d.PubSub(), Store: st, Log: log}); err != nil {
		_ = d.Close()
		_ = st.Close()
		return nil, nil, err
	}
	svc.Store(t.Service)
	return d, t, nil
}

// Close stops the proof service and closes the store (discovery is
// closed by its owner).
func (t *Trust) Close() error {
	if t == nil {
		return nil
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
