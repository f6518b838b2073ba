package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/tequilapi"
)

// ProposalsQuery configures CollectProposals.
type ProposalsQuery struct {
	// ListenAddrs and Bootstrap (multiaddrs, at least one peer) configure
	// the temporary p2p node.
	ListenAddrs, Bootstrap []string
	// ChainID is the chain whose proposals to accept.
	ChainID uint64
	// Wait is how long to listen, in (0, 5m].
	Wait time.Duration
	// Filter selects and orders the result.
	Filter market.Filter
	// Log receives events (default slog.Default()).
	Log *slog.Logger
}

// CollectProposals runs a temporary consumer node: it bootstraps, pulls
// the current proposals from its peers, listens on the topic for q.Wait
// and returns the matches.
func CollectProposals(ctx context.Context, q ProposalsQuery) ([]market.Proposal, error) {
	log := q.Log
	if log == nil {
		log = slog.Default()
	}
	if q.Wait <= 0 || q.Wait > 5*time.Minute {
		return nil, errors.New("--wait " + q.Wait.String() + ": want (0, 5m]")
	}
	boot, err := p2p.ParseBootstrap(q.Bootstrap)
	if err != nil {
		return nil, err
	}
	if len(boot) == 0 {
		return nil, errors.New("no --p2p.bootstrap peers: give at least one peer of the network")
	}
	node, err := p2p.New(p2p.Config{ListenAddrs: q.ListenAddrs, Bootstrap: boot, DHTMode: p2p.DHTClient, Log: log})
	if err != nil {
		return nil, err
	}
	defer node.Close()
	svc, err := discovery.New(node.Host, discovery.Config{ValidatorConfig: discovery.ValidatorConfig{ChainID: q.ChainID}, Log: log})
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	deadline, cancel := context.WithTimeout(ctx, q.Wait)
	defer cancel()
	if err := node.Bootstrap(deadline); err != nil {
		return nil, err
	}
	n := svc.SyncConnected(deadline, 3)
	log.Debug("proposals pulled from peers", "new", n)
	<-deadline.Done()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s := svc.Stats(); s.Rejected() > 0 {
		log.Info("invalid proposals dropped", "count", s.Rejected())
	}
	return svc.Cache().Query(q.Filter), nil
}

// Proposals lists the proposals matching q.Filter: the running daemon's
// view, with its quality scores, when one runs for the data dir and
// q.Bootstrap is empty; else those a short-lived node collects
// (CollectProposals; it has no scores, so a quality sort falls back to
// price and note is told).
func (l *Local) Proposals(ctx context.Context, q ProposalsQuery, note io.Writer) ([]tequilapi.ListedProposal, error) {
	if c, err := l.Daemon(ctx); err == nil && len(q.Bootstrap) == 0 {
		return c.Proposals(ctx, q.Filter)
	}
	if q.Filter.Sort == market.SortQuality {
		fmt.Fprintln(note, "note: no daemon asked (none running, or --p2p.bootstrap given): this short-lived node has no quality scores; sorted by price")
	}
	if q.Log == nil {
		q.Log = l.log()
	}
	ps, err := CollectProposals(ctx, q)
	return tequilapi.Listed(ps, nil), err
}
