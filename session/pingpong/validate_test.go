package pingpong

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/payments"
)

// firstExchange runs a harness until the provider has sent one invoice and
// returns it with the consumer's honest exchange message for it.
func firstExchange(t *testing.T, h *harness) (*payments.Invoice, *payments.ExchangeMessage, time.Time) {
	t.Helper()
	now := t0.Add(5 * time.Second)
	if err := h.step(now, 5*mib, false, now, 0); err != nil {
		t.Fatal(err)
	}
	if len(h.outbox) != 1 {
		t.Fatalf("%d invoices queued, want 1", len(h.outbox))
	}
	inv := h.outbox[0]
	h.outbox = nil
	em, err := h.payer.HandleInvoice(context.Background(), now, 5*mib, inv)
	if err != nil || em == nil {
		t.Fatalf("pay: %v", err)
	}
	return inv, em, now
}

func copyExchange(em *payments.ExchangeMessage) *payments.ExchangeMessage {
	c := *em
	c.Promise.Amount = new(big.Int).Set(em.Promise.Amount)
	c.Promise.Fee = new(big.Int).Set(em.Promise.Fee)
	c.AgreementID = new(big.Int).Set(em.AgreementID)
	c.AgreementTotal = new(big.Int).Set(em.AgreementTotal)
	c.ChainID = new(big.Int).Set(em.ChainID)
	c.Promise.ChainID = new(big.Int).Set(em.Promise.ChainID)
	return &c
}

func TestTrackerRejectsBadExchange(t *testing.T) {
	h := newHarness(t, nil)
	_, good, now := firstExchange(t, h)
	consumer := h.payer.cfg.Consumer
	mallory := signer(t, 0x66)
	cases := []struct {
		name string
		edit func(em *payments.ExchangeMessage)
		sign bool
	}{
		{"other chain", func(em *payments.ExchangeMessage) { em.ChainID = big.NewInt(1); em.Promise.ChainID = big.NewInt(1) }, true},
		{"other agreement", func(em *payments.ExchangeMessage) { em.AgreementID.Add(em.AgreementID, big.NewInt(1)) }, true},
		{"other provider", func(em *payments.ExchangeMessage) { em.Provider = common.HexToAddress("0x99") }, true},
		{"other hermes", func(em *payments.ExchangeMessage) { em.HermesID = common.HexToAddress("0x98") }, true},
		{"fee changed", func(em *payments.ExchangeMessage) { em.Promise.Fee = big.NewInt(5) }, true},
		{"unknown hashlock", func(em *payments.ExchangeMessage) { em.Promise.Hashlock[0] ^= 1 }, true},
		{"total below invoice", func(em *payments.ExchangeMessage) { em.AgreementTotal.Sub(em.AgreementTotal, big.NewInt(1)) }, true},
		{"total above invoice", func(em *payments.ExchangeMessage) {
			em.AgreementTotal.Add(em.AgreementTotal, big.NewInt(1))
			em.Promise.Amount.Add(em.Promise.Amount, big.NewInt(1))
		}, true},
		{"promise below total", func(em *payments.ExchangeMessage) { em.Promise.Amount.Sub(em.AgreementTotal, big.NewInt(1)) }, true},
		{"tampered after signing", func(em *payments.ExchangeMessage) { em.Promise.Amount.Add(em.Promise.Amount, big.NewInt(1)) }, false},
		{"signed by someone else", func(em *payments.ExchangeMessage) {
			if err := em.Sign(mallory); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			em := copyExchange(good)
			c.edit(em)
			if c.sign {
				if err := em.Sign(consumer); err != nil {
					t.Fatal(err)
				}
			}
			err := h.tracker.HandleExchange(context.Background(), now, em)
			if !errors.Is(err, ErrBadExchange) {
				t.Fatalf("got %v, want ErrBadExchange", err)
			}
			if h.exchanges.count != 0 || h.tracker.Stats().Accepted.Sign() != 0 {
				t.Fatal("a rejected exchange message changed state")
			}
		})
	}
	if err := h.tracker.HandleExchange(context.Background(), now, good); err != nil {
		t.Fatalf("honest exchange: %v", err)
	}
	// The same message again (a resumed session's consumer re-sends its
	// last payment) is ignored: not an error, not stored or paid twice.
	if err := h.tracker.HandleExchange(context.Background(), now, copyExchange(good)); err != nil {
		t.Fatalf("repeated exchange: %v, want it ignored", err)
	}
	if st := h.tracker.Stats(); st.Paid != 1 || st.Refused != len(cases) {
		t.Fatalf("after a repeated exchange: %+v, want 1 paid and only the bad ones refused", st)
	}
	if h.exchanges.count != 1 {
		t.Fatalf("%d exchanges stored, want 1", h.exchanges.count)
	}

	// The next payment must raise the channel promise by at least what it
	// newly pays.
	later := now.Add(10 * time.Second)
	if err := h.tracker.Tick(context.Background(), later, 50*mib); err != nil {
		t.Fatal(err)
	}
	inv := h.outbox[len(h.outbox)-1]
	short := &payments.ExchangeMessage{
		Promise: payments.Promise{ChainID: chainID, ChannelID: good.Promise.ChannelID,
			Amount: new(big.Int).Sub(inv.AgreementTotal, big.NewInt(1)), Fee: big.NewInt(0), Hashlock: inv.Hashlock},
		AgreementID: inv.AgreementID, AgreementTotal: inv.AgreementTotal, Provider: inv.Provider,
		HermesID: good.HermesID, ChainID: chainID,
	}
	short.Promise.Amount = new(big.Int).Add(good.Promise.Amount, new(big.Int).Sub(inv.AgreementTotal, good.AgreementTotal))
	short.Promise.Amount.Sub(short.Promise.Amount, big.NewInt(1))
	if err := short.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	if err := h.tracker.HandleExchange(context.Background(), later, short); !errors.Is(err, ErrBadExchange) {
		t.Fatalf("under-raised promise: %v", err)
	}
	// The counts /metrics reports: one paid invoice, every other message
	// (the cases, the under-raised promise; not the repeat) refused.
	if st := h.tracker.Stats(); st.Paid != 1 || st.Refused != len(cases)+1 {
		t.Fatalf("stats paid %d refused %d, want 1 and %d", st.Paid, st.Refused, len(cases)+1)
	}
}

func TestPayerRejectsBadInvoice(t *testing.T) {
	prov := signer(t, 0x01)
	mallory := signer(t, 0x66)
	ctx := context.Background()
	now := t0.Add(10 * time.Second)
	honest := func() *payments.Invoice {
		_, lock, err := payments.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		return &payments.Invoice{ChainID: chainID, AgreementID: big.NewInt(7),
			AgreementTotal: fairRate.Total(10*time.Second, mib), TransactorFee: big.NewInt(0),
			Hashlock: lock, Provider: prov.Address()}
	}
	sign := func(inv *payments.Invoice, s interface {
		Address() common.Address
		Sign([]byte) ([]byte, error)
	}) *payments.Invoice {
		inv.Provider = s.Address()
		if err := inv.Sign(s); err != nil {
			t.Fatal(err)
		}
		return inv
	}
	cases := []struct {
		name string
		inv  func() *payments.Invoice
		want error
	}{
		{"other provider", func() *payments.Invoice { return sign(honest(), mallory) }, ErrBadInvoice},
		{"forged signature", func() *payments.Invoice {
			inv := sign(honest(), mallory)
			inv.Provider = prov.Address()
			return inv
		}, ErrBadInvoice},
		{"tampered total", func() *payments.Invoice {
			inv := sign(honest(), prov)
			inv.AgreementTotal = big.NewInt(1)
			return inv
		}, ErrBadInvoice},
		{"other chain", func() *payments.Invoice { inv := honest(); inv.ChainID = big.NewInt(1); return sign(inv, prov) }, ErrBadInvoice},
		{"fee too high", func() *payments.Invoice { inv := honest(); inv.TransactorFee = big.NewInt(1); return sign(inv, prov) }, ErrBadInvoice},
		{"overcharge", func() *payments.Invoice {
			// 32 MiB invoiced for the 1 MiB the consumer counted: more
			// than the bytes in flight the tolerance allows.
			inv := honest()
			inv.AgreementTotal = fairRate.Total(10*time.Second, 32*mib)
			return sign(inv, prov)
		}, ErrOvercharge},
		{"nil", func() *payments.Invoice { return nil }, ErrBadInvoice},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			em, err := h.payer.HandleInvoice(ctx, now, mib, c.inv())
			if !errors.Is(err, c.want) || em != nil {
				t.Fatalf("got %v, %v; want %v", em, err, c.want)
			}
			if h.channel.promised().Sign() != 0 {
				t.Fatal("something was promised for a refused invoice")
			}
		})
	}

	t.Run("sequence", func(t *testing.T) {
		h := newHarness(t, nil)
		first := sign(honest(), prov)
		em, err := h.payer.HandleInvoice(ctx, now, mib, first)
		if err != nil || em == nil {
			t.Fatalf("honest invoice: %v", err)
		}
		if em.Promise.Amount.Cmp(first.AgreementTotal) != 0 || em.Promise.Hashlock != first.Hashlock {
			t.Fatalf("promise %s locked %x, want %s locked %x", em.Promise.Amount, em.Promise.Hashlock, first.AgreementTotal, first.Hashlock)
		}
		if c, err := em.RecoverConsumer(); err != nil || c != h.payer.cfg.Consumer.Address() {
			t.Fatalf("exchange message signer %s, %v", c, err)
		}
		// Same total again: nothing new to pay.
		again := honest()
		again.AgreementTotal = first.AgreementTotal
		if em, err := h.payer.HandleInvoice(ctx, now, mib, sign(again, prov)); em != nil || err != nil {
			t.Fatalf("repeat total: %v %v", em, err)
		}
		// Lower total: refused.
		lower := honest()
		lower.AgreementTotal = new(big.Int).Sub(first.AgreementTotal, big.NewInt(1))
		if _, err := h.payer.HandleInvoice(ctx, now, mib, sign(lower, prov)); !errors.Is(err, ErrBadInvoice) {
			t.Fatalf("decreasing total: %v", err)
		}
		// Another agreement on the same session: refused.
		other := honest()
		other.AgreementID = big.NewInt(8)
		other.AgreementTotal = fairRate.Total(20*time.Second, mib)
		if _, err := h.payer.HandleInvoice(ctx, now.Add(10*time.Second), mib, sign(other, prov)); !errors.Is(err, ErrBadInvoice) {
			t.Fatalf("other agreement: %v", err)
		}
		if got := h.channel.promised(); got.Cmp(first.AgreementTotal) != 0 {
			t.Fatalf("promised %s, want only the first invoice's %s", got, first.AgreementTotal)
		}
	})

	t.Run("insufficient balance", func(t *testing.T) {
		h := newHarness(t, nil)
		inv := sign(honest(), prov)
		h.channel.balance = new(big.Int).Sub(inv.AgreementTotal, big.NewInt(1))
		em, err := h.payer.HandleInvoice(ctx, now, mib, inv)
		if !errors.Is(err, ErrInsufficientBalance) || em != nil {
			t.Fatalf("got %v, %v; want ErrInsufficientBalance", em, err)
		}
		if h.channel.promised().Sign() != 0 || h.payer.Stats().Paid.Sign() != 0 {
			t.Fatal("paid beyond the channel balance")
		}
	})
}

func TestFreeSessionNeverInvoicesOrTimesOut(t *testing.T) {
	free := Price{PerHour: big.NewInt(0), PerGiB: big.NewInt(0)}
	h := newHarness(t, func(tc *TrackerConfig, pc *PayerConfig) { tc.Price, pc.Price = free, free })
	for i := 1; i <= 200; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		if err := h.step(now, uint64(i)*100*mib, false, now, 0); err != nil {
			t.Fatalf("t=%ds: %v", i, err)
		}
	}
	if st := h.tracker.Stats(); st.Invoices != 0 || st.Owed.Sign() != 0 {
		t.Fatalf("free session stats %+v", st)
	}
}

func TestConfigValidation(t *testing.T) {
	h := newHarness(t, nil)
	base := h.tracker.cfg
	bad := []func(c *TrackerConfig){
		func(c *TrackerConfig) { c.ChainID = nil },
		func(c *TrackerConfig) { c.Interval = -1 },
		func(c *TrackerConfig) { c.Grace = -1 },
		func(c *TrackerConfig) { c.Hashlocks = nil },
		func(c *TrackerConfig) { c.Send = nil },
		func(c *TrackerConfig) { c.Price = Price{PerHour: big.NewInt(-1), PerGiB: big.NewInt(0)} },
		func(c *TrackerConfig) { c.Threshold, c.MaxUnpaid = big.NewInt(10), big.NewInt(10) },
		func(c *TrackerConfig) { c.Start = time.Time{} },
	}
	for i, edit := range bad {
		c := base
		edit(&c)
		if _, err := NewInvoiceTracker(c); err == nil {
			t.Errorf("bad tracker config %d accepted", i)
		}
	}
	def := base
	def.Interval, def.Grace, def.CheckEvery = 0, 0, 0
	tr, err := NewInvoiceTracker(def)
	if err != nil {
		t.Fatal(err)
	}
	if tr.cfg.Interval != DefaultInterval || tr.cfg.Grace != DefaultGrace || tr.cfg.CheckEvery != DefaultInterval/4 {
		t.Fatalf("defaults not applied: %+v", tr.cfg)
	}
	pbase := h.payer.cfg
	pbad := []func(c *PayerConfig){
		func(c *PayerConfig) { c.Channel = nil },
		func(c *PayerConfig) { c.MaxFee = nil },
		func(c *PayerConfig) { c.Tolerance.Slack = big.NewInt(-1) },
		func(c *PayerConfig) { c.Price = Price{} },
	}
	for i, edit := range pbad {
		c := pbase
		edit(&c)
		if _, err := NewInvoicePayer(c); err == nil {
			t.Errorf("bad payer config %d accepted", i)
		}
	}
}

func TestExchangeStoredWhenContextEnded(t *testing.T) {
	h := newHarness(t, nil)
	_, em, now := firstExchange(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the session is closing as the payment arrives
	if err := h.tracker.HandleExchange(ctx, now, em); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if h.exchanges.latest == nil || h.exchanges.latest.AgreementTotal.Cmp(em.AgreementTotal) != 0 {
		t.Fatal("a valid payment was dropped because the context had ended")
	}
	// It is forwarded afterwards.
	if err := h.tracker.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.hermes.providerTotal(); got.Cmp(em.AgreementTotal) != 0 {
		t.Fatalf("hermes promised %s, want %s", got, em.AgreementTotal)
	}
}
