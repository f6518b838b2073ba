package pingpong

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/payments"
)

// Channel is the consumer's ledger of its payment channel. Promises are
// cumulative over the whole channel (all sessions, all providers), so one
// Channel is shared by every session of a consumer identity.
type Channel interface {
	// ID is the channel id promises are signed over.
	ID() [32]byte
	// Raise atomically adds delta to the channel's cumulative promised
	// amount, durably, and returns the new cumulative amount. It fails
	// with an error wrapping ErrInsufficientBalance, changing nothing,
	// when the new amount would exceed the channel balance the consumer
	// knows. The raise must be on disk before Raise returns: a signed
	// promise can be cashed, so the ledger must never go back below it.
	Raise(ctx context.Context, delta *big.Int) (*big.Int, error)
}

// Tolerance is how far an invoice may exceed the consumer's own view of
// the fair total. The consumer accepts a total up to
//
//	Total(elapsed + ClockSlack, bytes + ByteSlack) × (100 + Percent) / 100 + Slack
//
// (integer division) where elapsed and bytes are the consumer's own clock
// and tunnel counters. ClockSlack covers the provider starting its clock
// before the consumer (the response's flight time); ByteSlack covers the
// bytes in flight (the provider counts what it sent, the consumer what
// arrived: early in a download over a slow or relayed path that is most
// of the total); Percent covers byte counters read at slightly different
// moments on the two ends; Slack covers rounding. ClockSlack and
// ByteSlack bound what a provider can overcharge over a whole session,
// not per invoice: the allowance is on the cumulative total.
type Tolerance struct {
	// Percent is the relative allowance, in whole percent.
	Percent uint
	// ClockSlack is added to the consumer's elapsed time.
	ClockSlack time.Duration
	// ByteSlack is added to the consumer's byte count.
	ByteSlack uint64
	// Slack is an absolute allowance in wei.
	Slack *big.Int
}

// DefaultTolerance is 5% plus 2 s of session time plus 2 MiB plus 1000
// wei.
var DefaultTolerance = Tolerance{Percent: 5, ClockSlack: 2 * time.Second, ByteSlack: 2 << 20, Slack: big.NewInt(1000)}

// Allowed returns the largest agreement total the consumer accepts for
// price after elapsed and bytes.
func (tol Tolerance) Allowed(price Price, elapsed time.Duration, bytes uint64) *big.Int {
	a := price.Total(elapsed+tol.ClockSlack, bytes+min(tol.ByteSlack, math.MaxUint64-bytes))
	a.Mul(a, big.NewInt(int64(100+tol.Percent)))
	a.Quo(a, big.NewInt(100))
	if tol.Slack != nil {
		a.Add(a, tol.Slack)
	}
	return a
}

// PayerConfig configures an InvoicePayer for one session.
type PayerConfig struct {
	// ChainID is the chain the consumer pays on.
	ChainID *big.Int
	// Consumer signs promises and exchange messages.
	Consumer identity.Signer
	// Provider is the identity whose invoices are paid.
	Provider common.Address
	// HermesID is the hermes the consumer's channel pays through.
	HermesID common.Address
	// Channel is the consumer's channel ledger.
	Channel Channel
	// Price is the agreed price.
	Price Price
	// MaxFee is the largest transactor fee the consumer accepts.
	MaxFee *big.Int
	// Tolerance bounds how far an invoice may exceed the fair total.
	Tolerance Tolerance
	// Start is when the consumer's session began: when the provider's
	// answer (and the ICE checks) were done and the tunnel was being
	// brought up, the moment the provider charges from.
	Start time.Time
}

func (c *PayerConfig) validate() error {
	switch {
	case c.ChainID == nil || c.ChainID.Sign() <= 0:
		return errors.New("chain id must be positive")
	case c.Consumer == nil:
		return errors.New("consumer signer is required")
	case c.Provider == (common.Address{}):
		return errors.New("provider is required")
	case c.HermesID == (common.Address{}):
		return errors.New("hermes id is required")
	case c.Channel == nil:
		return errors.New("channel is required")
	case c.MaxFee == nil || c.MaxFee.Sign() < 0:
		return errors.New("max fee must be set and not negative")
	case c.Tolerance.ClockSlack < 0 || (c.Tolerance.Slack != nil && c.Tolerance.Slack.Sign() < 0):
		return errors.New("tolerance must not be negative")
	case c.Start.IsZero():
		return errors.New("start time is required")
	}
	return c.Price.Validate()
}

// PayerStats is a snapshot of what a payer has paid, in wei.
type PayerStats struct {
	// Paid is the agreement total of the latest exchange message.
	Paid *big.Int
	// Invoices counts the invoices paid.
	Invoices int
	// LastInvoiceAt is when the latest invoice was paid (zero if none).
	LastInvoiceAt time.Time
	// Exchange is the latest exchange message signed (nil if none): the
	// consumer's evidence of what it paid (quality reports).
	Exchange *payments.ExchangeMessage
}

// InvoicePayer is the consumer's side of pay-as-you-go for one session.
// HandleInvoice must not be called concurrently; Stats is safe from any
// goroutine.
type InvoicePayer struct {
	cfg PayerConfig

	agreementID *big.Int // fixed by the first invoice
	paid        *big.Int

	mu    sync.Mutex
	stats PayerStats
}

// NewInvoicePayer returns a payer for one session.
func NewInvoicePayer(cfg PayerConfig) (*InvoicePayer, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pingpong: invoice payer: %w", err)
	}
	p := &InvoicePayer{cfg: cfg, paid: new(big.Int)}
	p.stats.Paid = new(big.Int)
	return p, nil
}

// Stats returns a snapshot of the payer's accounting.
func (p *InvoicePayer) Stats() PayerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Paid = new(big.Int).Set(s.Paid)
	return s
}

// HandleInvoice checks inv against the consumer's own clock (now) and byte
// counter (bytes, up plus down) and, when it is fair within the tolerance,
// raises the channel by the invoice's increase and returns the signed
// exchange message to send. It returns (nil, nil) for an invoice that asks
// nothing new. Errors: ErrBadInvoice (malformed, wrong signer, agreement
// or chain, or decreasing), ErrOvercharge (above the allowed total) and
// ErrInsufficientBalance; on any of them nothing was promised and the
// caller disconnects.
func (p *InvoicePayer) HandleInvoice(ctx context.Context, now time.Time, bytes uint64, inv *payments.Invoice) (*payments.ExchangeMessage, error) {
	if err := p.checkInvoice(inv); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInvoice, err)
	}
	if inv.AgreementTotal.Cmp(p.paid) == 0 {
		return nil, nil
	}
	allowed := p.cfg.Tolerance.Allowed(p.cfg.Price, now.Sub(p.cfg.Start), bytes)
	if inv.AgreementTotal.Cmp(allowed) > 0 {
		fair := p.cfg.Price.Total(now.Sub(p.cfg.Start), bytes)
		return nil, &OverchargeError{Invoice: inv, err: fmt.Errorf("%w: invoice total %s wei, fair %s, allowed at most %s (after %s, %d bytes)",
			ErrOvercharge, inv.AgreementTotal, fair, allowed, now.Sub(p.cfg.Start).Round(time.Millisecond), bytes)}
	}
	delta := new(big.Int).Sub(inv.AgreementTotal, p.paid)
	cumulative, err := p.cfg.Channel.Raise(ctx, delta)
	if err != nil {
		return nil, fmt.Errorf("pingpong: pay invoice of %s wei: %w", inv.AgreementTotal, err)
	}
	em := &payments.ExchangeMessage{
		Promise: payments.Promise{
			ChainID:   p.cfg.ChainID,
			ChannelID: p.cfg.Channel.ID(),
			Amount:    cumulative,
			Fee:       new(big.Int).Set(inv.TransactorFee),
			Hashlock:  inv.Hashlock,
		},
		AgreementID:    new(big.Int).Set(inv.AgreementID),
		AgreementTotal: new(big.Int).Set(inv.AgreementTotal),
		Provider:       p.cfg.Provider,
		HermesID:       p.cfg.HermesID,
		ChainID:        p.cfg.ChainID,
	}
	if err := em.Sign(p.cfg.Consumer); err != nil {
		return nil, fmt.Errorf("pingpong: sign exchange message: %w", err)
	}
	if p.agreementID == nil {
		p.agreementID = new(big.Int).Set(inv.AgreementID)
	}
	p.paid = new(big.Int).Set(inv.AgreementTotal)
	p.mu.Lock()
	p.stats.Paid = new(big.Int).Set(p.paid)
	p.stats.Invoices++
	p.stats.LastInvoiceAt = now
	p.stats.Exchange = em
	p.mu.Unlock()
	return em, nil
}

func (p *InvoicePayer) checkInvoice(inv *payments.Invoice) error {
	if inv == nil {
		return errors.New("empty invoice")
	}
	if err := inv.Validate(); err != nil {
		return err
	}
	if inv.Provider != p.cfg.Provider {
		return fmt.Errorf("from provider %s, want %s", inv.Provider.Hex(), p.cfg.Provider.Hex())
	}
	if err := inv.Verify(); err != nil {
		return err
	}
	if inv.ChainID.Cmp(p.cfg.ChainID) != 0 {
		return fmt.Errorf("chain id %s, want %s", inv.ChainID, p.cfg.ChainID)
	}
	if p.agreementID != nil && inv.AgreementID.Cmp(p.agreementID) != 0 {
		return fmt.Errorf("agreement id %s, want %s", inv.AgreementID, p.agreementID)
	}
	if inv.TransactorFee.Cmp(p.cfg.MaxFee) > 0 {
		return fmt.Errorf("transactor fee %s above the accepted %s", inv.TransactorFee, p.cfg.MaxFee)
	}
	if inv.AgreementTotal.Cmp(p.paid) < 0 {
		return fmt.Errorf("agreement total %s is below the %s already paid", inv.AgreementTotal, p.paid)
	}
	return nil
}
