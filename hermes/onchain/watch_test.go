package onchain

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/simtest"
	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
)

// rangeLimited refuses eth_getLogs over more than max blocks with
// go-ethereum's --rpc.rangelimit error, as public endpoints do.
type rangeLimited struct {
	*simtest.AutoCommit
	max uint64
}

func (r *rangeLimited) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	if q.ToBlock != nil && q.FromBlock != nil && q.ToBlock.Uint64()-q.FromBlock.Uint64()+1 > r.max {
		return nil, errors.New("exceed maximum block range 2")
	}
	return r.AutoCommit.FilterLogs(ctx, q)
}

// TestWatchResumesAcrossRestartOnRangeLimitedEndpoint: top-ups made while
// the hermes's watcher is stopped are reported after it restarts with its
// persisted position, although the endpoint refuses eth_getLogs ranges of
// more than 2 blocks.
func TestWatchResumesAcrossRestartOnRangeLimitedEndpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, hermesAddr, _ := newSimHermes(ctx, t, 0, func(ac *simtest.AutoCommit) chain.Backend { return &rangeLimited{AutoCommit: ac, max: 2} })
	quiet := slog.New(slog.DiscardHandler)
	consumer := keytest.Signer(t)
	channel := c.ChannelAddress(consumer.Address(), hermesAddr)
	if _, err := c.Mint(ctx, channel, money.MYST(1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.RegisterIdentity(ctx, consumer, hermesAddr, nil, common.Address{}); err != nil {
		t.Fatal(err)
	}

	state, err := chain.OpenStateDB(filepath.Join(t.TempDir(), "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	var mu sync.Mutex
	var topUps int
	run := func() (stop func()) {
		a := New(c, hermesAddr, 20*time.Millisecond, quiet)
		a.SetWatchConfig(WatchConfig{Store: state})
		if _, err := a.ConsumerChannel(ctx, consumer.Address()); err != nil { // the hermes looks at the channel
			t.Fatal(err)
		}
		wctx, wstop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = a.WatchChannelEvents(wctx, func(e hermes.ChannelEvent) {
				if e.Kind == hermes.EventTopUp && e.Consumer == consumer.Address() && !e.Removed {
					mu.Lock()
					topUps++
					mu.Unlock()
				}
			})
		}()
		return func() { wstop(); <-done }
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return topUps }
	waitCount := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d top-ups reported, want %d", count(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	stop := run()
	for { // the watcher records its start before the first top-up
		if _, ok, err := state.LoadWatch(ctx, "hermes-channel-events-"+hermesAddr.Hex()); err != nil {
			t.Fatal(err)
		} else if ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Mint(ctx, channel, money.MYST(1)); err != nil {
		t.Fatal(err)
	}
	waitCount(1)
	stop()

	for range 5 { // while the hermes is down: five blocks with a top-up each
		if _, err := c.Mint(ctx, channel, money.MYST(1)); err != nil {
			t.Fatal(err)
		}
	}
	stop = run()
	defer stop()
	waitCount(6)
	time.Sleep(100 * time.Millisecond)
	if n := count(); n != 6 {
		t.Fatalf("%d top-ups reported, want exactly 6", n)
	}
}
