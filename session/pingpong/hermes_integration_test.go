package pingpong_test

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/session/pingpong/paystore"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/storage/storagetest"
)

// chainStub is the hermes's view of the chain: one registered consumer
// with a funded channel. (The real chain is joined in the end-to-end
// tests; this test is about the tracker, payer and hermes service.)
type chainStub struct {
	consumer, channel, hermesID common.Address
	balance                     *big.Int
}

func (c *chainStub) ConsumerChannel(_ context.Context, consumer common.Address) (hermes.ChannelInfo, error) {
	if consumer != c.consumer {
		return hermes.ChannelInfo{}, nil
	}
	return hermes.ChannelInfo{Channel: c.channel, Registered: true, Hermes: c.hermesID, Balance: c.balance, Settled: new(big.Int)}, nil
}

func (c *chainStub) ProviderSettled(context.Context, common.Address) (*big.Int, error) {
	return new(big.Int), nil
}

func (c *chainStub) SettleConsumerPromise(context.Context, common.Address, payments.Promise, []byte) (common.Hash, error) {
	return common.Hash{}, errors.New("no settlement in this test")
}

func (c *chainStub) WatchChannelEvents(ctx context.Context, _ func(hermes.ChannelEvent)) error {
	<-ctx.Done()
	return nil
}

// serviceHermes adapts an in-process hermes service to pingpong.Hermes,
// the way the node wires it.
type serviceHermes struct{ svc *hermes.Service }

func (h serviceHermes) RequestPromise(ctx context.Context, em *payments.ExchangeMessage) (*payments.Promise, error) {
	res, err := h.svc.Exchange(ctx, em)
	if err != nil {
		return nil, err
	}
	return &res.Promise, nil
}

func (h serviceHermes) RevealR(ctx context.Context, provider common.Address, lock, r [32]byte) error {
	_, err := h.svc.Reveal(ctx, provider, lock, r[:])
	return err
}

func key(t *testing.T, seed byte) *identity.KeySigner { return keytest.Seeded(t, seed) }

// TestSessionAgainstHermesService pays a session through the real hermes
// service (SQLite store) with the node databases on both sides, and checks
// that the amounts add up exactly on every ledger.
func TestSessionAgainstHermesService(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	chainID := big.NewInt(1337)
	operator, prov, cons := key(t, 0x10), key(t, 0x11), key(t, 0x12)
	hermesID := common.HexToAddress("0x4e524d4553")
	channel := common.HexToAddress("0xc4a77e1")
	fee := big.NewInt(1000)

	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "hermes.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := hermes.New(hermes.Config{
		ChainID: chainID, HermesID: hermesID, Operator: operator, MinConsumerFee: fee,
		MaxUnrevealed: 2, SettleInterval: time.Hour, Log: quiet,
	}, st, &chainStub{consumer: cons.Address(), channel: channel, hermesID: hermesID, balance: big.NewInt(1e18)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	defer wg.Wait()
	defer cancel()

	provDB := storagetest.Open(t, filepath.Join(dir, "provider", storage.FileName))
	consDB := storagetest.Open(t, filepath.Join(dir, "consumer", storage.FileName))

	price := pingpong.Price{PerHour: big.NewInt(1e17), PerGiB: big.NewInt(3e17)}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var outbox []*payments.Invoice
	provStore := paystore.New(provDB)
	tracker, err := pingpong.NewInvoiceTracker(pingpong.TrackerConfig{
		ChainID: chainID, Provider: prov, Consumer: cons.Address(), HermesID: hermesID,
		AgreementID: big.NewInt(99), Price: price, TransactorFee: fee, Start: start,
		Interval: 10 * time.Second, Grace: 30 * time.Second, CheckEvery: time.Second,
		Threshold: big.NewInt(3e16), MaxUnpaid: big.NewInt(1e17),
		Hashlocks: provStore, Exchanges: provStore, Hermes: serviceHermes{svc},
		Permanent: func(err error) bool { return !hermes.CodeOf(err).Retryable() },
		Send:      func(_ context.Context, inv *payments.Invoice) error { outbox = append(outbox, inv); return nil },
		Log:       quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := paystore.New(consDB).Channel(chainID, payments.ConsumerChannelID(channel), big.NewInt(1e18))
	if err != nil {
		t.Fatal(err)
	}
	payer, err := pingpong.NewInvoicePayer(pingpong.PayerConfig{
		ChainID: chainID, Consumer: cons, Provider: prov.Address(), HermesID: hermesID, Channel: ledger,
		Price: price, MaxFee: fee, Tolerance: pingpong.DefaultTolerance, Start: start,
	})
	if err != nil {
		t.Fatal(err)
	}

	var bytes uint64
	var now time.Time
	for i := 1; i <= 95; i++ {
		now = start.Add(time.Duration(i) * time.Second)
		bytes += 20 << 20
		if err := tracker.Tick(ctx, now, bytes); err != nil {
			t.Fatalf("t=%ds tick: %v", i, err)
		}
		for _, inv := range outbox {
			em, err := payer.HandleInvoice(ctx, now, bytes, inv)
			if err != nil {
				t.Fatalf("t=%ds pay: %v", i, err)
			}
			if err := tracker.HandleExchange(ctx, now, em); err != nil {
				t.Fatalf("t=%ds exchange: %v", i, err)
			}
		}
		outbox = nil
	}
	if owed, want := tracker.Stats().Owed, price.Total(now.Sub(start), bytes); owed.Cmp(want) != 0 {
		t.Fatalf("owed %s, want %s", owed, want)
	}
	paid := payer.Stats().Paid
	pv, err := svc.Provider(ctx, prov.Address())
	if err != nil {
		t.Fatal(err)
	}
	cv, err := svc.Consumer(ctx, cons.Address())
	if err != nil {
		t.Fatal(err)
	}
	promised, err := ledger.Promised(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st2 := tracker.Stats()
	if pv.Earned.Cmp(paid) != 0 || st2.Settled.Cmp(paid) != 0 || promised.Cmp(paid) != 0 || cv.Promised.Cmp(paid) != 0 {
		t.Fatalf("hermes earned %s, tracker settled %s, consumer ledger %s, hermes consumer promised %s; payer paid %s",
			pv.Earned, st2.Settled, promised, cv.Promised, paid)
	}
	if pv.Unrevealed != 0 {
		t.Fatalf("%d promises left unrevealed", pv.Unrevealed)
	}
	// The unpaid tail is below one interval's worth of time and traffic.
	tail := new(big.Int).Sub(st2.Owed, paid)
	if tail.Cmp(price.Total(10*time.Second, 10*20<<20)) > 0 {
		t.Fatalf("unpaid tail %s larger than one interval", tail)
	}
	if st2.Invoices < 10 {
		t.Fatalf("only %d invoices", st2.Invoices)
	}
	t.Logf("%d invoices, paid %s wei of %s owed; hermes earned %s", st2.Invoices, paid, st2.Owed, pv.Earned)
}
