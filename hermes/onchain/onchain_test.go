package onchain

import (
	"context"
	"crypto/ecdsa"
	"log/slog"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/simtest"
	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// TestHermesOnSimulatedChain runs the whole payment path against the real
// contracts on go-ethereum's simulated backend: register a consumer and a
// provider, top up, exchange messages through the hermes, settle the
// consumer's promise on chain with the hermes's settlement worker, and
// settle the hermes promise on chain as the provider.
func TestHermesOnSimulatedChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const feeBps = 100 // 1%
	c, hermesAddr, opKey := newSimHermes(ctx, t, feeBps, func(b *simtest.AutoCommit) chain.Backend { return b })
	dep := c.Deployment()
	quiet := slog.New(slog.DiscardHandler)
	operator := identity.NewKeySigner(opKey)

	consumer := keytest.Signer(t)
	provider := keytest.Signer(t)
	channel := c.ChannelAddress(consumer.Address(), hermesAddr)
	if _, err := c.Mint(ctx, channel, money.MYST(10)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []identity.Signer{consumer, provider} {
		if _, _, err := c.RegisterIdentity(ctx, s, hermesAddr, nil, common.Address{}); err != nil {
			t.Fatal(err)
		}
	}

	adapter := New(c, hermesAddr, 50*time.Millisecond, quiet)
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hermes.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := hermes.New(hermes.Config{ChainID: new(big.Int).SetUint64(dep.ChainID), HermesID: hermesAddr, Operator: operator, FeeBasisPoints: feeBps,
		SettleThreshold: money.MYST(1), SettleInterval: time.Hour, Log: quiet}, st, adapter)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = svc.Run(rctx) }()
	defer func() { stop(); wg.Wait() }()

	chainID := new(big.Int).SetUint64(dep.ChainID)
	exchange := func(total *big.Int, r [32]byte) (*payments.Promise, error) {
		m := &payments.ExchangeMessage{
			Promise:     payments.Promise{ChainID: chainID, ChannelID: payments.ConsumerChannelID(channel), Amount: total, Fee: big.NewInt(0), Hashlock: payments.Hashlock(r[:])},
			AgreementID: big.NewInt(1), AgreementTotal: total, Provider: provider.Address(), HermesID: hermesAddr, ChainID: chainID,
		}
		if err := m.Sign(consumer); err != nil {
			t.Fatal(err)
		}
		res, err := svc.Exchange(ctx, m)
		if err != nil {
			return nil, err
		}
		return &res.Promise, nil
	}
	r1, _, _ := payments.NewSecret()
	r2, _, _ := payments.NewSecret()
	r3, _, _ := payments.NewSecret()
	if _, err := exchange(money.MYST(2), r1); err != nil {
		t.Fatal(err)
	}
	hp, err := exchange(money.MYST(4), r2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(money.MYST(11), r3); hermes.CodeOf(err) != hermes.CodeInsufficientBalance {
		t.Fatalf("promise above the 10 MYST channel: %v", err)
	}
	// An unregistered consumer is refused.
	stranger := keytest.Signer(t)
	sm := &payments.ExchangeMessage{
		Promise:     payments.Promise{ChainID: chainID, ChannelID: payments.ConsumerChannelID(c.ChannelAddress(stranger.Address(), hermesAddr)), Amount: big.NewInt(1), Fee: big.NewInt(0)},
		AgreementID: big.NewInt(1), AgreementTotal: big.NewInt(1), Provider: provider.Address(), HermesID: hermesAddr, ChainID: chainID,
	}
	if err := sm.Sign(stranger); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Exchange(ctx, sm); hermes.CodeOf(err) != hermes.CodeNotRegistered {
		t.Fatalf("unregistered consumer: %v", err)
	}

	events := make(chan hermes.ChannelEvent, 16)
	wctx, wstop := context.WithCancel(ctx)
	var ww sync.WaitGroup
	ww.Add(1)
	go func() {
		defer ww.Done()
		_ = adapter.WatchChannelEvents(wctx, func(e hermes.ChannelEvent) { events <- e })
	}()
	defer func() { wstop(); ww.Wait() }()
	time.Sleep(100 * time.Millisecond) // let the watcher read the head first
	waitEvent := func(kind hermes.EventKind) hermes.ChannelEvent {
		t.Helper()
		for {
			select {
			case e := <-events:
				if e.Kind == kind {
					if e.Consumer != consumer.Address() {
						t.Fatalf("event for %s", e.Consumer.Hex())
					}
					return e
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no event of kind %d", kind)
			}
		}
	}

	// The provider reveals; the settlement worker claims the consumer's promise.
	for _, r := range [][32]byte{r1, r2} {
		if _, err := svc.Reveal(ctx, provider.Address(), payments.Hashlock(r[:]), r[:]); err != nil {
			t.Fatal(err)
		}
	}
	hermesBefore, _ := c.TokenBalance(ctx, hermesAddr)
	if n, err := svc.SettleOnce(ctx); err != nil || n != 1 {
		t.Fatalf("settle: %d %v", n, err)
	}
	cs, err := c.ChannelState(ctx, channel)
	if err != nil || cs.Settled.Cmp(money.MYST(4)) != 0 || cs.Balance.Cmp(money.MYST(6)) != 0 {
		t.Fatalf("channel after settlement %+v %v", cs, err)
	}
	if e := waitEvent(hermes.EventSettled); e.Settled.Cmp(money.MYST(4)) != 0 {
		t.Fatalf("settlement event with settled %s", e.Settled)
	}
	hermesAfter, _ := c.TokenBalance(ctx, hermesAddr)
	if new(big.Int).Sub(hermesAfter, hermesBefore).Cmp(money.MYST(4)) != 0 {
		t.Fatalf("hermes contract got %s, want 4 MYST", new(big.Int).Sub(hermesAfter, hermesBefore))
	}
	view, err := svc.Consumer(ctx, consumer.Address())
	if err != nil || view.Settled.Cmp(money.MYST(4)) != 0 || view.Outstanding.Sign() != 0 {
		t.Fatalf("consumer view %+v %v", view, err)
	}

	// The provider settles the hermes promise on chain with its R.
	provBefore, _ := c.TokenBalance(ctx, provider.Address())
	if _, err := c.SettleProviderPromise(ctx, hermesAddr, provider.Address(), *hp, r2); err != nil {
		t.Fatalf("provider settlement: %v", err)
	}
	provAfter, _ := c.TokenBalance(ctx, provider.Address())
	want := new(big.Int).Sub(money.MYST(4), new(big.Int).Div(new(big.Int).Mul(money.MYST(4), big.NewInt(feeBps)), big.NewInt(10000)))
	if got := new(big.Int).Sub(provAfter, provBefore); got.Cmp(want) != 0 {
		t.Fatalf("provider received %s, want %s (4 MYST minus 1%%)", got, want)
	}
	if settled, err := adapter.ProviderSettled(ctx, provider.Address()); err != nil || settled.Cmp(money.MYST(4)) != 0 {
		t.Fatalf("provider settled %v %v", settled, err)
	}

	// A top-up is seen as an event.
	if _, err := c.Mint(ctx, channel, money.MYST(5)); err != nil {
		t.Fatal(err)
	}
	waitEvent(hermes.EventTopUp)
	// With the top-up, 11 MYST cumulative now fits (11 - 4 settled <= 11).
	if _, err := exchange(money.MYST(11), r3); err != nil {
		t.Fatalf("after top-up: %v", err)
	}
}

// newSimHermes deploys the contracts on a fresh simulated chain (closed
// when the test ends), registers a hermes with fee feeBps and returns a
// client over wrap's backend, the hermes address and its operator key.
func newSimHermes(ctx context.Context, t *testing.T, feeBps uint16, wrap func(*simtest.AutoCommit) chain.Backend) (*chain.Client, common.Address, *ecdsa.PrivateKey) {
	t.Helper()
	deployer, txKey, opKey := keytest.Key(t), keytest.Key(t), keytest.Key(t)
	b := wrap(simtest.New(t, chain.DevChainConfig(), deployer, txKey, opKey))
	quiet := slog.New(slog.DiscardHandler)
	dtx, err := chain.NewTransactor(ctx, b, deployer, quiet)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := chain.Deploy(ctx, dtx, chain.DeployParams{Faucet: true, MinHermesStake: money.MYST(10), ExitTimelock: time.Hour, FeeNoticeDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	opTx, err := chain.NewTransactor(ctx, b, opKey, quiet)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := chain.NewTransactor(ctx, b, txKey, quiet)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.NewClient(ctx, b, dep, tx, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mint(ctx, opTx.Address(), money.MYST(100)); err != nil {
		t.Fatal(err)
	}
	hermesAddr, err := chain.RegisterHermes(ctx, opTx, dep, chain.HermesParams{Stake: money.MYST(100), FeeBps: feeBps, MinChannelStake: money.MYST(50), MaxChannelStake: money.MYST(1000)})
	if err != nil {
		t.Fatal(err)
	}
	return c, hermesAddr, opKey
}
