package client

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/payments"
)

// clientOf returns a client of e's hermes with o, over a fresh node
// database closed when the test ends.
func clientOf(t *testing.T, e *env, o Options) (*Client, *StorageHashlocks) {
	t.Helper()
	hl, db := openHashlocks(t, filepath.Join(t.TempDir(), "node.db"))
	t.Cleanup(func() { _ = db.Close() })
	return mustNew(t, e.srv.URL, hl, o), hl
}

// resign returns a tamper that changes a hermes promise with f and signs
// it again with the key of label ("operator": the real operator).
func resign(t *testing.T, e *env, label string, f func(*payments.Promise)) *func(*payments.Promise) {
	key := e.operator
	if label != "operator" {
		key = signer(label)
	}
	fn := func(p *payments.Promise) {
		f(p)
		if err := p.Sign(key); err != nil {
			t.Error(err)
		}
	}
	return &fn
}

// TestLyingHermesPromiseRefused: a hermes that answers with a promise that
// is not what the provider is owed — signed by another key, for another
// chain or channel or hashlock, an amount that does not cover the
// agreement, a transactor fee above the on-chain fee rate — gets no R:
// the client refuses, stores nothing and never calls reveal. (Before the
// checks, a promise signed by any key, of any amount and fee was taken
// and R revealed.)
func TestLyingHermesPromiseRefused(t *testing.T) {
	otherProvider := signer("someone else").Address()
	cases := map[string]struct {
		signer string
		change func(*payments.Promise)
	}{
		"wrong signer":  {"not the operator", func(*payments.Promise) {}},
		"wrong chain":   {"operator", func(p *payments.Promise) { p.ChainID = big.NewInt(1338) }},
		"wrong channel": {"operator", func(p *payments.Promise) { p.ChannelID = payments.ProviderChannelID(otherProvider, hermesID) }},
		"wrong hermes channel": {"operator", func(p *payments.Promise) {
			p.ChannelID = payments.ProviderChannelID(signer("provider").Address(), common.HexToAddress("0x5"))
		}},
		"wrong hashlock":  {"operator", func(p *payments.Promise) { p.Hashlock[0] ^= 1 }},
		"amount too low":  {"operator", func(p *payments.Promise) { p.Amount = big.NewInt(99) }},
		"amount 2^128":    {"operator", func(p *payments.Promise) { p.Amount = new(big.Int).Lsh(big.NewInt(1), 128) }}, // covers anything, settles nothing
		"fee above rate":  {"operator", func(p *payments.Promise) { p.Fee = big.NewInt(2) }},                           // 1% of 100 is 1
		"fee above total": {"operator", func(p *payments.Promise) { p.Fee = big.NewInt(101) }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			c, hl := clientOf(t, e, fastOptions(e))
			consumer, provider := signer("consumer"), signer("provider").Address()
			h, err := c.NewHashlock(ctx)
			if err != nil {
				t.Fatal(err)
			}
			e.tamper.Store(resign(t, e, tc.signer, tc.change))
			_, err = c.RequestPromise(ctx, message(t, consumer, provider, 100, h))
			if !errors.Is(err, ErrUntrustedPromise) {
				t.Fatalf("lying hermes: %v, want ErrUntrustedPromise", err)
			}
			if Retryable(err) {
				t.Fatalf("a refused promise must be final: %v", err)
			}
			ent, _ := hl.Get(ctx, h)
			if ent.Promise != nil || ent.Revealed {
				t.Fatalf("refused promise stored (%s) or revealed (%v)", ent.Promise, ent.Revealed)
			}
			// Recover retries the exchange and refuses again; R stays secret.
			if _, err := c.Recover(ctx); !errors.Is(err, ErrUntrustedPromise) {
				t.Fatalf("recover against the lying hermes: %v", err)
			}
			if n := e.reveals.Load(); n != 0 {
				t.Fatalf("client sent %d reveals to a lying hermes", n)
			}
			pv, err := e.svc.Provider(ctx, provider)
			if err != nil || pv.Unrevealed != 1 {
				t.Fatalf("hermes provider view %+v %v: R must still be unrevealed", pv, err)
			}
		})
	}
}

// refusedSecondAgreement runs an honest first exchange of first through
// c, then has e's hermes answer the consumer's second agreement (adding
// 50: cumulative first+50) with its promise changed by tamper, and fails
// t (what names the case) unless c refuses it as untrusted. It returns
// the second agreement's message, for a retry.
func refusedSecondAgreement(t *testing.T, e *env, c *Client, first int64, tamper func(*payments.Promise), what string) *payments.ExchangeMessage {
	t.Helper()
	ctx := context.Background()
	consumer, provider := signer("consumer"), signer("provider").Address()
	h1, _ := c.NewHashlock(ctx)
	if _, err := c.RequestPromise(ctx, message(t, consumer, provider, first, h1)); err != nil {
		t.Fatal(err)
	}
	h2, _ := c.NewHashlock(ctx)
	m2 := message(t, consumer, provider, first+50, h2)
	m2.AgreementID, m2.AgreementTotal = big.NewInt(2), big.NewInt(50)
	if err := m2.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	e.tamper.Store(resign(t, e, "operator", tamper))
	if _, err := c.RequestPromise(ctx, m2); !errors.Is(err, ErrUntrustedPromise) {
		t.Fatalf("%s: %v", what, err)
	}
	return m2
}

// TestHermesUnderCreditsSecondAgreement: after an honest exchange, a
// hermes that answers a second agreement with a promise that does not add
// its increase (it keeps the earlier amount, validly signed) is refused.
func TestHermesUnderCreditsSecondAgreement(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, hl := clientOf(t, e, fastOptions(e))
	m2 := refusedSecondAgreement(t, e, c, 100, func(p *payments.Promise) { p.Amount = big.NewInt(120) }, "under-crediting hermes")
	// A fresh client (restart) rebuilds the ledger from the store and
	// still refuses; the honest answer (150) is then accepted.
	c = mustNew(t, e.srv.URL, hl, fastOptions(e))
	if _, err := c.RequestPromise(ctx, m2); !errors.Is(err, ErrUntrustedPromise) {
		t.Fatalf("under-crediting hermes after restart: %v", err)
	}
	e.tamper.Store(nil)
	p, err := c.RequestPromise(ctx, m2)
	if err != nil || p.Amount.Int64() != 150 {
		t.Fatalf("honest answer: %v %v", p, err)
	}
}

// TestLedgerOutOfOrder: promises of concurrent exchanges may arrive in any
// order; an honest hermes's answers always pass, one that counts two
// increases once does not.
func TestLedgerOutOfOrder(t *testing.T) {
	l := ledger{totals: map[agreementKey]*big.Int{}, owed: map[common.Address]*big.Int{}, highest: map[common.Address]*big.Int{}}
	prov := common.HexToAddress("0x1")
	msg := func(agreement, total int64) *payments.ExchangeMessage {
		return &payments.ExchangeMessage{Provider: prov, AgreementID: big.NewInt(agreement), AgreementTotal: big.NewInt(total)}
	}
	prom := func(amount int64) *payments.Promise { return &payments.Promise{Amount: big.NewInt(amount)} }
	// The hermes accepted A (10) then B (20): promises 10 and 30; B's
	// answer arrives first.
	for _, s := range []struct {
		m *payments.ExchangeMessage
		p *payments.Promise
	}{{msg(2, 20), prom(30)}, {msg(1, 10), prom(10)}, {msg(1, 25), prom(45)}} {
		if err := l.check(s.m, s.p); err != nil {
			t.Fatalf("honest answer refused: %v", err)
		}
		l.add(s.m, s.p)
	}
	if got := l.owed[prov].Int64(); got != 45 {
		t.Fatalf("owed %d, want 45", got)
	}
	// Agreement 3 adds 5, but the promise stays at 45.
	if err := l.check(msg(3, 5), prom(45)); !errors.Is(err, ErrUntrustedPromise) {
		t.Fatalf("double-counted increase accepted: %v", err)
	}
}

// TestTermsCache: terms are read once while no fee change can take
// effect, again when an announced change's time comes, and on every use
// when the notice delay is zero.
func TestTermsCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ft := termsOf(e)
	o := fastOptions(e)
	o.Chain = ft
	c, hl := clientOf(t, e, o)
	for range 3 {
		if _, err := c.Terms(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := ft.count(); n != 1 {
		t.Fatalf("%d chain reads with a one-hour notice delay, want 1", n)
	}
	// An announced change a minute ahead: the cache ends when it takes
	// effect (the client's clock is the test's).
	now := time.Now()
	clock := now
	c = mustNew(t, e.srv.URL, hl, o)
	c.now = func() time.Time { return clock }
	ft.set(Terms{ChainID: chainID, Operator: e.operator.Address(), FeeBps: 100, PendingFeeBps: 300, FeeEffectiveAt: now.Add(time.Minute),
		FeeNoticeDelay: time.Hour, ChainTime: now})
	before := ft.count()
	tm, _ := c.Terms(ctx)
	clock = now.Add(59 * time.Second)
	if _, err := c.Terms(ctx); err != nil || ft.count() != before+1 || tm.FeeBps != 100 {
		t.Fatalf("before the change: reads %d, fee %d, %v", ft.count()-before, tm.FeeBps, err)
	}
	ft.set(Terms{ChainID: chainID, Operator: e.operator.Address(), FeeBps: 300, FeeNoticeDelay: time.Hour, ChainTime: now.Add(time.Minute)})
	clock = now.Add(time.Minute)
	if tm, _ = c.Terms(ctx); tm.FeeBps != 300 || ft.count() != before+2 {
		t.Fatalf("when the change takes effect: fee %d after %d reads, want 300 from a new read", tm.FeeBps, ft.count()-before)
	}
	// Without a pending change, the cache lasts one notice delay, capped
	// by TermsMaxAge (10 minutes by default).
	clock = now.Add(time.Minute + 9*time.Minute)
	if _, _ = c.Terms(ctx); ft.count() != before+2 {
		t.Fatalf("terms read again within TermsMaxAge (%d reads)", ft.count()-before)
	}
	clock = now.Add(time.Minute + 10*time.Minute)
	if _, _ = c.Terms(ctx); ft.count() != before+3 {
		t.Fatalf("terms not read again after TermsMaxAge (%d reads)", ft.count()-before)
	}
	// No notice delay: every use reads the chain.
	ft.set(Terms{ChainID: chainID, Operator: e.operator.Address(), FeeBps: 100, ChainTime: time.Now()})
	c = mustNew(t, e.srv.URL, hl, o)
	before = ft.count()
	for range 3 {
		_, _ = c.Terms(ctx)
	}
	if n := ft.count() - before; n != 3 {
		t.Fatalf("%d reads with no notice delay, want 3", n)
	}
	// A chain failure is retryable and reveals nothing.
	ft.mu.Lock()
	ft.err = errors.New("rpc down")
	ft.mu.Unlock()
	h, _ := c.NewHashlock(ctx)
	if _, err := c.RequestPromise(ctx, message(t, signer("consumer"), signer("provider").Address(), 100, h)); !Retryable(err) {
		t.Fatalf("chain down: %v, want retryable", err)
	}
	if n := e.reveals.Load(); n != 0 {
		t.Fatalf("%d reveals without on-chain terms", n)
	}
}

// TestNoChainRefuses: a client without a chain to read the terms from
// reveals nothing.
func TestNoChainRefuses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, _ := clientOf(t, e, Options{BaseDelay: time.Millisecond, HermesID: hermesID})
	h, _ := c.NewHashlock(ctx)
	if _, err := c.RequestPromise(ctx, message(t, signer("consumer"), signer("provider").Address(), 100, h)); !errors.Is(err, ErrUntrustedPromise) {
		t.Fatalf("no chain: %v", err)
	}
	if e.reveals.Load() != 0 {
		t.Fatal("revealed without a chain")
	}
}

// TestPromiseFeeAllowance: a fixed transactor fee above the on-chain rate
// passes within the provider's allowance, and not beyond it.
func TestPromiseFeeAllowance(t *testing.T) {
	for _, tc := range []struct {
		fee int64
		ok  bool
	}{{5, true}, {6, false}, {100, false}} {
		e := newEnv(t)
		ctx := context.Background()
		o := fastOptions(e)
		o.MaxPromiseFee = big.NewInt(5) // 1% of 100 would be 1
		if tc.fee == 100 {
			o.MaxPromiseFee = big.NewInt(100) // 100 + the 1% hermes fee > 100: unsettleable
		}
		c, _ := clientOf(t, e, o)
		h, _ := c.NewHashlock(ctx)
		e.tamper.Store(resign(t, e, "operator", func(p *payments.Promise) { p.Fee = big.NewInt(tc.fee) }))
		_, err := c.RequestPromise(ctx, message(t, signer("consumer"), signer("provider").Address(), 100, h))
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrUntrustedPromise) {
			t.Errorf("fee %d: %v", tc.fee, err)
		}
		if got := e.reveals.Load() == 1; got != tc.ok {
			t.Errorf("fee %d: revealed %v", tc.fee, got)
		}
	}
}

// TestCheckSettleable: a promise reported by the hermes is checked before
// the provider pays gas to settle it.
func TestCheckSettleable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ft := termsOf(e)
	o := fastOptions(e)
	o.Chain = ft
	c, _ := clientOf(t, e, o)
	provider := signer("provider").Address()
	good := func() *payments.Promise {
		p := &payments.Promise{ChainID: chainID, ChannelID: payments.ProviderChannelID(provider, hermesID), Amount: big.NewInt(100), Fee: big.NewInt(0)}
		if err := p.Sign(e.operator); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := c.CheckSettleable(ctx, provider, good()); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(*payments.Promise){
		"signer":  func(p *payments.Promise) { _ = p.Sign(signer("x")) },
		"chain":   func(p *payments.Promise) { p.ChainID = big.NewInt(5); _ = p.Sign(e.operator) },
		"channel": func(p *payments.Promise) { p.ChannelID[0] ^= 1; _ = p.Sign(e.operator) },
		"fee":     func(p *payments.Promise) { p.Fee = big.NewInt(100); _ = p.Sign(e.operator) }, // 100 + the 1% hermes fee > 100
		"2^128":   func(p *payments.Promise) { p.Amount = new(big.Int).Lsh(big.NewInt(1), 128); _ = p.Sign(e.operator) },
	} {
		p := good()
		f(p)
		if err := c.CheckSettleable(ctx, provider, p); !errors.Is(err, ErrUntrustedPromise) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// What the chain says about settling it now (after an earlier
	// settlement the fees must fit in what this one pays) is asked, and a
	// refusal or an unreadable chain is reported as such.
	var asked payments.Promise
	ft.mu.Lock()
	ft.settle = func(p payments.Promise) error {
		asked = p
		return fmt.Errorf("%w: fees above the 10 paid", ErrNotSettleable)
	}
	ft.mu.Unlock()
	if err := c.CheckSettleable(ctx, provider, good()); !errors.Is(err, ErrNotSettleable) || errors.Is(err, ErrUntrustedPromise) {
		t.Fatalf("chain refuses: %v, want ErrNotSettleable", err)
	}
	if asked.Amount == nil || asked.Amount.Int64() != 100 {
		t.Fatalf("chain asked about %+v", asked)
	}
	ft.mu.Lock()
	ft.settle = func(payments.Promise) error { return errors.New("connection refused") }
	ft.mu.Unlock()
	if err := c.CheckSettleable(ctx, provider, good()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("chain unreadable: %v, want ErrUnavailable", err)
	}
}

// TestPromiseFeeOnIncrement: the fee rate applies to what a promise adds,
// not to the cumulative amount, so a hermes cannot take the on-chain rate
// of everything earned so far from each small increment (it could settle
// every promise itself and keep each fee).
func TestPromiseFeeOnIncrement(t *testing.T) {
	e := newEnv(t)
	c, _ := clientOf(t, e, fastOptions(e))
	// Agreement 2 adds 50: 1% of it is 0, while 1% of the new 10,050 is 100.
	refusedSecondAgreement(t, e, c, 10000, func(p *payments.Promise) { p.Fee = big.NewInt(100) }, "fee of 1% of the cumulative amount on a 50 increment")
	if n := e.reveals.Load(); n != 1 {
		t.Fatalf("%d reveals, want only the first", n)
	}
}
