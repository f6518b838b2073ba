package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/retry"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong"
)

// The reconnect policy, one implementation for the daemon's connections
// (ConnectionAPI) and `myst connect --tun` (RunTun): when a session ends
// without a disconnect, a new one is opened on the best proposal matching
// the same filter after 1 s, 2 s, 4 s, ... up to DefaultReconnectTries
// attempts; a provider that overcharged or sent a bad invoice is excluded
// from then on; a provider that just failed is picked only when no other
// matches; after insufficient channel balance there is no retry (top up
// first). A provider that ended the session because its monthly traffic
// quota ran out is excluded too. A first connection refused by a full
// provider (capacity, quota_exhausted) tries the next best one
// (dialFirst). An announcement whose peer could not be reached at all is not
// dialled again: a provider that crashed or is restarting leaves its last
// announcement behind (no withdrawal, or one that arrives late), and
// redialling its dead addresses burnt every attempt within seconds; the
// attempt waits instead for the provider's next announcement (or another
// provider's).

// ReconnectBackoff is the wait before each reconnect attempt: 1 s, 2 s,
// 4 s, ...
var ReconnectBackoff = retry.Backoff{Initial: time.Second}

// DefaultReconnectTries is how many attempts re-establish a dropped
// connection.
const DefaultReconnectTries = 3

// reconnectWait is how long a reconnect attempt waits for proposals.
const reconnectWait = 5 * time.Second

// shouldRetry records in exclude a provider whose session ended with err
// for a reason that bars it, and reports whether to reconnect at all.
func shouldRetry(err error, provider common.Address, exclude map[common.Address]bool) bool {
	var perr *sessionproto.Error
	if errors.Is(err, pingpong.ErrOvercharge) || errors.Is(err, pingpong.ErrBadInvoice) ||
		(errors.As(err, &perr) && perr.Code == sessionproto.CodeQuotaExhausted) {
		exclude[provider] = true
	}
	return !errors.Is(err, pingpong.ErrInsufficientBalance)
}

// dialFunc opens a session, avoiding the providers in avoid when it can;
// it returns the provider tried (zero if none) with its error.
type dialFunc func(ctx context.Context, avoid map[common.Address]bool) (*consumer.Connection, common.Address, error)

// redialFunc is a dialFunc that also never uses an announcement of a
// provider in unreachable with a Seq at or below the one recorded; it
// returns the proposal tried (zero if none).
type redialFunc func(ctx context.Context, avoid map[common.Address]bool, unreachable map[common.Address]uint64) (*consumer.Connection, market.Proposal, error)

// RefusedFull reports whether err is a provider's refusal because it is
// full: at its session limit (capacity) or out of its monthly traffic
// quota (quota_exhausted). Another provider may serve.
func RefusedFull(err error) bool {
	var e *sessionproto.Error
	return errors.As(err, &e) && (e.Code == sessionproto.CodeCapacity || e.Code == sessionproto.CodeQuotaExhausted)
}

// refusedStale reports whether err is a provider's refusal of the
// proposal the request named as not current (proposal_expired): it
// re-announced (a new sequence number) or withdrew it meanwhile.
func refusedStale(err error) bool {
	var e *sessionproto.Error
	return errors.As(err, &e) && e.Code == sessionproto.CodeProposalExpired
}

// DefaultFullTries is how many providers a first connection tries when
// they refuse because they are full (RefusedFull).
const DefaultFullTries = 3

// dialFirst opens a first session: when the provider refuses because it
// is full it tries the next best provider, up to tries providers; when it
// refuses the proposal as no longer current it dials once more (the
// cache has its new announcement by then). The error names how many
// refused.
func dialFirst(ctx context.Context, tries int, dial dialFunc) (*consumer.Connection, common.Address, error) {
	avoid := map[common.Address]bool{}
	restaled := map[common.Address]bool{}
	for i := 1; ; i++ {
		conn, tried, err := dial(ctx, avoid)
		if err != nil && refusedStale(err) && tried != (common.Address{}) && !restaled[tried] && ctx.Err() == nil {
			// The provider re-announced between our read of its
			// proposal and its check of our request: dial once more,
			// with the announcement the cache holds now. It is not a
			// full provider, so it costs no try.
			restaled[tried] = true
			i--
			continue
		}
		if err == nil || !RefusedFull(err) || tried == (common.Address{}) || avoid[tried] || i >= tries || ctx.Err() != nil {
			if err != nil && i > 1 {
				err = fmt.Errorf("%w (%d providers tried; the others were full or out of quota)", err, i)
			}
			return conn, tried, err
		}
		avoid[tried] = true
	}
}

// redial makes up to tries attempts, after 1 s, 2 s, 4 s, ..., to open a
// new session, avoiding failed (the provider that just failed) and every
// provider tried in vain, and never redialling an announcement whose peer
// could not be reached (consumer.ErrUnreachable). failedTry (optional)
// hears each failed attempt. It returns nil when every attempt failed or
// ctx ended.
func redial(ctx context.Context, tries int, failed common.Address, dial redialFunc, failedTry func(try int, err error)) *consumer.Connection {
	avoid := map[common.Address]bool{failed: true}
	unreachable := map[common.Address]uint64{}
	for i := 0; i < tries; i++ {
		if retry.Sleep(ctx, ReconnectBackoff.Delay(i+1)) != nil {
			return nil
		}
		next, tried, err := dial(ctx, avoid, unreachable)
		if err == nil {
			return next
		}
		if failedTry != nil {
			failedTry(i, err)
		}
		if tried.ProviderID != (common.Address{}) {
			avoid[tried.ProviderID] = true
			if errors.Is(err, consumer.ErrUnreachable) && tried.Seq > unreachable[tried.ProviderID] {
				unreachable[tried.ProviderID] = tried.Seq
			}
		}
	}
	return nil
}

// reachable returns the proposals of ps not ruled out by unreachable (an
// announcement at or below the Seq recorded for its provider).
func reachable(ps []market.Proposal, unreachable map[common.Address]uint64) []market.Proposal {
	if len(unreachable) == 0 {
		return ps
	}
	out := ps[:0:0]
	for _, p := range ps {
		if seq, ok := unreachable[p.ProviderID]; !ok || p.Seq > seq {
			out = append(out, p)
		}
	}
	return out
}

// pickProposal waits up to wait for proposals matching f and picks per
// the policy. With waitOther, when only avoided providers are known
// (their proposals outlive them), it waits the rest of wait for one more
// to arrive, unless f names the provider (no other can match).
// Announcements ruled out by unreachable are never picked: it waits the
// rest of wait for a newer one (or another provider's).
func (c *Consumer) pickProposal(ctx context.Context, f market.Filter, exclude, avoid map[common.Address]bool, unreachable map[common.Address]uint64, wait time.Duration, waitOther bool) (market.Proposal, error) {
	if f.Sort == "" {
		f.Sort = market.SortQuality // the best providers first
	}
	avoid = c.avoidRecent(avoid)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ps, _ := c.WaitProposals(wctx, f, 1)
	for len(reachable(ps, unreachable)) == 0 && wctx.Err() == nil {
		// Only announcements already found unreachable: wait (syncing
		// like WaitProposals) for a newer one.
		sctx, scancel := context.WithTimeout(wctx, time.Second)
		c.Discovery.SyncConnected(sctx, 3)
		scancel()
		select {
		case <-wctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
		ps = c.Discovery.Cache().Query(f)
	}
	ps = reachable(ps, unreachable)
	if waitOther && awaitOther(f, ps, exclude, avoid) {
		if more, _ := c.WaitProposals(wctx, f, len(ps)+1); len(reachable(more, unreachable)) > len(ps) {
			ps = reachable(more, unreachable)
		}
	}
	return pickReconnect(admitted(ps, c.Address()), f, exclude, avoid)
}

// admitted returns the proposals of ps whose access policy admits
// consumer (an allow-list without it would refuse the session).
func admitted(ps []market.Proposal, consumer common.Address) []market.Proposal {
	out := ps[:0:0]
	for _, p := range ps {
		if p.Access.Allows(consumer) {
			out = append(out, p)
		}
	}
	return out
}

// pickReconnect picks the best proposal of ps matching f, never one of an
// excluded provider, and one of a provider in avoid (just failed) only
// when there is no other.
func pickReconnect(ps []market.Proposal, f market.Filter, exclude, avoid map[common.Address]bool) (market.Proposal, error) {
	var fresh, stale []market.Proposal
	for _, p := range ps {
		switch {
		case exclude[p.ProviderID]:
		case avoid[p.ProviderID]:
			stale = append(stale, p)
		default:
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		fresh = stale
	}
	return consumer.Pick(fresh, f)
}

// awaitOther reports whether a pick from ps is worth waiting for
// another proposal: every known one is excluded or avoided, and f does
// not name the provider (then no other proposal can match: a
// connection to it after a failure, e.g. `myst connect --tun PROVIDER`,
// waited its whole proposal wait for nothing).
func awaitOther(f market.Filter, ps []market.Proposal, exclude, avoid map[common.Address]bool) bool {
	return f.ProviderID == (common.Address{}) && len(ps) > 0 && pickable(ps, exclude, avoid) == 0
}

// pickable counts the proposals of ps of providers neither excluded nor
// avoided.
func pickable(ps []market.Proposal, exclude, avoid map[common.Address]bool) int {
	n := 0
	for _, p := range ps {
		if !exclude[p.ProviderID] && !avoid[p.ProviderID] {
			n++
		}
	}
	return n
}
