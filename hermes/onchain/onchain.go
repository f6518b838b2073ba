// Package onchain adapts the chain package's Client to the hermes.Chain
// seam: consumer channel state and registration, provider settlement state,
// consumer promise settlement, and top-up events (polled token transfers
// into known consumer channels).
package onchain

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/payments"
)

// Chain implements hermes.Chain over a chain.Client for one hermes contract.
type Chain struct {
	c      *chain.Client
	hermes common.Address
	poll   time.Duration
	log    *slog.Logger

	mu       sync.Mutex
	channels map[common.Address]common.Address // channel -> consumer
}

// New returns the adapter for the hermes contract at hermesAddr; poll is
// how often WatchChannelEvents looks for new blocks (default 2s).
func New(c *chain.Client, hermesAddr common.Address, poll time.Duration, log *slog.Logger) *Chain {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Chain{c: c, hermes: hermesAddr, poll: poll, log: log, channels: map[common.Address]common.Address{}}
}

var _ hermes.Chain = (*Chain)(nil)

// ConsumerChannel implements hermes.Chain. A consumer counts as registered
// with this hermes when its identity is registered and its channel for this
// hermes is deployed.
func (a *Chain) ConsumerChannel(ctx context.Context, consumer common.Address) (hermes.ChannelInfo, error) {
	ch := a.c.ChannelAddress(consumer, a.hermes)
	reg, err := a.c.IsRegistered(ctx, consumer)
	if err != nil {
		return hermes.ChannelInfo{}, err
	}
	st, err := a.c.ChannelState(ctx, ch)
	if err != nil {
		return hermes.ChannelInfo{}, err
	}
	a.mu.Lock()
	a.channels[ch] = consumer
	a.mu.Unlock()
	return hermes.ChannelInfo{Channel: ch, Registered: reg && st.Deployed && st.Identity == consumer, Hermes: st.Hermes, Balance: st.Balance, Settled: st.Settled}, nil
}

// ProviderSettled implements hermes.Chain.
func (a *Chain) ProviderSettled(ctx context.Context, provider common.Address) (*big.Int, error) {
	st, err := a.c.ProviderChannel(ctx, a.hermes, provider)
	if err != nil {
		return nil, err
	}
	return st.Settled, nil
}

// SettleConsumerPromise implements hermes.Chain.
func (a *Chain) SettleConsumerPromise(ctx context.Context, consumer common.Address, p payments.Promise, r []byte) (common.Hash, error) {
	if len(r) != 32 {
		return common.Hash{}, fmt.Errorf("onchain: preimage of %d bytes", len(r))
	}
	var pre [32]byte
	copy(pre[:], r)
	cp := chain.Promise{ChannelID: p.ChannelID, Amount: p.Amount, Fee: p.Fee, Hashlock: p.Hashlock, Signature: p.Signature}
	rcpt, err := a.c.SettleConsumerPromise(ctx, a.c.ChannelAddress(consumer, a.hermes), cp, pre)
	if err != nil {
		return common.Hash{}, err
	}
	return rcpt.TxHash, nil
}

// WatchChannelEvents implements hermes.Chain: every poll interval it reads
// the token transfers of the new blocks and reports those into a consumer
// channel the hermes has looked at as top-ups.
func (a *Chain) WatchChannelEvents(ctx context.Context, sink func(hermes.ChannelEvent)) error {
	token, err := bindings.NewMystTokenFilterer(a.c.Deployment().Token, a.c.Backend())
	if err != nil {
		return fmt.Errorf("onchain: bind token: %w", err)
	}
	head, err := a.c.Backend().HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("onchain: read head: %w", err)
	}
	next := head.Number.Uint64() + 1
	t := time.NewTicker(a.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		h, err := a.c.Backend().HeaderByNumber(ctx, nil)
		if err != nil {
			a.log.Warn("onchain: read head", "err", err)
			continue
		}
		last := h.Number.Uint64()
		if last < next {
			continue
		}
		it, err := token.FilterTransfer(&bind.FilterOpts{Start: next, End: &last, Context: ctx}, nil, nil)
		if err != nil {
			a.log.Warn("onchain: filter transfers", "err", err)
			continue
		}
		for it.Next() {
			a.mu.Lock()
			consumer, ok := a.channels[it.Event.To]
			a.mu.Unlock()
			if ok {
				sink(hermes.ChannelEvent{Kind: hermes.EventTopUp, Consumer: consumer})
			}
		}
		err = it.Error()
		_ = it.Close()
		if err != nil {
			a.log.Warn("onchain: read transfers", "err", err)
			continue
		}
		next = last + 1
	}
}
