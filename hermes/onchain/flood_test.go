package onchain

import (
	"context"
	"log/slog"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/simtest"
	"github.com/openmyst/openmyst/internal/keytest"
)

// countingBackend counts the chain reads (eth_call, eth_getCode,
// eth_getBalance) made through it.
type countingBackend struct {
	*simtest.AutoCommit
	reads atomic.Int64
}

func (b *countingBackend) CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error) {
	b.reads.Add(1)
	return b.AutoCommit.CallContract(ctx, msg, block)
}

func (b *countingBackend) CodeAt(ctx context.Context, a common.Address, block *big.Int) ([]byte, error) {
	b.reads.Add(1)
	return b.AutoCommit.CodeAt(ctx, a, block)
}

func (b *countingBackend) BalanceAt(ctx context.Context, a common.Address, block *big.Int) (*big.Int, error) {
	b.reads.Add(1)
	return b.AutoCommit.BalanceAt(ctx, a, block)
}

// TestConsumerChannelFloodCost: an unregistered identity (what a flood of
// fresh keys brings) costs one chain read and is not watched; the watched
// channels stay within their cap however many registered consumers the
// hermes reads.
func TestConsumerChannelFloodCost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var b *countingBackend
	c, hermesAddr, _ := newSimHermes(ctx, t, 100, func(ac *simtest.AutoCommit) chain.Backend {
		b = &countingBackend{AutoCommit: ac}
		return b
	})
	quiet := slog.New(slog.DiscardHandler)
	const maxChannels = 2
	a := newChain(c, hermesAddr, time.Second, quiet, maxChannels)

	for i := 0; i < 5; i++ {
		stranger := keytest.Signer(t).Address()
		before := b.reads.Load()
		info, err := a.ConsumerChannel(ctx, stranger)
		if err != nil {
			t.Fatal(err)
		}
		if n := b.reads.Load() - before; n != 1 {
			t.Fatalf("unregistered identity cost %d chain reads, want 1", n)
		}
		if info.Registered || info.Channel != c.ChannelAddress(stranger, hermesAddr) || info.Balance == nil || info.Settled == nil {
			t.Fatalf("unregistered identity: %+v", info)
		}
	}
	if n := a.channels.Len(); n != 0 {
		t.Fatalf("%d unregistered identities' channels are watched", n)
	}

	for i := 0; i < maxChannels+2; i++ {
		s := keytest.Signer(t)
		if _, _, err := c.RegisterIdentity(ctx, s, hermesAddr, nil, common.Address{}); err != nil {
			t.Fatal(err)
		}
		info, err := a.ConsumerChannel(ctx, s.Address())
		if err != nil || !info.Registered || info.Hermes != hermesAddr {
			t.Fatalf("registered consumer: %+v %v", info, err)
		}
		if n := a.channels.Len(); n > maxChannels {
			t.Fatalf("%d channels watched, cap %d", n, maxChannels)
		}
		if consumer, ok := a.channels.Peek(info.Channel); !ok || consumer != s.Address() {
			t.Fatal("the consumer just read is not watched")
		}
	}
}
