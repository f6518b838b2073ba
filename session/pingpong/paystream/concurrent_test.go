package paystream

import (
	"context"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/tick"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/session/pingpong/paystore"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/storage/storagetest"
)

// TestManyConcurrentSessions runs many paid sessions at once against one
// provider (one node database, one hermes), each consumer with its own
// identity and ledger, and checks that none is dropped and that every
// ledger agrees to the wei. By default 20 sessions invoice every 50 ms for
// 1 s; MYST_LONG_TESTS=1 runs 100 sessions invoicing every second for 8 s
// (the provider's node database does two fsynced writes per invoice, so
// the aggregate invoice rate, not the session count, is what it must keep
// up with: 100 sessions at the production 30 s interval is about 3
// invoices per second).
func TestManyConcurrentSessions(t *testing.T) {
	sessions, dur, interval := 20, time.Second, 50*time.Millisecond
	if os.Getenv("MYST_LONG_TESTS") != "" {
		sessions, dur, interval = 100, 8*time.Second, time.Second
	}
	dir := t.TempDir()
	provDB := storagetest.Open(t, filepath.Join(dir, "provider", storage.FileName))
	consDB := storagetest.Open(t, filepath.Join(dir, "consumers", storage.FileName))
	hermes := &hermesStub{operator: signer(t, 3), earned: new(big.Int), totals: map[string]*big.Int{}}
	prov := signer(t, 1)
	provStore, consStore := paystore.New(provDB), paystore.New(consDB)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consCtx, disconnect := context.WithCancel(ctx)
	var bytes atomic.Uint64
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	var trafficDone sync.WaitGroup
	trafficDone.Add(1)
	go func() {
		defer trafficDone.Done()
		tick.Every(trafficCtx, time.Millisecond, func(context.Context) { bytes.Add(64 << 10) })
	}()

	type result struct {
		provErr, consErr error
		tracker          *pingpong.InvoiceTracker
		payer            *pingpong.InvoicePayer
		ledger           *paystore.Channel
	}
	results := make([]*result, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		res := &result{}
		results[i] = res
		var err error
		pc, cc := net.Pipe()
		defer pc.Close()
		defer cc.Close()
		provR, provW := sessionproto.NewReader(pc, 12*interval+time.Second), sessionproto.NewWriter(pc, 2*time.Second)
		consR, consW := sessionproto.NewReader(cc, 12*interval+time.Second), sessionproto.NewWriter(cc, 2*time.Second)
		cons := signer(t, byte(10+i))
		start := time.Now()
		res.tracker, err = pingpong.NewInvoiceTracker(pingpong.TrackerConfig{
			ChainID: big.NewInt(1337), Provider: prov, Consumer: cons.Address(), HermesID: hermes.operator.Address(),
			AgreementID: big.NewInt(int64(1000 + i)), Price: price, TransactorFee: big.NewInt(0), Start: start,
			Interval: interval, CheckEvery: interval / 5, Grace: max(3*interval, 2*time.Second),
			Hashlocks: provStore, Exchanges: provStore, Hermes: hermes, Send: InvoiceSender(provW), Log: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		chID := payments.ConsumerChannelID(common.BigToAddress(big.NewInt(int64(0xc0000 + i))))
		res.ledger, err = consStore.Channel(big.NewInt(1337), chID, big.NewInt(1e18))
		if err != nil {
			t.Fatal(err)
		}
		res.payer, err = pingpong.NewInvoicePayer(pingpong.PayerConfig{
			ChainID: big.NewInt(1337), Consumer: cons, Provider: prov.Address(), HermesID: hermes.operator.Address(),
			Channel: res.ledger, Price: price, MaxFee: big.NewInt(0), Tolerance: pingpong.DefaultTolerance, Start: start,
		})
		if err != nil {
			t.Fatal(err)
		}
		opt := Options{Keepalive: 4 * interval, Log: quiet}
		wg.Add(2)
		go func() {
			defer wg.Done()
			res.provErr = Provider(ctx, provR, provW, res.tracker, bytes.Load, opt)
		}()
		go func() {
			defer wg.Done()
			res.consErr = Consumer(consCtx, consR, consW, res.payer, bytes.Load, opt)
		}()
	}
	time.Sleep(dur)
	disconnect()
	wg.Wait()
	stopTraffic()
	trafficDone.Wait()

	total := new(big.Int)
	invoices := 0
	for i, res := range results {
		if res.consErr != nil || !errors.Is(res.provErr, ErrPeerEnded) {
			t.Errorf("session %d dropped: consumer %v, provider %v", i, res.consErr, res.provErr)
			continue
		}
		if err := res.tracker.Settle(ctx, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		st, paid := res.tracker.Stats(), res.payer.Stats().Paid
		promised, err := res.ledger.Promised(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if paid.Sign() <= 0 || st.Settled.Cmp(paid) != 0 || promised.Cmp(paid) != 0 {
			t.Errorf("session %d: settled %s, ledger %s, paid %s", i, st.Settled, promised, paid)
		}
		if ht := hermes.totals[big.NewInt(int64(1000+i)).String()]; ht == nil || ht.Cmp(paid) != 0 {
			t.Errorf("session %d: hermes has %v, paid %s", i, ht, paid)
		}
		total.Add(total, paid)
		invoices += st.Invoices
	}
	if hermes.total().Cmp(total) != 0 {
		t.Fatalf("hermes earned %s, sessions paid %s", hermes.total(), total)
	}
	t.Logf("%d sessions, %d invoices in %s, all paid exactly: %s wei", sessions, invoices, dur, total)
}
