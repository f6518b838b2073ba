package client

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// Terms are a hermes's terms as registered on chain (the Registry created
// its Hermes contract; the contract holds its operator and fee). The
// client checks hermes promises against these, never against what the
// hermes says about itself at /v1/info.
type Terms struct {
	// ChainID is the chain the terms were read from.
	ChainID *big.Int
	// Operator is the key that signs the hermes's promises (fixed when the
	// hermes registers; the contract has no way to change it).
	Operator common.Address
	// FeeBps is the hermes fee in force at ChainTime (the contract's fee():
	// an announced fee once its time has come).
	FeeBps uint16
	// PendingFeeBps and FeeEffectiveAt are an announced fee change (zero
	// FeeEffectiveAt: none). A change takes effect at FeeEffectiveAt at the
	// earliest, and a new announcement FeeNoticeDelay after it is made.
	PendingFeeBps  uint16
	FeeEffectiveAt time.Time
	// FeeNoticeDelay is the contract's notice period for fee changes.
	FeeNoticeDelay time.Duration
	// ChainTime is the time of the block the terms were read at.
	ChainTime time.Time
}

// validFor is how long t stays exact: no fee change can take effect before
// the pending one's time (after which it may have been superseded, so the
// chain is asked again) or before a notice period has passed since the
// read. The operator never changes.
func (t Terms) validFor() time.Duration {
	d := t.FeeNoticeDelay
	if !t.FeeEffectiveAt.IsZero() && t.FeeEffectiveAt.After(t.ChainTime) {
		d = min(d, t.FeeEffectiveAt.Sub(t.ChainTime))
	}
	return max(d, 0)
}

// Chain reads a hermes's registered terms and the state its settlements
// depend on.
type Chain interface {
	// HermesTerms reads the terms of the Hermes contract at hermes. It
	// fails for an address that is not a hermes created by the chain's
	// Registry.
	HermesTerms(ctx context.Context, hermes common.Address) (Terms, error)
	// ProviderSettlement reports whether the Hermes contract at hermes
	// would settle p on provider's channel if mined now (after a first
	// settlement it pays amount minus the settled amount, capped by the
	// channel limit and the hermes's available balance, and its fees must
	// fit in that): nil, or an error wrapping ErrNotSettleable saying why
	// the contract would refuse (any other error: the chain was not read).
	// Signature, preimage and registration are not its business.
	ProviderSettlement(ctx context.Context, hermes, provider common.Address, p payments.Promise) error
}

// ErrNotSettleable is wrapped when the chain would refuse to settle a
// promise now (nothing above the settled amount, fees above what the
// settlement pays, no channel limit or hermes balance): sending the
// settlement would only spend gas.
var ErrNotSettleable = errors.New("hermes client: the chain would refuse to settle the promise now")

// ErrUntrustedPromise is wrapped by every refusal of a hermes promise that
// does not pass the client's checks (signer, chain, channel, hashlock,
// amount, fee). R is not revealed for it; the refusal is final for the
// exchange.
var ErrUntrustedPromise = errors.New("hermes client: untrusted hermes promise")

// DefaultTermsMaxAge bounds how long terms are cached when
// Options.TermsMaxAge is zero, even when the chain would allow longer.
const DefaultTermsMaxAge = 10 * time.Minute

// termsCache holds the last terms read and until when they are exact.
type termsCache struct {
	mu      sync.Mutex
	t       Terms
	expires time.Time
}

// terms returns the hermes's on-chain terms, from the cache while they
// cannot have changed. A chain failure wraps ErrUnavailable.
func (c *Client) terms(ctx context.Context) (Terms, error) {
	c.tc.mu.Lock()
	defer c.tc.mu.Unlock()
	now := c.now()
	if c.tc.t.ChainID != nil && now.Before(c.tc.expires) {
		return c.tc.t, nil
	}
	if c.o.Chain == nil {
		return Terms{}, fmt.Errorf("%w: no chain to read the hermes's terms from (Options.Chain)", ErrUntrustedPromise)
	}
	t, err := c.o.Chain.HermesTerms(ctx, c.o.HermesID)
	if err != nil {
		return Terms{}, fmt.Errorf("hermes client: read terms of hermes %s from the chain: %w: %w", c.o.HermesID.Hex(), ErrUnavailable, err)
	}
	if t.ChainID == nil || t.ChainID.Sign() <= 0 || t.Operator == (common.Address{}) {
		return Terms{}, fmt.Errorf("%w: hermes %s has no operator or chain id on chain", ErrUntrustedPromise, c.o.HermesID.Hex())
	}
	c.tc.t, c.tc.expires = t, now.Add(min(t.validFor(), c.o.TermsMaxAge))
	return t, nil
}

// Terms returns the hermes's on-chain terms the client checks promises
// against (cached while they cannot change).
func (c *Client) Terms(ctx context.Context) (Terms, error) { return c.terms(ctx) }

// agreementKey names one agreement of one provider with one consumer
// channel.
type agreementKey struct {
	provider common.Address
	channel  [32]byte
	id       string
}

// ledger is what the provider is owed by this hermes according to the
// hermes promises it accepted: per agreement the highest total a hermes
// promise was issued for, their sum per provider (what the hermes's
// cumulative promise must reach) and the highest hermes promise held.
// It holds one entry per agreement with a stored hermes promise (so it is
// bounded by the node database's hashlock entries, which hold more);
// keys come from exchange messages the provider's session already
// validated, not from the hermes.
type ledger struct {
	loaded  bool
	totals  map[agreementKey]*big.Int
	owed    map[common.Address]*big.Int
	highest map[common.Address]*big.Int
}

func (l *ledger) add(m *payments.ExchangeMessage, p *payments.Promise) {
	k := agreementKey{m.Provider, m.Promise.ChannelID, m.AgreementID.String()}
	owed := l.owed[m.Provider]
	if owed == nil {
		owed = new(big.Int)
		l.owed[m.Provider] = owed
	}
	if old := l.totals[k]; old == nil || m.AgreementTotal.Cmp(old) > 0 {
		if old != nil {
			owed.Sub(owed, old)
		}
		owed.Add(owed, m.AgreementTotal)
		l.totals[k] = new(big.Int).Set(m.AgreementTotal)
	}
	if h := l.highest[m.Provider]; h == nil || p.Amount.Cmp(h) > 0 {
		l.highest[m.Provider] = new(big.Int).Set(p.Amount)
	}
}

// check reports whether, with p accepted for m, the highest hermes promise
// the provider holds covers every agreement total it was promised for.
// An honest hermes always passes: its promise amounts are the provider's
// cumulative earnings, so the latest one it issued counts every accepted
// agreement increase, including those of messages whose answer was lost.
func (l *ledger) check(m *payments.ExchangeMessage, p *payments.Promise) error {
	k := agreementKey{m.Provider, m.Promise.ChannelID, m.AgreementID.String()}
	owed := new(big.Int)
	if o := l.owed[m.Provider]; o != nil {
		owed.Set(o)
	}
	if old := l.totals[k]; old == nil {
		owed.Add(owed, m.AgreementTotal)
	} else if m.AgreementTotal.Cmp(old) > 0 {
		owed.Add(owed, new(big.Int).Sub(m.AgreementTotal, old))
	}
	highest := p.Amount
	if h := l.highest[m.Provider]; h != nil && h.Cmp(highest) > 0 {
		highest = h
	}
	if highest.Cmp(owed) < 0 {
		return fmt.Errorf("%w: amount %s: the highest hermes promise held (%s) does not cover the %s promised for this provider's agreements",
			ErrUntrustedPromise, p.Amount, highest, owed)
	}
	return nil
}

// loadLedger builds the ledger from the hermes promises stored for this
// hermes and chain (each checked again against the operator).
func (c *Client) loadLedger(ctx context.Context, t Terms) error {
	if c.led.loaded {
		return nil
	}
	es, err := c.st.Promised(ctx)
	if err != nil {
		return fmt.Errorf("hermes client: list stored promises: %w", err)
	}
	l := ledger{totals: map[agreementKey]*big.Int{}, owed: map[common.Address]*big.Int{}, highest: map[common.Address]*big.Int{}}
	for _, e := range es {
		m, err := payments.DecodeExchangeMessage(e.Message)
		if err != nil {
			return fmt.Errorf("hermes client: stored message %x: %w", e.Hashlock[:4], err)
		}
		if m.HermesID != c.o.HermesID || m.ChainID.Cmp(t.ChainID) != 0 {
			continue
		}
		p, err := payments.DecodePromise(e.Promise)
		if err != nil {
			return fmt.Errorf("hermes client: stored promise %x: %w", e.Hashlock[:4], err)
		}
		if err := p.Verify(t.Operator); err != nil {
			c.o.Log.Warn("hermes client: ignoring a stored hermes promise not signed by the operator", "hashlock", fmt.Sprintf("%x", e.Hashlock[:8]))
			continue
		}
		l.add(m, p)
	}
	l.loaded = true
	c.led = l
	return nil
}

// verifyPromise checks the hermes promise p answering m before anything
// of it is stored or R revealed: signed by the operator registered on
// chain, on this chain, on the provider's channel in this hermes, with m's
// hashlock, a transactor fee within the hermes's on-chain fee rate, and an
// amount that keeps every accepted agreement increase covered. Call with
// c.ledMu held.
func (c *Client) verifyPromise(ctx context.Context, m *payments.ExchangeMessage, p *payments.Promise) error {
	t, err := c.terms(ctx)
	if err != nil {
		return err
	}
	if err := c.loadLedger(ctx, t); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrUntrustedPromise, fmt.Sprintf(format, args...))
	}
	switch {
	case m.HermesID != c.o.HermesID:
		return bad("message is for hermes %s, this client trusts %s", m.HermesID.Hex(), c.o.HermesID.Hex())
	case m.ChainID.Cmp(t.ChainID) != 0 || p.ChainID.Cmp(t.ChainID) != 0:
		return bad("promise for chain %s, message for chain %s, the hermes is on chain %s", p.ChainID, m.ChainID, t.ChainID)
	case p.ChannelID != payments.ProviderChannelID(m.Provider, c.o.HermesID):
		return bad("promise is not on the provider's channel in hermes %s", c.o.HermesID.Hex())
	case p.Hashlock != m.Promise.Hashlock:
		return bad("promise has another hashlock")
	}
	if err := p.Verify(t.Operator); err != nil {
		return bad("not signed by the hermes operator %s registered on chain: %v", t.Operator.Hex(), err)
	}
	if p.Amount.Cmp(money.MaxSettleable) > 0 {
		return bad("amount %s is not below 2^128: the contract would refuse to settle it (AmountTooLarge)", p.Amount)
	}
	increment := new(big.Int).Set(p.Amount)
	if h := c.led.highest[m.Provider]; h != nil {
		increment.Sub(increment, h)
	}
	if err := c.checkFee(t, p, increment); err != nil {
		return err
	}
	return c.led.check(m, p)
}

// CheckSettleable checks a hermes promise the provider is about to settle
// on chain (for instance the latest one the hermes reports): signed by the
// hermes's registered operator, on provider's channel in the trusted
// hermes, for the chain, below 2^128 (wrapping ErrUntrustedPromise when p
// fails these), and settleable now by the contract given the channel's
// settled amount, limit, the hermes's balance and fees (wrapping
// ErrNotSettleable, or ErrUnavailable when the chain cannot be read).
func (c *Client) CheckSettleable(ctx context.Context, provider common.Address, p *payments.Promise) error {
	t, err := c.terms(ctx)
	if err != nil {
		return err
	}
	switch {
	case p.ChainID == nil || p.ChainID.Cmp(t.ChainID) != 0:
		return fmt.Errorf("%w: promise for chain %v, the hermes is on chain %s", ErrUntrustedPromise, p.ChainID, t.ChainID)
	case p.ChannelID != payments.ProviderChannelID(provider, c.o.HermesID):
		return fmt.Errorf("%w: promise is not on provider %s's channel in hermes %s", ErrUntrustedPromise, provider.Hex(), c.o.HermesID.Hex())
	}
	if err := p.Verify(t.Operator); err != nil {
		return fmt.Errorf("%w: not signed by the hermes operator %s registered on chain: %v", ErrUntrustedPromise, t.Operator.Hex(), err)
	}
	if p.Amount.Cmp(money.MaxSettleable) > 0 {
		return fmt.Errorf("%w: amount %s is not below 2^128 (AmountTooLarge)", ErrUntrustedPromise, p.Amount)
	}
	// The provider settles it itself, so its own transactor gets the fee:
	// only what the contract refuses matters here.
	if err := settleableFee(t, p); err != nil {
		return err
	}
	if err := c.o.Chain.ProviderSettlement(ctx, c.o.HermesID, provider, *p); err != nil {
		if errors.Is(err, ErrNotSettleable) {
			return err
		}
		return fmt.Errorf("hermes client: read provider %s's channel from the chain: %w: %w", provider.Hex(), ErrUnavailable, err)
	}
	return nil
}

// settleableFee checks that the contract would not refuse to settle p
// for its fees: transactor fee plus hermes fee within the amount
// (FeeAboveAmount, for a first settlement of the channel).
func settleableFee(t Terms, p *payments.Promise) error {
	hermesFee := new(big.Int).Mul(p.Amount, big.NewInt(int64(t.FeeBps)))
	hermesFee.Quo(hermesFee, big.NewInt(10000))
	if hermesFee.Add(hermesFee, p.Fee).Cmp(p.Amount) > 0 {
		return fmt.Errorf("%w: transactor fee %s plus the hermes fee exceed amount %s: the contract would refuse to settle it", ErrUntrustedPromise, p.Fee, p.Amount)
	}
	return nil
}

// checkFee checks the transactor fee of p, a promise that raises the
// highest one the provider held by increment. The hermes learns R, so it
// could settle each of its promises itself and keep each one's fee: a
// promise's fee may be at most the hermes's on-chain fee rate on what that
// promise adds, so all the fees together stay within that rate on the
// provider's earnings; or at most the provider's absolute allowance for
// settlement gas (Options.MaxPromiseFee). And the contract must accept the
// fees (settleableFee).
func (c *Client) checkFee(t Terms, p *payments.Promise, increment *big.Int) error {
	maxFee := new(big.Int)
	if increment.Sign() > 0 {
		maxFee.Mul(increment, big.NewInt(int64(t.FeeBps)))
		maxFee.Quo(maxFee, big.NewInt(10000))
	}
	if c.o.MaxPromiseFee != nil && c.o.MaxPromiseFee.Cmp(maxFee) > 0 {
		maxFee.Set(c.o.MaxPromiseFee)
	}
	if p.Fee.Cmp(maxFee) > 0 {
		return fmt.Errorf("%w: transactor fee %s exceeds %s (the hermes's on-chain fee of %d bps on the %s this promise adds, or the allowance %v)",
			ErrUntrustedPromise, p.Fee, maxFee, t.FeeBps, increment, c.o.MaxPromiseFee)
	}
	return settleableFee(t, p)
}
