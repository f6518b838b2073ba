package client

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/hermes"
	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/storage/storagetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"), goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}

var (
	chainID  = big.NewInt(1337)
	hermesID = common.HexToAddress("0x4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e")
)

// fakeChain registers every consumer with a large balance.
type fakeChain struct{}

func channelOf(c common.Address) common.Address {
	return common.BytesToAddress(crypto.Keccak256(c[:], hermesID[:])[12:])
}

func (fakeChain) ConsumerChannel(_ context.Context, c common.Address) (hermes.ChannelInfo, error) {
	return hermes.ChannelInfo{Channel: channelOf(c), Registered: true, Hermes: hermesID, Balance: big.NewInt(1e18), Settled: new(big.Int)}, nil
}
func (fakeChain) ProviderSettled(context.Context, common.Address) (*big.Int, error) {
	return new(big.Int), nil
}
func (fakeChain) SettleConsumerPromise(context.Context, common.Address, payments.Promise, []byte) (common.Hash, error) {
	return common.Hash{}, errors.New("not in this test")
}
func (fakeChain) WatchChannelEvents(ctx context.Context, _ func(hermes.ChannelEvent)) error {
	<-ctx.Done()
	return ctx.Err()
}

func signer(label string) *identity.KeySigner {
	k, _ := crypto.ToECDSA(crypto.Keccak256([]byte("client test " + label)))
	return identity.NewKeySigner(k)
}

type env struct {
	svc      *hermes.Service
	st       store.Store
	srv      *httptest.Server
	operator identity.Signer
	// fail makes the next n requests fail: as 503 before the hermes sees
	// them, or (afterwards) by dropping the hermes's answer.
	failBefore, failAfter atomic.Int32
	requests              atomic.Int32
	// tamper, when set, rewrites the promise of every exchange answer (a
	// lying hermes); reveals counts reveal requests.
	tamper  atomic.Pointer[func(*payments.Promise)]
	reveals atomic.Int32
}

func newEnv(t *testing.T) *env {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hermes.db"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, operator: signer("operator")}
	svc, err := hermes.New(hermes.Config{ChainID: chainID, HermesID: hermesID, Operator: e.operator, SettleInterval: time.Hour,
		Metrics: hermes.NewMetrics(nil)}, st, fakeChain{})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	h := svc.Handler(prometheus.NewRegistry())
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.requests.Add(1)
		if e.failBefore.Add(-1) >= 0 {
			http.Error(w, "injected outage", http.StatusServiceUnavailable)
			return
		}
		if e.failAfter.Add(-1) >= 0 {
			h.ServeHTTP(httptest.NewRecorder(), r) // the hermes acts, the answer is lost
			http.Error(w, "injected lost answer", http.StatusBadGateway)
			return
		}
		if r.URL.Path == api.PathReveal {
			e.reveals.Add(1)
		}
		if f := e.tamper.Load(); f != nil && r.URL.Path == api.PathExchange {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var resp api.ExchangeResponse
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
			(*f)(&resp.Promise)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(resp)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		e.srv.Close()
		cancel()
		wg.Wait()
		_ = st.Close()
	})
	return e
}

func openHashlocks(t *testing.T, path string) (*StorageHashlocks, *storage.DB) {
	db := storagetest.Open(t, path)
	hl, err := NewStorageHashlocks(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return hl, db
}

func message(t *testing.T, consumer identity.Signer, provider common.Address, total int64, hashlock [32]byte) *payments.ExchangeMessage {
	m := &payments.ExchangeMessage{
		Promise:     payments.Promise{ChainID: chainID, ChannelID: payments.ConsumerChannelID(channelOf(consumer.Address())), Amount: big.NewInt(total), Fee: big.NewInt(0), Hashlock: hashlock},
		AgreementID: big.NewInt(1), AgreementTotal: big.NewInt(total), Provider: provider, HermesID: hermesID, ChainID: chainID,
	}
	if err := m.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	return m
}

// fakeTerms is the Chain of the tests: fixed terms, counting reads.
type fakeTerms struct {
	mu    sync.Mutex
	t     Terms
	err   error
	reads int
	// settle answers ProviderSettlement (nil: every promise settles).
	settle func(payments.Promise) error
}

func (f *fakeTerms) HermesTerms(_ context.Context, h common.Address) (Terms, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if h != hermesID {
		return Terms{}, errors.New("not a registered hermes")
	}
	return f.t, f.err
}

// ProviderSettlement implements Chain: f.settle decides (nil: settleable).
func (f *fakeTerms) ProviderSettlement(_ context.Context, _, _ common.Address, p payments.Promise) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.settle != nil {
		return f.settle(p)
	}
	return nil
}

func (f *fakeTerms) set(t Terms) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = t
}

func (f *fakeTerms) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// termsOf are the on-chain terms of e's hermes: its operator, a 1% fee.
func termsOf(e *env) *fakeTerms {
	return &fakeTerms{t: Terms{ChainID: chainID, Operator: e.operator.Address(), FeeBps: 100, FeeNoticeDelay: time.Hour, ChainTime: time.Now()}}
}

func fastOptions(e *env) Options {
	return Options{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, Chain: termsOf(e), HermesID: hermesID}
}

func mustNew(t *testing.T, url string, st HashlockStore, o Options) *Client {
	t.Helper()
	c, err := New(url, st, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRequestPromiseRevealsAndRetries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hl, db := openHashlocks(t, filepath.Join(t.TempDir(), "node.db"))
	defer db.Close()
	c := mustNew(t, e.srv.URL, hl, fastOptions(e))
	consumer, provider := signer("consumer"), signer("provider").Address()

	h, err := c.NewHashlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.failBefore.Store(2) // two outages, then success
	p, err := c.RequestPromise(ctx, message(t, consumer, provider, 100, h))
	if err != nil {
		t.Fatal(err)
	}
	if p.Amount.Int64() != 100 || p.Hashlock != h {
		t.Fatalf("promise %+v", p)
	}
	ent, err := hl.Get(ctx, h)
	if err != nil || !ent.Revealed || ent.Promise == nil {
		t.Fatalf("entry %+v %v", ent, err)
	}
	pv, err := e.svc.Provider(ctx, provider)
	if err != nil || pv.Unrevealed != 0 || pv.Earned.Int64() != 100 {
		t.Fatalf("hermes provider view %+v %v", pv, err)
	}
	// A rejection is not retried and carries the hermes's code.
	h2, _ := c.NewHashlock(ctx)
	before := e.requests.Load()
	_, err = c.RequestPromise(ctx, message(t, consumer, provider, 50, h2))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != api.CodeAmountDecreased {
		t.Fatalf("decreasing message: %v", err)
	}
	if n := e.requests.Load() - before; n != 1 {
		t.Fatalf("rejection was tried %d times", n)
	}
	// A message whose hashlock this node never made is refused locally.
	if _, err := c.RequestPromise(ctx, message(t, consumer, provider, 200, [32]byte{9})); !errors.Is(err, ErrUnknownHashlock) {
		t.Fatalf("foreign hashlock: %v", err)
	}
}

// TestRecoverAfterCrash: the hermes accepted a message but the provider
// crashed before storing the answer (and in another case, before
// revealing). After restart, Recover gets the same promise and reveals.
func TestRecoverAfterCrash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "node.db")
	hl, db := openHashlocks(t, path)
	consumer, provider := signer("consumer"), signer("provider").Address()
	opts := fastOptions(e)
	opts.Attempts = 1
	c := mustNew(t, e.srv.URL, hl, opts)

	h1, err := c.NewHashlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m1 := message(t, consumer, provider, 100, h1)
	e.failAfter.Store(1) // the hermes accepts m1 but the answer is lost
	if _, err := c.RequestPromise(ctx, m1); err == nil {
		t.Fatal("expected the lost answer to fail the request")
	}
	h2, _ := c.NewHashlock(ctx)
	m2 := message(t, consumer, provider, 200, h2)
	if _, err := c.RequestPromise(ctx, m2); err != nil {
		t.Fatal(err)
	}
	_ = db.Close() // "crash": reopen the node database

	hl, db = openHashlocks(t, path)
	defer db.Close()
	ent, err := hl.Get(ctx, h1)
	if err != nil || ent.Message == nil || ent.Promise != nil {
		t.Fatalf("entry before recovery %+v %v", ent, err)
	}
	// m2's reveal is also marked undone, as if the crash came before it.
	e2, _ := hl.Get(ctx, h2)
	e2.Revealed = false
	if err := hl.Update(ctx, e2); err != nil {
		t.Fatal(err)
	}
	c = mustNew(t, e.srv.URL, hl, fastOptions(e))
	n, err := c.Recover(ctx)
	if err != nil || n != 2 {
		t.Fatalf("recover: %d %v", n, err)
	}
	ent, _ = hl.Get(ctx, h1)
	p, err := payments.DecodePromise(ent.Promise)
	if err != nil || p.Amount.Int64() != 100 || !ent.Revealed {
		t.Fatalf("recovered entry %+v %v", ent, err)
	}
	if left, _ := hl.Unfinished(ctx); len(left) != 0 {
		t.Fatalf("%d entries unfinished after recovery", len(left))
	}
	st, _ := e.st.Stats(ctx)
	if st.Exchanges != 2 {
		t.Fatalf("hermes stored %d exchanges, want 2 (the retry must not double)", st.Exchanges)
	}
	pv, _ := e.svc.Provider(ctx, provider)
	if pv.Unrevealed != 0 {
		t.Fatalf("hermes still waits for %d secrets", pv.Unrevealed)
	}
}

func TestHashlockIsDurableBeforeReturn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	hl, db := openHashlocks(t, path)
	c := mustNew(t, "http://127.0.0.1:1", hl, Options{})
	h, err := c.NewHashlock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	hl, db = openHashlocks(t, path)
	defer db.Close()
	e, err := hl.Get(context.Background(), h)
	if err != nil || payments.Hashlock(e.R[:]) != h {
		t.Fatalf("secret after reopen: %+v %v", e, err)
	}
}

// hungHermes is a server that accepts requests and never answers until the
// test ends.
func hungHermes(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var seen atomic.Int32
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() {
		close(stop)
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, &seen
}

// TestHungHermesPerAttemptTimeout: each attempt against a hermes that never
// answers ends after AttemptTimeout, the retries run out, and the call
// returns a retryable (not permanent) error well within the caller's bound.
func TestHungHermesPerAttemptTimeout(t *testing.T) {
	srv, seen := hungHermes(t)
	hl, db := openHashlocks(t, filepath.Join(t.TempDir(), "node.db"))
	defer db.Close()
	const attempt = 100 * time.Millisecond
	c := mustNew(t, srv.URL, hl, Options{AttemptTimeout: attempt, Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := c.NewHashlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.RequestPromise(ctx, message(t, signer("consumer"), signer("provider").Address(), 100, h))
	elapsed := time.Since(start)
	if err == nil || !Retryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung hermes: %v, want a retryable timeout", err)
	}
	var ae *APIError
	if errors.As(err, &ae) {
		t.Fatalf("a timeout must not look like a rejection: %v", err)
	}
	if n := seen.Load(); n != 3 {
		t.Fatalf("hung hermes saw %d attempts, want 3", n)
	}
	// Three bounded attempts; without the per-attempt timeout the call
	// would hang until the caller's minute runs out.
	if elapsed > 20*attempt {
		t.Fatalf("call took %s for 3 attempts of %s", elapsed, attempt)
	}
	if ctx.Err() != nil {
		t.Fatal("the caller's context ran out: attempts were not bounded")
	}
}

// TestHungHermesCallerDeadline: with the default (long) attempt timeout,
// the caller's deadline bounds the whole call, including backoff.
func TestHungHermesCallerDeadline(t *testing.T) {
	srv, seen := hungHermes(t)
	hl, db := openHashlocks(t, filepath.Join(t.TempDir(), "node.db"))
	defer db.Close()
	c := mustNew(t, srv.URL, hl, Options{BaseDelay: time.Second})
	if c.o.AttemptTimeout != DefaultAttemptTimeout {
		t.Fatalf("default attempt timeout %s", c.o.AttemptTimeout)
	}
	h, err := c.NewHashlock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const bound = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	start := time.Now()
	_, err = c.RequestPromise(ctx, message(t, signer("consumer"), signer("provider").Address(), 100, h))
	elapsed := time.Since(start)
	if !Retryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung hermes under a deadline: %v, want a retryable deadline error", err)
	}
	if elapsed > bound+2*time.Second {
		t.Fatalf("call took %s with a %s deadline", elapsed, bound)
	}
	if n := seen.Load(); n != 1 {
		t.Fatalf("hung hermes saw %d attempts, want 1 (no backoff past the deadline)", n)
	}
	// Info and Provider go through the same path.
	ctx2, cancel2 := context.WithTimeout(context.Background(), bound)
	defer cancel2()
	if _, err := c.Info(ctx2); !Retryable(err) {
		t.Fatalf("info against a hung hermes: %v", err)
	}
}

// TestMessageStoredWhenCtxEnds: a message handed over as the provider
// shuts down (ctx already cancelled) is still stored, so Recover forwards
// it after the restart; before, the cancelled ctx failed the store write
// and the consumer's payment never reached the hermes.
func TestMessageStoredWhenCtxEnds(t *testing.T) {
	e := newEnv(t)
	hl, db := openHashlocks(t, filepath.Join(t.TempDir(), "node.db"))
	defer db.Close()
	c := mustNew(t, e.srv.URL, hl, fastOptions(e))
	consumer, provider := signer("consumer"), signer("provider").Address()
	h, err := c.NewHashlock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.RequestPromise(ctx, message(t, consumer, provider, 100, h)); !Retryable(err) {
		t.Fatalf("request with an ended ctx: %v, want retryable", err)
	}
	if ent, err := hl.Get(context.Background(), h); err != nil || ent.Message == nil {
		t.Fatalf("message not stored: %+v %v", ent, err)
	}
	if n, err := c.Recover(context.Background()); err != nil || n != 1 {
		t.Fatalf("recover: %d %v", n, err)
	}
	if pv, err := e.svc.Provider(context.Background(), provider); err != nil || pv.Earned.Int64() != 100 || pv.Unrevealed != 0 {
		t.Fatalf("hermes after recovery: %+v %v", pv, err)
	}
}
