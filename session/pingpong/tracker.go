package pingpong

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/internal/retry"
	"github.com/openmyst/openmyst/payments"
)

// HashlockStore durably keeps the provider's invoice secrets. Put must not
// return before R is on disk: an invoice leaves only after Put succeeds, so
// R can always be revealed (and the hermes promise settled) after a crash.
type HashlockStore interface {
	// Put stores secret r under its hashlock for agreementID.
	Put(ctx context.Context, hashlock [32]byte, r [32]byte, agreementID *big.Int) error
}

// ExchangeStore durably keeps the latest exchange message a consumer sent
// for an agreement. PutExchange must not return before the message is on
// disk; the tracker forwards it to the hermes only after that, so a
// payment the consumer made is never lost to a crash or a hermes outage.
type ExchangeStore interface {
	// PutExchange stores em, replacing any earlier one for its agreement.
	PutExchange(ctx context.Context, em *payments.ExchangeMessage) error
}

// Hermes is the provider's client of its payment hub.
type Hermes interface {
	// RequestPromise forwards a consumer exchange message and returns the
	// hermes promise to the provider locked by the same hashlock. It must
	// be idempotent for the same message. Permanent refusals wrap
	// ErrHermesRejected; any other error is retried.
	RequestPromise(ctx context.Context, em *payments.ExchangeMessage) (*payments.Promise, error)
	// RevealR reveals the secret r behind hashlock (keccak256(r)) so the
	// hermes can claim the consumer's promise. It must be idempotent.
	RevealR(ctx context.Context, provider common.Address, hashlock [32]byte, r [32]byte) error
}

// Default timing of a tracker. An invoice and its exchange message take
// about 1.3 KB on the session stream, so a 30 s interval keeps payment
// control traffic near 2.6 KB per session-minute (docs/session.md); the
// Threshold, not a shorter interval, keeps exposure small on fast
// transfers.
const (
	DefaultInterval = 30 * time.Second
	DefaultGrace    = 30 * time.Second
)

// TrackerConfig configures an InvoiceTracker for one session.
type TrackerConfig struct {
	// ChainID is the chain the session is paid on.
	ChainID *big.Int
	// Provider signs the invoices.
	Provider identity.Signer
	// Consumer is the identity that must sign every exchange message.
	Consumer common.Address
	// HermesID is the hermes the consumer pays through.
	HermesID common.Address
	// AgreementID names the agreement (session) in invoices and promises.
	AgreementID *big.Int
	// Price is the agreed price.
	Price Price
	// ProposalSeq, when set, is the sequence number of the signed proposal
	// the session was opened on: invoices are then v2 and carry it with
	// the session time and bytes they charge for (payments.Usage), so an
	// overcharge is provable from the invoice alone.
	ProposalSeq uint64
	// TransactorFee is the fee every consumer promise must carry.
	TransactorFee *big.Int
	// Start is when the session started serving traffic.
	Start time.Time

	// Interval is how often an invoice is sent while value accrues
	// (zero: DefaultInterval).
	Interval time.Duration
	// Threshold, when positive, sends an invoice early as soon as the
	// value not yet invoiced reaches it (fast downloads).
	Threshold *big.Int
	// Grace is how long an invoice may stay unsettled before the session
	// ends with ErrPaymentTimeout (zero: DefaultGrace).
	Grace time.Duration
	// MaxUnpaid, when set, ends the session with ErrUnpaidLimit as soon as
	// the value served but not settled exceeds it. It must exceed
	// Threshold.
	MaxUnpaid *big.Int
	// CheckEvery is how often Run re-evaluates the session (default:
	// Interval/4, at least 10ms). It adds to the exposure bound.
	CheckEvery time.Duration

	// Hashlocks stores invoice secrets before invoices leave.
	Hashlocks HashlockStore
	// Exchanges stores consumer exchange messages before forwarding.
	Exchanges ExchangeStore
	// Hermes forwards exchange messages and takes revealed secrets.
	Hermes Hermes
	// Send delivers an invoice to the consumer.
	Send func(ctx context.Context, inv *payments.Invoice) error
	// Permanent, when set, classifies a Hermes error as a refusal for good
	// (the session ends) rather than an outage (retried). Default: errors
	// wrapping ErrHermesRejected. A hermes HTTP client would treat every
	// error code but "unavailable" as permanent.
	Permanent func(err error) bool
	// OnSettled, when set, is called after each hermes promise with the
	// agreement total it covers (for session history and earnings).
	OnSettled func(agreementTotal *big.Int, promise *payments.Promise)
	// Resume, when set, continues an agreement after a provider restart:
	// the latest stored exchange message and the secret of its hashlock.
	// It is forwarded again (idempotently) on the first Tick.
	Resume *Resume
	// Log receives the tracker's events (default slog.Default()).
	Log *slog.Logger
}

// Resume is a stored exchange message to forward again after a restart.
type Resume struct {
	// Exchange is the latest exchange message stored for the agreement.
	Exchange *payments.ExchangeMessage
	// R is the secret of Exchange's hashlock (from the HashlockStore).
	R [32]byte
}

func (c *TrackerConfig) validate() error {
	switch {
	case c.ChainID == nil || c.ChainID.Sign() <= 0:
		return errors.New("chain id must be positive")
	case c.Provider == nil:
		return errors.New("provider signer is required")
	case c.Consumer == (common.Address{}):
		return errors.New("consumer is required")
	case c.HermesID == (common.Address{}):
		return errors.New("hermes id is required")
	case c.AgreementID == nil || c.AgreementID.Sign() < 0:
		return errors.New("agreement id is required")
	case c.TransactorFee == nil || c.TransactorFee.Sign() < 0:
		return errors.New("transactor fee must be set and not negative")
	case c.Start.IsZero():
		return errors.New("start time is required")
	case c.Interval < 0:
		return errors.New("interval must not be negative")
	case c.Grace < 0:
		return errors.New("grace must not be negative")
	case c.Threshold != nil && c.Threshold.Sign() < 0:
		return errors.New("threshold must not be negative")
	case c.MaxUnpaid != nil && c.MaxUnpaid.Sign() <= 0:
		return errors.New("max unpaid must be positive")
	case c.MaxUnpaid != nil && c.Threshold != nil && c.MaxUnpaid.Cmp(c.Threshold) <= 0:
		return errors.New("max unpaid must exceed threshold")
	case c.Hashlocks == nil || c.Exchanges == nil || c.Hermes == nil || c.Send == nil:
		return errors.New("hashlock store, exchange store, hermes and send are required")
	}
	if c.Resume != nil {
		em := c.Resume.Exchange
		if em == nil || em.AgreementID == nil || em.AgreementID.Cmp(c.AgreementID) != 0 {
			return errors.New("resume exchange must be for this agreement")
		}
		if payments.Hashlock(c.Resume.R[:]) != em.Promise.Hashlock {
			return errors.New("resume secret does not match the exchange hashlock")
		}
	}
	return c.Price.Validate()
}

// invoice is one invoice the tracker sent.
type invoice struct {
	hashlock [32]byte
	r        [32]byte
	total    *big.Int
	sentAt   time.Time
	signed   *payments.Invoice // as sent, for Redeliver
}

// forward is an accepted exchange message not yet turned into a hermes
// promise (or whose secret is not yet revealed).
type forward struct {
	em       *payments.ExchangeMessage
	r        [32]byte
	promised bool // hermes promise obtained; only the reveal is left
}

// TrackerStats is a snapshot of a tracker's accounting, in wei.
type TrackerStats struct {
	// Owed is the agreement total at the last Tick.
	Owed *big.Int
	// Invoiced is the total of the latest invoice sent.
	Invoiced *big.Int
	// Accepted is the total of the latest valid exchange message.
	Accepted *big.Int
	// Settled is the total covered by a hermes promise.
	Settled *big.Int
	// Invoices counts the invoices sent.
	Invoices int
	// Paid counts the invoices answered with a valid exchange message
	// (stored, then forwarded to the hermes).
	Paid int
	// Refused counts the exchange messages refused as invalid (each ends
	// the session with ErrBadExchange).
	Refused int
	// UnpaidSince is when the oldest unsettled invoice was sent (zero
	// when every invoice is settled).
	UnpaidSince time.Time
}

// InvoiceTracker is the provider's side of pay-as-you-go for one session.
// Tick and HandleExchange must not be called concurrently (Run serializes
// them); Stats is safe from any goroutine.
type InvoiceTracker struct {
	cfg TrackerConfig
	log *slog.Logger

	invoices      []invoice // unsettled, oldest first
	lastInvoiceAt time.Time
	invoiceCount  int
	paidCount     int
	refusedCount  int
	owed          *big.Int
	owedFor       payments.Usage // elapsed and bytes owed was priced for
	invoiced      *big.Int
	accepted      *big.Int
	lastAccepted  *payments.ExchangeMessage
	settled       *big.Int
	pending       *forward
	hermesDown    bool // last hermes call failed (log once per outage)

	// redeliver holds the total a consumer that came back says it has
	// paid (Redeliver); wake makes Run act on it at once.
	redeliverMu sync.Mutex
	redeliver   *big.Int
	wake        chan struct{}

	mu    sync.Mutex
	stats TrackerStats
}

// NewInvoiceTracker returns a tracker for one session.
func NewInvoiceTracker(cfg TrackerConfig) (*InvoiceTracker, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pingpong: invoice tracker: %w", err)
	}
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.Grace = cmp.Or(cfg.Grace, DefaultGrace)
	if cfg.Permanent == nil {
		cfg.Permanent = func(err error) bool { return errors.Is(err, ErrHermesRejected) }
	}
	cfg.CheckEvery = defaults.Positive(cfg.CheckEvery, max(cfg.Interval/4, 10*time.Millisecond))
	log := cmp.Or(cfg.Log, slog.Default())
	t := &InvoiceTracker{
		cfg:      cfg,
		log:      log.With("agreement", cfg.AgreementID.String(), "consumer", cfg.Consumer.Hex()),
		owed:     new(big.Int),
		invoiced: new(big.Int),
		accepted: new(big.Int),
		settled:  new(big.Int),
		wake:     make(chan struct{}, 1),
	}
	if r := cfg.Resume; r != nil {
		t.accepted.Set(r.Exchange.AgreementTotal)
		t.invoiced.Set(r.Exchange.AgreementTotal)
		t.lastAccepted = r.Exchange
		t.pending = &forward{em: r.Exchange, r: r.R}
	}
	t.snapshot()
	return t, nil
}

// Stats returns a snapshot of the tracker's accounting.
func (t *InvoiceTracker) Stats() TrackerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Owed, s.Invoiced = new(big.Int).Set(s.Owed), new(big.Int).Set(s.Invoiced)
	s.Accepted, s.Settled = new(big.Int).Set(s.Accepted), new(big.Int).Set(s.Settled)
	return s
}

func (t *InvoiceTracker) snapshot() {
	s := TrackerStats{
		Owed: new(big.Int).Set(t.owed), Invoiced: new(big.Int).Set(t.invoiced),
		Accepted: new(big.Int).Set(t.accepted), Settled: new(big.Int).Set(t.settled),
		Invoices: t.invoiceCount, Paid: t.paidCount, Refused: t.refusedCount,
	}
	if len(t.invoices) > 0 {
		s.UnpaidSince = t.invoices[0].sentAt
	}
	t.mu.Lock()
	t.stats = s
	t.mu.Unlock()
}

// Tick prices the session at now with bytes of traffic so far (up plus
// down, as the tunnel counts them), retries a pending hermes forward,
// sends an invoice when one is due, and enforces the payment policy. It
// returns ErrPaymentTimeout or ErrUnpaidLimit when the session must end,
// or another error when an invoice could not be stored or sent.
func (t *InvoiceTracker) Tick(ctx context.Context, now time.Time, bytes uint64) error {
	defer t.snapshot()
	if t.pending != nil {
		if err := t.flush(ctx); err != nil {
			return err
		}
	}
	if err := t.resend(ctx); err != nil {
		return err
	}
	// Whole milliseconds, so an invoice's Usage prices to its total exactly.
	elapsed := max(now.Sub(t.cfg.Start), 0).Truncate(time.Millisecond)
	owed := t.cfg.Price.Total(elapsed, bytes)
	if owed.Cmp(t.owed) > 0 {
		t.owed = owed
		t.owedFor = payments.Usage{ProposalSeq: t.cfg.ProposalSeq, ElapsedMs: uint64(elapsed / time.Millisecond), Bytes: bytes}
	}
	if t.invoiceDue(now) {
		if err := t.sendInvoice(ctx, now); err != nil {
			return err
		}
	}
	return t.checkPolicy(now)
}

// Redeliver tells the tracker that the consumer is back on a new stream
// (a resumed session) and has paid paid so far: on its next Tick (at once
// under Run) the tracker sends its latest invoice again if that invoice
// asks for more than paid and than the tracker has accepted. It is the
// same signed invoice (same total and hashlock), so nothing is invoiced
// twice: a consumer that had paid it ignores it, one that had not pays
// it. Its grace still runs from when it was first sent. Safe from any
// goroutine.
func (t *InvoiceTracker) Redeliver(paid *big.Int) {
	if paid == nil {
		paid = new(big.Int)
	}
	t.redeliverMu.Lock()
	t.redeliver = new(big.Int).Set(paid)
	t.redeliverMu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// resend carries out a Redeliver.
func (t *InvoiceTracker) resend(ctx context.Context) error {
	t.redeliverMu.Lock()
	paid := t.redeliver
	t.redeliver = nil
	t.redeliverMu.Unlock()
	if paid == nil || len(t.invoices) == 0 {
		return nil
	}
	last := t.invoices[len(t.invoices)-1]
	if last.total.Cmp(paid) <= 0 || last.total.Cmp(t.accepted) <= 0 {
		return nil
	}
	if err := t.cfg.Send(ctx, last.signed); err != nil {
		if !errors.Is(err, ErrUndelivered) {
			return fmt.Errorf("pingpong: send invoice again: %w", err)
		}
		t.log.Debug("invoice not redelivered now", "total", last.total.String(), "err", err)
		return nil
	}
	t.log.Info("unpaid invoice sent again on the resumed stream", "total", last.total.String())
	return nil
}

func (t *InvoiceTracker) invoiceDue(now time.Time) bool {
	fresh := new(big.Int).Sub(t.owed, t.invoiced)
	if fresh.Sign() <= 0 {
		return false
	}
	// A promise must cover its own transactor fee, so a total below the
	// fee waits (a hermes would refuse the promise).
	if t.owed.Cmp(t.cfg.TransactorFee) < 0 {
		return false
	}
	if t.lastInvoiceAt.IsZero() || now.Sub(t.lastInvoiceAt) >= t.cfg.Interval {
		return true
	}
	return t.cfg.Threshold != nil && t.cfg.Threshold.Sign() > 0 && fresh.Cmp(t.cfg.Threshold) >= 0
}

func (t *InvoiceTracker) sendInvoice(ctx context.Context, now time.Time) error {
	r, lock, err := payments.NewSecret()
	if err != nil {
		return err
	}
	if err := t.cfg.Hashlocks.Put(ctx, lock, r, t.cfg.AgreementID); err != nil {
		return fmt.Errorf("pingpong: store invoice secret: %w", err)
	}
	total := new(big.Int).Set(t.owed)
	inv := &payments.Invoice{
		ChainID:        t.cfg.ChainID,
		AgreementID:    t.cfg.AgreementID,
		AgreementTotal: total,
		TransactorFee:  t.cfg.TransactorFee,
		Hashlock:       lock,
		Provider:       t.cfg.Provider.Address(),
	}
	if t.cfg.ProposalSeq != 0 {
		u := t.owedFor
		inv.Usage = &u
	}
	if err := inv.Sign(t.cfg.Provider); err != nil {
		return fmt.Errorf("pingpong: sign invoice: %w", err)
	}
	if err := t.cfg.Send(ctx, inv); err != nil {
		if !errors.Is(err, ErrUndelivered) {
			return fmt.Errorf("pingpong: send invoice: %w", err)
		}
		// Counted as sent: its grace runs, and Redeliver sends it again.
		t.log.Debug("invoice not delivered now; kept for redelivery", "total", total.String(), "err", err)
	}
	t.invoices = append(t.invoices, invoice{hashlock: lock, r: r, total: total, sentAt: now, signed: inv})
	t.invoiced = total
	t.lastInvoiceAt = now
	t.invoiceCount++
	t.log.Debug("invoice sent", "total", total.String())
	return nil
}

func (t *InvoiceTracker) checkPolicy(now time.Time) error {
	if len(t.invoices) > 0 {
		if waited := now.Sub(t.invoices[0].sentAt); waited > t.cfg.Grace {
			return fmt.Errorf("%w: invoice for %s wei unsettled for %s (grace %s); settled %s wei",
				ErrPaymentTimeout, t.invoices[0].total, waited.Round(time.Millisecond), t.cfg.Grace, t.settled)
		}
	}
	if t.cfg.MaxUnpaid != nil {
		unpaid := new(big.Int).Sub(t.owed, t.settled)
		if unpaid.Cmp(t.cfg.MaxUnpaid) > 0 {
			return fmt.Errorf("%w: %s wei served but not settled, limit %s", ErrUnpaidLimit, unpaid, t.cfg.MaxUnpaid)
		}
	}
	return nil
}

// HandleExchange checks an exchange message from the consumer, stores it
// durably, forwards it to the hermes and reveals the invoice secret. It
// returns an error wrapping ErrBadExchange (or ErrHermesRejected) when the
// session must end; a hermes that cannot be reached is retried on later
// Ticks and does not fail the call. A valid message is stored even if ctx
// has ended; only the forward is then left pending (see Flush, Settle).
func (t *InvoiceTracker) HandleExchange(ctx context.Context, now time.Time, em *payments.ExchangeMessage) error {
	defer t.snapshot()
	if t.isLastAccepted(em) {
		// The consumer sent its last payment again (a resumed session
		// re-sends it in case the old stream lost it): already stored
		// and forwarded.
		return nil
	}
	inv, err := t.checkExchange(em)
	if err != nil {
		t.refusedCount++
		return fmt.Errorf("%w: %v", ErrBadExchange, err)
	}
	// A valid payment is stored even when ctx is ending (the session is
	// closing as it arrives): it is money the consumer has signed away.
	if err := t.cfg.Exchanges.PutExchange(context.WithoutCancel(ctx), em); err != nil {
		return fmt.Errorf("pingpong: store exchange message: %w", err)
	}
	t.paidCount++
	t.accepted = new(big.Int).Set(em.AgreementTotal)
	t.lastAccepted = em
	t.pending = &forward{em: em, r: inv.r}
	return t.flush(ctx)
}

// isLastAccepted reports whether em is, byte for byte in its signed
// fields, the exchange message accepted last.
func (t *InvoiceTracker) isLastAccepted(em *payments.ExchangeMessage) bool {
	prev := t.lastAccepted
	if prev == nil || em == nil || em.AgreementTotal == nil || em.Promise.Amount == nil {
		return false
	}
	return em.Promise.Hashlock == prev.Promise.Hashlock && em.AgreementTotal.Cmp(prev.AgreementTotal) == 0 &&
		em.Promise.Amount.Cmp(prev.Promise.Amount) == 0 && bytes.Equal(em.Signature, prev.Signature) &&
		bytes.Equal(em.Promise.Signature, prev.Promise.Signature)
}

func (t *InvoiceTracker) checkExchange(em *payments.ExchangeMessage) (*invoice, error) {
	if em == nil {
		return nil, errors.New("empty message")
	}
	if err := em.Validate(); err != nil {
		return nil, err
	}
	switch {
	case em.ChainID.Cmp(t.cfg.ChainID) != 0:
		return nil, fmt.Errorf("chain id %s, want %s", em.ChainID, t.cfg.ChainID)
	case em.AgreementID.Cmp(t.cfg.AgreementID) != 0:
		return nil, fmt.Errorf("agreement id %s, want %s", em.AgreementID, t.cfg.AgreementID)
	case em.Provider != t.cfg.Provider.Address():
		return nil, fmt.Errorf("provider %s, want %s", em.Provider.Hex(), t.cfg.Provider.Address().Hex())
	case em.HermesID != t.cfg.HermesID:
		return nil, fmt.Errorf("hermes %s, want %s", em.HermesID.Hex(), t.cfg.HermesID.Hex())
	case em.Promise.Fee.Cmp(t.cfg.TransactorFee) != 0:
		return nil, fmt.Errorf("promise fee %s, want %s", em.Promise.Fee, t.cfg.TransactorFee)
	}
	consumer, err := em.RecoverConsumer()
	if err != nil {
		return nil, err
	}
	if consumer != t.cfg.Consumer {
		return nil, fmt.Errorf("signed by %s, want consumer %s", consumer.Hex(), t.cfg.Consumer.Hex())
	}
	var inv *invoice
	for i := range t.invoices {
		if t.invoices[i].hashlock == em.Promise.Hashlock {
			inv = &t.invoices[i]
			break
		}
	}
	if inv == nil {
		return nil, fmt.Errorf("hashlock %x is not an outstanding invoice", em.Promise.Hashlock[:6])
	}
	if em.AgreementTotal.Cmp(t.accepted) <= 0 {
		return nil, fmt.Errorf("agreement total %s does not increase on %s already paid", em.AgreementTotal, t.accepted)
	}
	if em.AgreementTotal.Cmp(inv.total) != 0 {
		return nil, fmt.Errorf("agreement total %s does not match the invoice's %s", em.AgreementTotal, inv.total)
	}
	if em.Promise.Amount.Cmp(em.AgreementTotal) < 0 {
		return nil, fmt.Errorf("promise amount %s is below the agreement total %s", em.Promise.Amount, em.AgreementTotal)
	}
	if prev := t.lastAccepted; prev != nil {
		if prev.Promise.ChannelID != em.Promise.ChannelID {
			return nil, errors.New("promise channel changed within the session")
		}
		raise := new(big.Int).Sub(em.Promise.Amount, prev.Promise.Amount)
		owedRaise := new(big.Int).Sub(em.AgreementTotal, prev.AgreementTotal)
		if raise.Cmp(owedRaise) < 0 {
			return nil, fmt.Errorf("promise raised by %s, below the %s newly paid", raise, owedRaise)
		}
	}
	return inv, nil
}

// flush forwards the pending exchange message to the hermes and reveals
// its secret. A hermes it cannot reach leaves the forward pending.
func (t *InvoiceTracker) flush(ctx context.Context) error {
	p := t.pending
	if !p.promised {
		promise, err := t.cfg.Hermes.RequestPromise(ctx, p.em)
		if err != nil {
			if t.cfg.Permanent(err) {
				if !errors.Is(err, ErrHermesRejected) {
					err = fmt.Errorf("%w: %w", ErrHermesRejected, err)
				}
				return fmt.Errorf("pingpong: forward exchange for %s wei: %w", p.em.AgreementTotal, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			t.hermesUnavailable("hermes unavailable; exchange message kept for retry", err)
			return nil
		}
		if promise.Hashlock != p.em.Promise.Hashlock || promise.ChainID == nil || promise.ChainID.Cmp(t.cfg.ChainID) != 0 {
			return fmt.Errorf("%w: hermes promise has the wrong hashlock or chain", ErrHermesRejected)
		}
		p.promised = true
		total := p.em.AgreementTotal
		if total.Cmp(t.settled) > 0 {
			t.settled = new(big.Int).Set(total)
		}
		kept := t.invoices[:0]
		for _, inv := range t.invoices {
			if inv.total.Cmp(t.settled) > 0 {
				kept = append(kept, inv)
			}
		}
		t.invoices = kept
		if t.cfg.OnSettled != nil {
			t.cfg.OnSettled(new(big.Int).Set(total), promise)
		}
	}
	if err := t.cfg.Hermes.RevealR(ctx, t.cfg.Provider.Address(), p.em.Promise.Hashlock, p.r); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t.hermesUnavailable("reveal of invoice secret failed; will retry", err)
		return nil
	}
	if t.hermesDown {
		t.hermesDown = false
		t.log.Info("hermes reachable again; payment forwarded", "total", p.em.AgreementTotal.String())
	}
	t.pending = nil
	return nil
}

// hermesUnavailable logs a hermes failure at Warn once per outage and at
// Debug while it lasts.
func (t *InvoiceTracker) hermesUnavailable(msg string, err error) {
	level := slog.LevelDebug
	if !t.hermesDown {
		level = slog.LevelWarn
		t.hermesDown = true
	}
	t.log.Log(context.Background(), level, msg, "err", err)
}

// Flush makes one attempt to forward a pending exchange message and reveal
// its secret; call it after the session ends until it succeeds. It
// returns an error while something is still pending.
func (t *InvoiceTracker) Flush(ctx context.Context) error {
	defer t.snapshot()
	if t.pending == nil {
		return nil
	}
	if err := t.flush(ctx); err != nil {
		return err
	}
	if t.pending != nil {
		return fmt.Errorf("pingpong: exchange for %s wei still pending at the hermes", t.pending.em.AgreementTotal)
	}
	return nil
}

// Settle calls Flush every `every` (default 1s) until nothing is pending,
// the hermes refuses for good, or ctx ends. Call it when a session has
// ended so the consumer's last payment reaches the hermes even after an
// outage.
func (t *InvoiceTracker) Settle(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = time.Second
	}
	err := retry.Do(ctx, retry.Backoff{Initial: every, Max: every}, 0, func(ctx context.Context, _ int) error {
		err := t.Flush(ctx)
		if errors.Is(err, ErrHermesRejected) {
			return retry.Permanent(err)
		}
		return err
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("pingpong: settle: %w", err)
	}
	return err
}

// Run drives the tracker until ctx ends, the exchanges channel closes, or
// the payment policy ends the session: it Ticks every CheckEvery with
// usage() bytes, and handles each exchange message as it arrives. It
// returns nil when exchanges is closed, ctx.Err() when ctx ends, and the
// policy or exchange error otherwise. A pending forward is left for Flush.
// Exchange messages still in the channel when Run returns are payments the
// consumer has counted: the caller must pass them to HandleExchange (as
// paystream.Provider does) before it settles.
func (t *InvoiceTracker) Run(ctx context.Context, clk Clock, usage func() uint64, exchanges <-chan *payments.ExchangeMessage) error {
	tick := clk.NewTicker(t.cfg.CheckEvery)
	defer tick.Stop()
	if err := t.Tick(ctx, clk.Now(), usage()); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C():
			if err := t.Tick(ctx, now, usage()); err != nil {
				return err
			}
		case <-t.wake:
			if err := t.Tick(ctx, clk.Now(), usage()); err != nil {
				return err
			}
		case em, ok := <-exchanges:
			if !ok {
				return nil
			}
			if err := t.HandleExchange(ctx, clk.Now(), em); err != nil {
				return err
			}
		}
	}
}
