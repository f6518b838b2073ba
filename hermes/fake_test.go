package hermes

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/payments"
)

// fakeChain is an in-memory Chain for this package's unit tests.
type fakeChain struct {
	mu       sync.Mutex
	channels map[common.Address]*ChannelInfo
	// autoBalance, when set, registers every unknown consumer with it.
	autoBalance *big.Int
	hermes      common.Address
	reads       int
	settles     []fakeSettle
	settleErr   error
	settleCalls int // SettleConsumerPromise calls, refused ones included
	// beforeSettle, if set, runs at the start of SettleConsumerPromise
	// (without f.mu held): tests use it to settle first as someone else
	// or to widen a race window.
	beforeSettle func(consumer common.Address, p payments.Promise, r []byte)
	sink         func(ChannelEvent)
	sinkReady    chan struct{}
}

type fakeSettle struct {
	consumer common.Address
	promise  payments.Promise
	r        []byte
}

func newFakeChain(hermes common.Address) *fakeChain {
	return &fakeChain{channels: map[common.Address]*ChannelInfo{}, hermes: hermes, sinkReady: make(chan struct{})}
}

// fakeChannelAddress stands in for the chain package's CREATE2 derivation.
func fakeChannelAddress(consumer, hermes common.Address) common.Address {
	return common.BytesToAddress(crypto.Keccak256(consumer[:], hermes[:])[12:])
}

func (f *fakeChain) register(consumer common.Address, balance int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.channels[consumer] = &ChannelInfo{Channel: fakeChannelAddress(consumer, f.hermes), Registered: true, Hermes: f.hermes, Balance: big.NewInt(balance), Settled: new(big.Int)}
}

// topUp adds tokens without emitting an event (the hermes must re-read).
func (f *fakeChain) topUp(consumer common.Address, amount int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.channels[consumer]
	c.Balance = new(big.Int).Add(c.Balance, big.NewInt(amount))
}

func (f *fakeChain) ConsumerChannel(_ context.Context, consumer common.Address) (ChannelInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	c, ok := f.channels[consumer]
	if !ok && f.autoBalance != nil {
		c = &ChannelInfo{Channel: fakeChannelAddress(consumer, f.hermes), Registered: true, Hermes: f.hermes, Balance: new(big.Int).Set(f.autoBalance), Settled: new(big.Int)}
		f.channels[consumer] = c
	}
	if !ok && c == nil {
		return ChannelInfo{Channel: fakeChannelAddress(consumer, f.hermes)}, nil
	}
	return ChannelInfo{Channel: c.Channel, Registered: c.Registered, Hermes: c.Hermes, Balance: new(big.Int).Set(c.Balance), Settled: new(big.Int).Set(c.Settled)}, nil
}

func (f *fakeChain) ProviderSettled(context.Context, common.Address) (*big.Int, error) {
	return new(big.Int), nil
}

// SettleConsumerPromise moves amount-settled from the channel balance, as
// the contract does, after checking the promise like the contract would.
func (f *fakeChain) SettleConsumerPromise(_ context.Context, consumer common.Address, p payments.Promise, r []byte) (common.Hash, error) {
	f.mu.Lock()
	hook := f.beforeSettle
	f.settleCalls++
	f.mu.Unlock()
	if hook != nil {
		hook(consumer, p, r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.settleErr != nil {
		return common.Hash{}, f.settleErr
	}
	c := f.channels[consumer]
	if c == nil {
		return common.Hash{}, errors.New("fake chain: no channel")
	}
	if payments.Hashlock(r) != p.Hashlock {
		return common.Hash{}, errors.New("fake chain: wrong preimage")
	}
	if err := p.Verify(consumer); err != nil {
		return common.Hash{}, err
	}
	amount := new(big.Int).Sub(p.Amount, c.Settled)
	if amount.Sign() <= 0 || amount.Cmp(c.Balance) > 0 {
		return common.Hash{}, errors.New("fake chain: nothing to settle or balance too low")
	}
	c.Balance.Sub(c.Balance, amount)
	c.Settled = new(big.Int).Set(p.Amount)
	f.settles = append(f.settles, fakeSettle{consumer, p, r})
	return crypto.Keccak256Hash(p.Signature), nil
}

func (f *fakeChain) WatchChannelEvents(ctx context.Context, sink func(ChannelEvent)) error {
	f.mu.Lock()
	first := f.sink == nil
	f.sink = sink
	f.mu.Unlock()
	if first {
		close(f.sinkReady)
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeChain) emit(e ChannelEvent) {
	<-f.sinkReady
	f.mu.Lock()
	sink := f.sink
	f.mu.Unlock()
	sink(e)
}

// testKey derives a deterministic test-only key.
func testKey(label string) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("hermes test key: " + label)))
	if err != nil {
		panic(err)
	}
	return k
}

func testSigner(label string) *identity.KeySigner { return identity.NewKeySigner(testKey(label)) }

// parties returns most tests' two sides: consumer "c", registered on chain
// with a balance of 1000, and provider "p"'s address.
func parties(chain *fakeChain) (*identity.KeySigner, common.Address) {
	c := testSigner("c")
	chain.register(c.Address(), 1000)
	return c, testSigner("p").Address()
}
