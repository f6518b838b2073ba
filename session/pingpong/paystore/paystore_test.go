package paystore

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/storage"
)

func openDB(t *testing.T, path string) *storage.DB {
	t.Helper()
	db, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func signer(t testing.TB, seed byte) *identity.KeySigner { return keytest.Seeded(t, seed) }

func TestSecretsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), storage.FileName)
	db := openDB(t, path)
	s := New(db)
	r, lock, err := payments.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	agreement := new(big.Int).Lsh(big.NewInt(1), 200)
	if err := s.Put(ctx, lock, r, agreement); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, lock, r, agreement); err != nil {
		t.Fatalf("idempotent put: %v", err)
	}
	if err := s.Put(ctx, lock, r, big.NewInt(5)); err == nil {
		t.Fatal("same hashlock stored for another agreement")
	}
	var wrong [32]byte
	if err := s.Put(ctx, lock, wrong, agreement); err == nil {
		t.Fatal("secret that does not hash to the hashlock accepted")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path)
	defer db.Close()
	s = New(db)
	got, gotAgreement, err := s.Secret(ctx, lock)
	if err != nil || got != r || gotAgreement.Cmp(agreement) != 0 {
		t.Fatalf("after reopen: %x %v %v", got, gotAgreement, err)
	}
	if _, _, err := s.Secret(ctx, [32]byte{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
}

func exchange(t *testing.T, consumer identity.Signer, agreement, total int64, lock [32]byte) *payments.ExchangeMessage {
	t.Helper()
	em := &payments.ExchangeMessage{
		Promise:     payments.Promise{ChainID: big.NewInt(1337), ChannelID: [32]byte{9}, Amount: big.NewInt(total), Fee: big.NewInt(0), Hashlock: lock},
		AgreementID: big.NewInt(agreement), AgreementTotal: big.NewInt(total),
		Provider: common.HexToAddress("0x01"), HermesID: common.HexToAddress("0x02"), ChainID: big.NewInt(1337),
	}
	if err := em.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	return em
}

func TestExchangeNeverGoesBack(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), storage.FileName))
	defer db.Close()
	s := New(db)
	c := signer(t, 2)
	if _, err := s.LatestExchange(ctx, big.NewInt(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store: %v", err)
	}
	for _, total := range []int64{100, 300, 200} {
		if err := s.PutExchange(ctx, exchange(t, c, 1, total, [32]byte{byte(total)})); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutExchange(ctx, exchange(t, c, 2, 50, [32]byte{50})); err != nil {
		t.Fatal(err)
	}
	em, err := s.LatestExchange(ctx, big.NewInt(1))
	if err != nil || em.AgreementTotal.Int64() != 300 {
		t.Fatalf("latest %v, %v; want total 300", em, err)
	}
	if got, err := em.RecoverConsumer(); err != nil || got != c.Address() {
		t.Fatalf("stored message no longer verifies: %v %v", got, err)
	}
	em, err = s.LatestExchange(ctx, big.NewInt(2))
	if err != nil || em.AgreementTotal.Int64() != 50 {
		t.Fatalf("agreement 2: %v %v", em, err)
	}
	// Resume needs the message's secret too.
	if _, err := s.Resume(ctx, big.NewInt(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resume without secret: %v", err)
	}
}

func TestChannelLedger(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), storage.FileName)
	db := openDB(t, path)
	s := New(db)
	id := payments.ConsumerChannelID(common.HexToAddress("0xc0ffee"))
	ch, err := s.Channel(big.NewInt(1337), id, big.NewInt(10_000))
	if err != nil {
		t.Fatal(err)
	}
	// Two ledgers over the same channel (two sessions) raising at once
	// never lose an update.
	ch2, err := s.Channel(big.NewInt(1337), id, big.NewInt(10_000))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(c *Channel) {
			defer wg.Done()
			for j := 0; j < 25; j++ {
				if _, err := c.Raise(ctx, big.NewInt(7)); err != nil {
					t.Error(err)
					return
				}
			}
		}([]*Channel{ch, ch2}[i%2])
	}
	wg.Wait()
	if got, err := ch.Promised(ctx); err != nil || got.Int64() != 8*25*7 {
		t.Fatalf("promised %v, %v; want %d", got, err, 8*25*7)
	}
	// Above the balance: refused, nothing changes.
	if _, err := ch.Raise(ctx, big.NewInt(10_000)); !errors.Is(err, pingpong.ErrInsufficientBalance) {
		t.Fatalf("over balance: %v", err)
	}
	if err := ch.SetBalance(big.NewInt(20_000)); err != nil {
		t.Fatal(err)
	}
	next, err := ch.Raise(ctx, big.NewInt(10_000))
	if err != nil || next.Int64() != 11_400 {
		t.Fatalf("after top-up: %v %v", next, err)
	}
	if _, err := ch.Raise(ctx, big.NewInt(0)); err == nil {
		t.Fatal("zero raise accepted")
	}
	if err := ch.AtLeast(ctx, big.NewInt(5)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path)
	defer db.Close()
	s = New(db)
	ch, err = s.Channel(big.NewInt(1337), id, big.NewInt(20_000))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ch.Promised(ctx); err != nil || got.Int64() != 11_400 {
		t.Fatalf("after reopen %v, %v; want 11400 (AtLeast never lowers)", got, err)
	}
	if err := ch.AtLeast(ctx, big.NewInt(12_000)); err != nil {
		t.Fatal(err)
	}
	if got, _ := ch.Promised(ctx); got.Int64() != 12_000 {
		t.Fatalf("AtLeast did not raise: %v", got)
	}
	// Another chain's channel with the same id is a separate ledger.
	other, err := s.Channel(big.NewInt(1), id, big.NewInt(20_000))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := other.Promised(ctx); got.Sign() != 0 {
		t.Fatalf("other chain shares the ledger: %v", got)
	}
}

// hermesStub issues promises like a hermes and can be down.
type hermesStub struct {
	operator *identity.KeySigner
	mu       sync.Mutex
	down     bool
	promised map[string]*big.Int
	revealed int
}

func (h *hermesStub) RequestPromise(_ context.Context, em *payments.ExchangeMessage) (*payments.Promise, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return nil, errors.New("hermes down")
	}
	if _, err := em.RecoverConsumer(); err != nil {
		return nil, err
	}
	h.promised[em.AgreementID.String()] = new(big.Int).Set(em.AgreementTotal)
	p := &payments.Promise{ChainID: em.ChainID, ChannelID: payments.ProviderChannelID(em.Provider, em.HermesID),
		Amount: new(big.Int).Set(em.AgreementTotal), Fee: new(big.Int), Hashlock: em.Promise.Hashlock}
	return p, p.Sign(h.operator)
}

func (h *hermesStub) RevealR(_ context.Context, _ common.Address, lock, r [32]byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return errors.New("hermes down")
	}
	if payments.Hashlock(r[:]) != lock {
		return errors.New("wrong secret")
	}
	h.revealed++
	return nil
}

// TestProviderRestartMidSession runs a paid session on real node
// databases, stops the provider while the hermes is unreachable, reopens
// its database in a new tracker, and checks that the consumer's last
// payment still reaches the hermes.
func TestProviderRestartMidSession(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	provDBPath := filepath.Join(dir, "provider", storage.FileName)
	provDB := openDB(t, provDBPath)
	consDB := openDB(t, filepath.Join(dir, "consumer", storage.FileName))
	defer consDB.Close()

	prov, cons := signer(t, 1), signer(t, 2)
	hermes := &hermesStub{operator: signer(t, 3), promised: map[string]*big.Int{}}
	price := pingpong.Price{PerHour: big.NewInt(3_600_000_000), PerGiB: big.NewInt(1 << 30)}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	agreement := big.NewInt(77)
	var outbox []*payments.Invoice
	trackerCfg := func(db *storage.DB) pingpong.TrackerConfig {
		return pingpong.TrackerConfig{
			ChainID: big.NewInt(1337), Provider: prov, Consumer: cons.Address(), HermesID: hermes.operator.Address(),
			AgreementID: agreement, Price: price, TransactorFee: big.NewInt(0), Start: start,
			Interval: 10 * time.Second, Grace: 30 * time.Second, CheckEvery: time.Second,
			Hashlocks: New(db), Exchanges: New(db), Hermes: hermes,
			Send: func(_ context.Context, inv *payments.Invoice) error { outbox = append(outbox, inv); return nil },
			Log:  slog.New(slog.DiscardHandler),
		}
	}
	tracker, err := pingpong.NewInvoiceTracker(trackerCfg(provDB))
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := New(consDB).Channel(big.NewInt(1337), payments.ConsumerChannelID(common.HexToAddress("0xc0ffee")), big.NewInt(1e18))
	if err != nil {
		t.Fatal(err)
	}
	payer, err := pingpong.NewInvoicePayer(pingpong.PayerConfig{
		ChainID: big.NewInt(1337), Consumer: cons, Provider: prov.Address(), HermesID: hermes.operator.Address(),
		Channel: ledger, Price: price, MaxFee: big.NewInt(0), Tolerance: pingpong.DefaultTolerance, Start: start,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 45; i++ {
		if i == 35 {
			hermes.mu.Lock()
			hermes.down = true
			hermes.mu.Unlock()
		}
		now := start.Add(time.Duration(i) * time.Second)
		bytes := uint64(i) << 20
		if err := tracker.Tick(ctx, now, bytes); err != nil {
			t.Fatal(err)
		}
		for _, inv := range outbox {
			em, err := payer.HandleInvoice(ctx, now, bytes, inv)
			if err != nil {
				t.Fatal(err)
			}
			if err := tracker.HandleExchange(ctx, now, em); err != nil {
				t.Fatal(err)
			}
		}
		outbox = nil
	}
	paid := payer.Stats().Paid
	if hermes.promised[agreement.String()].Cmp(paid) >= 0 {
		t.Fatal("want the last payment stuck behind the hermes outage")
	}
	// The provider process dies; the hermes comes back; the provider
	// restarts on the same database.
	if err := provDB.Close(); err != nil {
		t.Fatal(err)
	}
	hermes.mu.Lock()
	hermes.down = false
	hermes.mu.Unlock()
	provDB = openDB(t, provDBPath)
	defer provDB.Close()
	resume, err := New(provDB).Resume(ctx, agreement)
	if err != nil {
		t.Fatal(err)
	}
	cfg := trackerCfg(provDB)
	cfg.Resume = resume
	restarted, err := pingpong.NewInvoiceTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := hermes.promised[agreement.String()]; got.Cmp(paid) != 0 {
		t.Fatalf("hermes promised %s after restart, consumer paid %s", got, paid)
	}
	if promised, _ := ledger.Promised(ctx); promised.Cmp(paid) != 0 {
		t.Fatalf("consumer ledger %s, paid %s", promised, paid)
	}
}

// TestChannelCorruptRecord: a stored promised total that is not canonical
// decimal wei is reported, never read as some other amount.
func TestChannelCorruptRecord(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), storage.FileName))
	defer db.Close()
	ch, err := New(db).Channel(big.NewInt(1337), payments.ConsumerChannelID(common.HexToAddress("0xc0ffee")), big.NewInt(10_000))
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"", "-5", "12x", "0012", "1e3"} {
		if err := db.Update(ctx, func(tx *storage.Tx) error { return tx.Put(storage.BucketPromises, ch.key, []byte(raw)) }); err != nil {
			t.Fatal(err)
		}
		if got, err := ch.Promised(ctx); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("record %q: promised %v, %v; want a corrupt-record error", raw, got, err)
		}
	}
}
