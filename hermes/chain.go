package hermes

import (
	"context"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/payments"
)

// ChannelInfo is a consumer channel's on-chain state as the hermes needs it.
type ChannelInfo struct {
	// Channel is the consumer's channel contract address, derived by the
	// chain package (CREATE2 from the consumer identity and hermes).
	Channel common.Address
	// Registered reports whether the consumer identity is registered.
	Registered bool
	// Hermes is the hermes contract the consumer's channel pays through.
	Hermes common.Address
	// Balance is the channel's current token balance (what can still be
	// settled).
	Balance *big.Int
	// Settled is the cumulative promise amount already settled on chain.
	Settled *big.Int
}

// EventKind is the kind of a channel event.
type EventKind int

// Channel event kinds.
const (
	// EventTopUp: tokens arrived in a consumer channel.
	EventTopUp EventKind = iota + 1
	// EventSettled: a consumer promise was settled on chain.
	EventSettled
)

// ChannelEvent is a chain event about one consumer channel.
type ChannelEvent struct {
	// Kind is what happened.
	Kind EventKind
	// Consumer is the channel's owner identity.
	Consumer common.Address
	// Settled is the channel's cumulative settled amount after an
	// EventSettled (nil otherwise).
	Settled *big.Int
	// Removed reports that a chain reorg dropped the block of an event
	// reported before: what it said no longer holds.
	Removed bool
}

// Chain is what the hermes needs from the chain. The chain package's client
// is adapted to it; unit tests use a fake.
type Chain interface {
	// ConsumerChannel returns the consumer's registration and channel state.
	ConsumerChannel(ctx context.Context, consumer common.Address) (ChannelInfo, error)
	// ProviderSettled returns how much of the provider's channel in this
	// hermes has been settled on chain.
	ProviderSettled(ctx context.Context, provider common.Address) (*big.Int, error)
	// SettleConsumerPromise settles a consumer's promise with its secret r
	// and returns the transaction hash once it is mined.
	SettleConsumerPromise(ctx context.Context, consumer common.Address, p payments.Promise, r []byte) (common.Hash, error)
	// WatchChannelEvents calls sink for every top-up or settlement of a
	// consumer channel of this hermes until ctx is done.
	WatchChannelEvents(ctx context.Context, sink func(ChannelEvent)) error
}
