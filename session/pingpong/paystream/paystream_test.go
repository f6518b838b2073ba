package paystream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/tick"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	osession "github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/session/pingpong/paystore"
	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/storage/storagetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func signer(t testing.TB, seed byte) *identity.KeySigner { return keytest.Seeded(t, seed) }

// hermesStub issues promises like a hermes (checking the consumer's
// signatures and that totals grow).
type hermesStub struct {
	operator *identity.KeySigner
	mu       sync.Mutex
	earned   *big.Int
	totals   map[string]*big.Int
}

func (h *hermesStub) RequestPromise(_ context.Context, em *payments.ExchangeMessage) (*payments.Promise, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := em.RecoverConsumer(); err != nil {
		return nil, err
	}
	prev := h.totals[em.AgreementID.String()]
	if prev == nil {
		prev = new(big.Int)
	}
	if em.AgreementTotal.Cmp(prev) <= 0 {
		return nil, errors.New("total must grow")
	}
	h.earned.Add(h.earned, new(big.Int).Sub(em.AgreementTotal, prev))
	h.totals[em.AgreementID.String()] = new(big.Int).Set(em.AgreementTotal)
	p := &payments.Promise{ChainID: em.ChainID, ChannelID: payments.ProviderChannelID(em.Provider, em.HermesID),
		Amount: new(big.Int).Set(h.earned), Fee: new(big.Int), Hashlock: em.Promise.Hashlock}
	return p, p.Sign(h.operator)
}

func (h *hermesStub) RevealR(_ context.Context, _ common.Address, lock, r [32]byte) error {
	if payments.Hashlock(r[:]) != lock {
		return errors.New("wrong secret")
	}
	return nil
}

func (h *hermesStub) total() *big.Int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return new(big.Int).Set(h.earned)
}

var quiet = slog.New(slog.DiscardHandler)

// session is both ends of one session's payment stream over net.Pipe,
// with real node databases and a hermes stub.
type session struct {
	provR, consR *sessionproto.Reader
	provW, consW *sessionproto.Writer
	provConn     net.Conn
	consConn     net.Conn
	tracker      *pingpong.InvoiceTracker
	payer        *pingpong.InvoicePayer
	ledger       *paystore.Channel
	hermes       *hermesStub
	bytes        atomic.Uint64
	opt          Options
	start        time.Time
	trackerCfg   pingpong.TrackerConfig
}

// rebuildTracker makes the session's tracker with the given invoice
// interval, sending through the session's current provider Writer.
func rebuildTracker(t *testing.T, s *session, interval time.Duration) *pingpong.InvoiceTracker {
	t.Helper()
	cfg := s.trackerCfg
	cfg.Interval, cfg.CheckEvery, cfg.Send = interval, interval/4, InvoiceSender(s.provW)
	tr, err := pingpong.NewInvoiceTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// payNextInvoice reads the consumer's side of the stream until an
// invoice arrives and lets the payer answer it; it returns the exchange
// message (not sent: the caller decides).
func (s *session) payNextInvoice(t *testing.T, ctx context.Context) *payments.ExchangeMessage {
	t.Helper()
	for {
		m, err := s.consR.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		im, ok := m.(*sessionproto.Invoice)
		if !ok {
			continue
		}
		inv, err := im.Payment()
		if err != nil {
			t.Fatal(err)
		}
		em, err := s.payer.HandleInvoice(ctx, time.Now(), s.bytes.Load(), inv)
		if err != nil {
			t.Fatal(err)
		}
		if em != nil {
			return em
		}
	}
}

func newSession(t *testing.T, providerPrice, consumerPrice pingpong.Price, readTimeout time.Duration, grace time.Duration) *session {
	t.Helper()
	s := &session{hermes: &hermesStub{operator: signer(t, 3), earned: new(big.Int), totals: map[string]*big.Int{}}}
	s.provConn, s.consConn = net.Pipe()
	t.Cleanup(func() { s.provConn.Close(); s.consConn.Close() })
	s.provR, s.provW = sessionproto.NewReader(s.provConn, readTimeout), sessionproto.NewWriter(s.provConn, time.Second)
	s.consR, s.consW = sessionproto.NewReader(s.consConn, readTimeout), sessionproto.NewWriter(s.consConn, time.Second)
	s.opt = Options{Keepalive: readTimeout / 5, Drain: 300 * time.Millisecond, Log: quiet}

	dir := t.TempDir()
	provDB := storagetest.Open(t, filepath.Join(dir, "p", storage.FileName))
	consDB := storagetest.Open(t, filepath.Join(dir, "c", storage.FileName))

	prov, cons := signer(t, 1), signer(t, 2)
	start := time.Now()
	s.start = start
	s.trackerCfg = pingpong.TrackerConfig{
		ChainID: big.NewInt(1337), Provider: prov, Consumer: cons.Address(), HermesID: s.hermes.operator.Address(),
		AgreementID: big.NewInt(5), Price: providerPrice, TransactorFee: big.NewInt(0), Start: start,
		Interval: 30 * time.Millisecond, CheckEvery: 5 * time.Millisecond, Grace: grace,
		Hashlocks: paystore.New(provDB), Exchanges: paystore.New(provDB), Hermes: s.hermes, Send: InvoiceSender(s.provW), Log: quiet,
	}
	s.tracker = rebuildTracker(t, s, s.trackerCfg.Interval)
	var err error
	s.ledger, err = paystore.New(consDB).Channel(big.NewInt(1337), payments.ConsumerChannelID(common.HexToAddress("0xc0ffee")), big.NewInt(1e18))
	if err != nil {
		t.Fatal(err)
	}
	s.payer, err = pingpong.NewInvoicePayer(pingpong.PayerConfig{
		ChainID: big.NewInt(1337), Consumer: cons, Provider: prov.Address(), HermesID: s.hermes.operator.Address(),
		Channel: s.ledger, Price: consumerPrice, MaxFee: big.NewInt(0), Tolerance: pingpong.DefaultTolerance, Start: start,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// traffic adds bytes until the test ends.
func (s *session) traffic(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick.Every(ctx, time.Millisecond, func(context.Context) { s.bytes.Add(256 << 10) })
	}()
}

var (
	price = pingpong.Price{PerHour: big.NewInt(1e17), PerGiB: big.NewInt(3e17)}
	free  = pingpong.Price{PerHour: big.NewInt(0), PerGiB: big.NewInt(0)}
)

func TestPaidSessionOverStream(t *testing.T) {
	s := newSession(t, price, price, 2*time.Second, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consCtx, disconnect := context.WithCancel(ctx)
	s.traffic(t)
	wait := s.run(t, ctx, consCtx, cancel)
	time.Sleep(300 * time.Millisecond)
	disconnect()
	provErr, consErr := wait()
	if consErr != nil {
		t.Fatalf("consumer: %v", consErr)
	}
	if !errors.Is(provErr, ErrPeerEnded) {
		t.Fatalf("provider: %v, want ErrPeerEnded", provErr)
	}
	if err := s.tracker.Settle(context.Background(), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st, paid := s.tracker.Stats(), s.payer.Stats().Paid
	promised, err := s.ledger.Promised(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Invoices < 3 || paid.Sign() <= 0 {
		t.Fatalf("%d invoices, paid %s: want a paid session", st.Invoices, paid)
	}
	if st.Settled.Cmp(paid) != 0 || promised.Cmp(paid) != 0 || s.hermes.total().Cmp(paid) != 0 {
		t.Fatalf("settled %s, ledger %s, hermes %s, paid %s", st.Settled, promised, s.hermes.total(), paid)
	}
}

// run starts the provider's payment loop until ctx ends and the
// consumer's until consCtx ends; wait waits for both (failing t, after
// cancel, if they do not stop: waitDone) and returns their errors.
func (s *session) run(t *testing.T, ctx, consCtx context.Context, cancel context.CancelFunc) (wait func() (provErr, consErr error)) {
	var provErr, consErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); provErr = Provider(ctx, s.provR, s.provW, s.tracker, s.bytes.Load, s.opt) }()
	go func() { defer wg.Done(); consErr = Consumer(consCtx, s.consR, s.consW, s.payer, s.bytes.Load, s.opt) }()
	return func() (error, error) {
		t.Helper()
		waitDone(t, &wg, cancel)
		return provErr, consErr
	}
}

// waitDone waits for wg, failing the test (after cancelling everything)
// if the loops do not stop.
func waitDone(t *testing.T, wg *sync.WaitGroup, cancel context.CancelFunc) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatal("payment loops did not stop")
	}
	cancel()
}

// silentPayer reads everything and never pays, but keeps the stream
// alive with keepalives; it returns the first Error the provider sends.
func silentPayer(ctx context.Context, r *sessionproto.Reader, w *sessionproto.Writer) *sessionproto.Error {
	go func() { _ = keepalive(ctx, w, 20*time.Millisecond) }()
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return nil
		}
		if e, ok := m.(*sessionproto.Error); ok {
			return e
		}
	}
}

func TestProviderEndsUnpaidSession(t *testing.T) {
	s := newSession(t, price, price, 2*time.Second, 150*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	s.traffic(t)
	var provErr error
	var told *sessionproto.Error
	wg.Add(2)
	go func() { defer wg.Done(); provErr = Provider(ctx, s.provR, s.provW, s.tracker, s.bytes.Load, s.opt) }()
	go func() { defer wg.Done(); told = silentPayer(ctx, s.consR, s.consW); cancel() }()
	waitDone(t, &wg, cancel)
	if !errors.Is(provErr, pingpong.ErrPaymentTimeout) {
		t.Fatalf("provider: %v, want ErrPaymentTimeout", provErr)
	}
	if told == nil || told.Code != sessionproto.CodePaymentTimeout {
		t.Fatalf("consumer was told %v, want payment_timeout", told)
	}
	if r := EndReason(provErr); r != "payment_timeout" {
		t.Fatalf("EndReason(%v) = %s, want payment_timeout", provErr, r)
	}
}

func TestConsumerRefusesOvercharge(t *testing.T) {
	inflated := pingpong.Price{PerHour: big.NewInt(3e17), PerGiB: big.NewInt(9e17)}
	s := newSession(t, inflated, price, 2*time.Second, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.traffic(t)
	provErr, consErr := s.run(t, ctx, ctx, cancel)()
	if !errors.Is(consErr, pingpong.ErrOvercharge) {
		t.Fatalf("consumer: %v, want ErrOvercharge", consErr)
	}
	var perr *sessionproto.Error
	if !errors.As(provErr, &perr) || perr.Code != sessionproto.CodeOvercharge {
		t.Fatalf("provider: %v, want the consumer's overcharge error", provErr)
	}
	// Both sides count it as overcharge: one sent the code, one received it.
	if rp, rc := EndReason(provErr), EndReason(consErr); rp != "overcharge" || rc != "overcharge" {
		t.Fatalf("end reasons: provider %s, consumer %s; want overcharge", rp, rc)
	}
	// Early invoices can pass within the documented tolerance (its 2 s
	// clock slack dominates in the first milliseconds), but the consumer
	// never promised more than the fair total plus that tolerance.
	promised, _ := s.ledger.Promised(context.Background())
	allowed := pingpong.DefaultTolerance.Allowed(price, time.Since(s.start), s.bytes.Load())
	if promised.Cmp(allowed) > 0 || promised.Cmp(s.payer.Stats().Paid) != 0 {
		t.Fatalf("consumer promised %s (paid %s), fair total with tolerance %s", promised, s.payer.Stats().Paid, allowed)
	}
}

func TestSilentPeerDropped(t *testing.T) {
	s := newSession(t, free, free, 100*time.Millisecond, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The consumer end is open but nobody reads or writes it; net.Pipe
	// writes block, so drain what the provider sends.
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := s.consConn.Read(buf); err != nil {
				return
			}
		}
	}()
	err := Provider(ctx, s.provR, s.provW, s.tracker, s.bytes.Load, s.opt)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("provider: %v, want a read timeout", err)
	}
	if r := EndReason(err); r != "read_timeout" {
		t.Fatalf("EndReason(%v) = %s, want read_timeout", err, r)
	}
	s.consConn.Close()
}

func TestFreeSessionKeptAlive(t *testing.T) {
	const readTimeout = 400 * time.Millisecond
	s := newSession(t, free, free, readTimeout, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consCtx, disconnect := context.WithCancel(ctx)
	wait := s.run(t, ctx, consCtx, cancel)
	// Many read timeouts long, with no invoices: only keepalives keep it up.
	time.Sleep(4 * readTimeout)
	disconnect()
	provErr, consErr := wait()
	if consErr != nil || !errors.Is(provErr, ErrPeerEnded) {
		t.Fatalf("consumer %v, provider %v: want a clean disconnect", consErr, provErr)
	}
	if rp, rc := EndReason(provErr), EndReason(consErr); rp != EndNormal || rc != EndNormal {
		t.Fatalf("end reasons: provider %s, consumer %s; want normal", rp, rc)
	}
	if n := s.tracker.Stats().Invoices; n != 0 {
		t.Fatalf("%d invoices in a free session", n)
	}
}

func TestCodeFor(t *testing.T) {
	cases := map[error]sessionproto.ErrorCode{
		pingpong.ErrPaymentTimeout:      sessionproto.CodePaymentTimeout,
		pingpong.ErrUnpaidLimit:         sessionproto.CodePaymentTimeout,
		pingpong.ErrOvercharge:          sessionproto.CodeOvercharge,
		pingpong.ErrInsufficientBalance: sessionproto.CodeInsufficientFunds,
		pingpong.ErrBadExchange:         sessionproto.CodeBadRequest,
		ErrQuotaExhausted:               sessionproto.CodeQuotaExhausted,
		readErr(fmt.Errorf("%w (35s): i/o timeout", sessionproto.ErrReadTimeout)): sessionproto.CodeReadTimeout,
		errors.New("disk on fire"): sessionproto.CodeInternal,
	}
	for err, want := range cases {
		if got := CodeFor(err); got != want {
			t.Errorf("CodeFor(%v) = %s, want %s", err, got, want)
		}
	}
	if got := sanitize("a\x00b\nc"); got != "a b c" {
		t.Fatalf("sanitize: %q", got)
	}
}

// TestEndReason: the ends no payment loop test above reaches, and that
// every reason is one of EndReasons (a bounded label set).
func TestEndReason(t *testing.T) {
	cases := map[error]string{
		nil: EndNormal,
		fmt.Errorf("%w: the ICE path went silent or failed", osession.ErrPathLost):       EndPathLost,
		fmt.Errorf("%w: no resume within 30s", ErrStreamLost):                            EndStreamLost,
		fmt.Errorf("%w: bye", ErrPeerEnded):                                              EndNormal,
		&sessionproto.Error{Code: sessionproto.CodeQuotaExhausted, Message: "full"}:      "quota_exhausted",
		fmt.Errorf("consumer: %w", &sessionproto.Error{Code: sessionproto.CodeInternal}): "internal",
		&sessionproto.Error{Code: "peer's free text"}:                                    EndOther,
		fmt.Errorf("x: %w", ErrQuotaExhausted):                                           "quota_exhausted",
		errors.New("disk on fire"):                                                       "internal",
	}
	all := EndReasons()
	for err, want := range cases {
		got := EndReason(err)
		if got != want {
			t.Errorf("EndReason(%v) = %s, want %s", err, got, want)
		}
		if !slices.Contains(all, got) {
			t.Errorf("EndReason(%v) = %s, not in EndReasons %v", err, got, all)
		}
	}
	if len(all) != len(sessionproto.Codes())+4 {
		t.Fatalf("EndReasons %v: want the %d codes and normal, path_lost, stream_lost, other", all, len(sessionproto.Codes()))
	}
}

// TestExchangeInFlightAtProviderEnd: the consumer pays an invoice, the
// provider ends the session before reading that payment, and the
// exchange message arrives after the provider's Destroy. The provider
// still forwards it, so what the consumer's ledger counts is what the
// hermes promised the provider: no overpay.
func TestExchangeInFlightAtProviderEnd(t *testing.T) {
	s := newSession(t, price, price, 2*time.Second, time.Second)
	s.traffic(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	provDone := make(chan error, 1)
	go func() { provDone <- Provider(ctx, s.provR, s.provW, s.tracker, s.bytes.Load, s.opt) }()

	// The consumer reads an invoice and pays it (its ledger counts it).
	em := s.payNextInvoice(t, ctx)
	// The provider shuts down; the consumer sees its Destroy only after
	// it sent the exchange message.
	cancel()
	for {
		m, err := s.consR.ReadMessage(context.Background())
		if err != nil {
			t.Fatalf("consumer read before the destroy: %v", err)
		}
		if _, ok := m.(*sessionproto.Destroy); ok {
			break
		}
	}
	xm, err := sessionproto.NewExchangeMessage(em)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.consW.WriteMessage(context.Background(), xm); err != nil {
		t.Fatalf("exchange message sent after the provider's destroy was not read: %v", err)
	}
	s.consConn.Close()
	select {
	case err := <-provDone:
		if err != nil {
			t.Fatalf("provider: %v, want a clean end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("provider did not stop")
	}
	if err := s.tracker.Settle(context.Background(), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	promised, err := s.ledger.Promised(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if promised.Sign() <= 0 || s.hermes.total().Cmp(promised) != 0 || s.tracker.Stats().Settled.Cmp(promised) != 0 {
		t.Fatalf("consumer ledger %s, hermes promised %s, tracker settled %s: the in-flight payment was lost",
			promised, s.hermes.total(), s.tracker.Stats().Settled)
	}
}

// TestProviderDrainBounded: a consumer that neither answers nor closes
// the stream after the provider ended the session holds the provider
// only for the drain time. The reader's timeout is an hour, so nothing
// but the drain can end the provider's read: with the drain ignored the
// provider never returns and the test fails; it also returns no earlier
// than the drain (it did keep reading for late payments).
func TestProviderDrainBounded(t *testing.T) {
	s := newSession(t, free, free, time.Hour, time.Second)
	const drain = 50 * time.Millisecond
	s.opt.Drain = drain
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := s.consConn.Read(buf); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Provider(ctx, s.provR, s.provW, s.tracker, s.bytes.Load, s.opt) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("provider: %v", err)
		}
		if took := time.Since(start); took < drain {
			t.Fatalf("provider returned after %v, before the %v drain: it did not wait for late payments", took, drain)
		}
	case <-time.After(10 * time.Second):
		// The session ended at once (ctx was canceled) and the reader
		// would wait an hour: only the drain can have ended it.
		s.consConn.Close()
		<-done
		t.Fatal("provider waited for the silent consumer beyond the drain")
	}
	s.consConn.Close()
}
