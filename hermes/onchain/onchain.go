// Package onchain adapts the chain package's Client to the hermes.Chain
// seam: consumer channel state and registration, provider settlement state,
// consumer promise settlement, and top-up and settlement events (polled
// token transfers into, and PromiseSettled logs of, known consumer
// channels, through a chain.LogWatcher: confirmations, reorgs, range
// splitting and a durable position).
package onchain

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/payments"
)

// MaxWatchedChannels caps the consumer channels whose events a Chain
// watches: the channels of registered consumers the hermes has read, the
// least recently read forgotten first. A forgotten channel's top-ups and
// settlements are then only seen when the hermes re-reads it (after its
// cache TTL, or at once when a promise exceeds the cached balance).
const MaxWatchedChannels = 1 << 16

// Chain implements hermes.Chain over a chain.Client for one hermes contract.
type Chain struct {
	c      *chain.Client
	hermes common.Address
	poll   time.Duration
	log    *slog.Logger

	mu       sync.Mutex
	channels *simplelru.LRU[common.Address, common.Address] // channel -> consumer
	watch    WatchConfig
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
	return newChain(c, hermesAddr, poll, log, MaxWatchedChannels)
}

func newChain(c *chain.Client, hermesAddr common.Address, poll time.Duration, log *slog.Logger, maxChannels int) *Chain {
	channels, err := simplelru.NewLRU[common.Address, common.Address](maxChannels, nil)
	if err != nil { // only for a non-positive size
		panic(err)
	}
	return &Chain{c: c, hermes: hermesAddr, poll: poll, log: log, channels: channels}
}

var _ hermes.Chain = (*Chain)(nil)

// ConsumerChannel implements hermes.Chain. A consumer counts as registered
// with this hermes when its identity is registered and its channel for this
// hermes is deployed. The registration is read first: an unregistered
// identity (what a flood of fresh keys brings) costs one chain call, and
// only registered consumers' channels are watched for events.
func (a *Chain) ConsumerChannel(ctx context.Context, consumer common.Address) (hermes.ChannelInfo, error) {
	ch := a.c.ChannelAddress(consumer, a.hermes)
	reg, err := a.c.IsRegistered(ctx, consumer)
	if err != nil {
		return hermes.ChannelInfo{}, err
	}
	if !reg {
		return hermes.ChannelInfo{Channel: ch, Balance: new(big.Int), Settled: new(big.Int)}, nil
	}
	st, err := a.c.ChannelState(ctx, ch)
	if err != nil {
		return hermes.ChannelInfo{}, err
	}
	registered := st.Deployed && st.Identity == consumer
	if registered {
		a.mu.Lock()
		a.channels.Add(ch, consumer)
		a.mu.Unlock()
	}
	return hermes.ChannelInfo{Channel: ch, Registered: registered, Hermes: st.Hermes, Balance: st.Balance, Settled: st.Settled}, nil
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
	rcpt, err := a.c.SettleConsumerPromise(ctx, a.c.ChannelAddress(consumer, a.hermes), p, pre)
	if err != nil {
		return common.Hash{}, err
	}
	return rcpt.TxHash, nil
}

// promiseSettledTopic is the ConsumerChannel PromiseSettled event id.
var promiseSettledTopic = common.HexToHash("0xf1f35d7f27f26a682bdc0337a847356cc2e0472adea660bb7d7ab5ac59535cda")

// transferTopic is the ERC-20 Transfer event id.
var transferTopic = common.HexToHash("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")

// WatchConfig tunes how WatchChannelEvents follows the chain.
type WatchConfig struct {
	// Confirmations is how many blocks must be on top of an event's block
	// before it is reported (0: at the head).
	Confirmations uint64
	// MaxLogRange is the largest eth_getLogs range (chain.DefaultMaxLogRange
	// if zero); ranges the endpoint refuses are split.
	MaxLogRange uint64
	// Store keeps the watcher's position across restarts (nil: each start
	// begins at the head).
	Store chain.WatchStore
}

// SetWatchConfig sets how WatchChannelEvents follows the chain; call it
// before the hermes runs.
func (a *Chain) SetWatchConfig(w WatchConfig) {
	a.mu.Lock()
	a.watch = w
	a.mu.Unlock()
}

// WatchChannelEvents implements hermes.Chain with a chain.LogWatcher: it
// reports token transfers into, and PromiseSettled events of, consumer
// channels the hermes has looked at as top-ups and settlements (with the
// channel's new cumulative settled amount), once confirmed, and events a
// reorg dropped again with Removed set. With a Store it continues where
// the last run stopped.
func (a *Chain) WatchChannelEvents(ctx context.Context, sink func(hermes.ChannelEvent)) error {
	// Any address: only the parser's ABI is used.
	channelEvents, err := bindings.NewConsumerChannelFilterer(common.Address{}, a.c.Backend())
	if err != nil {
		return fmt.Errorf("onchain: bind channel events: %w", err)
	}
	a.mu.Lock()
	wc := a.watch
	a.mu.Unlock()
	token := a.c.Deployment().Token
	w := chain.NewLogWatcher(a.c.Backend(), chain.WatcherConfig{
		Name: "hermes-channel-events-" + a.hermes.Hex(),
		Queries: []ethereum.FilterQuery{
			{Addresses: []common.Address{token}, Topics: [][]common.Hash{{transferTopic}}},
			{Topics: [][]common.Hash{{promiseSettledTopic}}},
		},
		Confirmations: wc.Confirmations, Poll: a.poll, MaxRange: wc.MaxLogRange, Store: wc.Store,
	}, a.log)
	return w.Run(ctx, func(_ context.Context, logs []types.Log) error {
		for _, l := range logs {
			if len(l.Topics) == 0 {
				continue
			}
			switch {
			case l.Address == token && l.Topics[0] == transferTopic && len(l.Topics) == 3:
				if consumer, ok := a.consumerOf(common.BytesToAddress(l.Topics[2].Bytes())); ok {
					sink(hermes.ChannelEvent{Kind: hermes.EventTopUp, Consumer: consumer, Removed: l.Removed})
				}
			case l.Topics[0] == promiseSettledTopic:
				consumer, ok := a.consumerOf(l.Address)
				if !ok {
					continue
				}
				ev, err := channelEvents.ParsePromiseSettled(l)
				if err != nil {
					a.log.Warn("onchain: parse settlement", "channel", l.Address.Hex(), "err", err)
					continue
				}
				sink(hermes.ChannelEvent{Kind: hermes.EventSettled, Consumer: consumer, Settled: ev.Settled, Removed: l.Removed})
			}
		}
		return nil
	})
}

func (a *Chain) consumerOf(channel common.Address) (common.Address, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.channels.Peek(channel)
}
