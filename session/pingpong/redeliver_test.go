package pingpong

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/openmyst/openmyst/payments"
)

// TestUndeliveredInvoiceRedelivered: an invoice the stream could not carry
// (Send fails with ErrUndelivered: a resumable session's stream is lost)
// does not end the session; it counts as sent, its grace runs, and after
// Redeliver the same signed invoice goes out again, once, and only while
// it is unpaid. The consumer pays it exactly once.
func TestUndeliveredInvoiceRedelivered(t *testing.T) {
	down := true
	var dropped []*payments.Invoice
	h := newHarness(t, nil)
	h.tracker.cfg.Send = func(_ context.Context, inv *payments.Invoice) error {
		if down {
			dropped = append(dropped, inv)
			return fmt.Errorf("stream lost: %w", ErrUndelivered)
		}
		h.outbox = append(h.outbox, inv)
		return nil
	}
	ctx := context.Background()
	now := t0.Add(5 * time.Second)
	if err := h.tracker.Tick(ctx, now, 5*mib); err != nil {
		t.Fatalf("an undelivered invoice ended the session: %v", err)
	}
	st := h.tracker.Stats()
	if len(dropped) != 1 || st.Invoices != 1 || st.Invoiced.Sign() <= 0 || !st.UnpaidSince.Equal(now) {
		t.Fatalf("after an undelivered invoice: %d dropped, stats %+v", len(dropped), st)
	}
	// Still down: a redelivery is not an error either.
	h.tracker.Redeliver(nil)
	if err := h.tracker.Tick(ctx, now.Add(time.Second), 5*mib); err != nil {
		t.Fatal(err)
	}
	down = false
	// Back: the consumer says it paid nothing; the same invoice goes out.
	h.tracker.Redeliver(big.NewInt(0))
	if err := h.tracker.Tick(ctx, now.Add(2*time.Second), 5*mib); err != nil {
		t.Fatal(err)
	}
	if len(h.outbox) != 1 || h.outbox[0].Hashlock != dropped[0].Hashlock || h.outbox[0].AgreementTotal.Cmp(dropped[0].AgreementTotal) != 0 {
		t.Fatalf("redelivered %v, want the dropped invoice again", h.outbox)
	}
	if h.tracker.Stats().Invoices != 1 {
		t.Fatal("a redelivery counted as a new invoice")
	}
	// Without a new Redeliver nothing is sent again.
	if err := h.tracker.Tick(ctx, now.Add(3*time.Second), 5*mib); err != nil {
		t.Fatal(err)
	}
	if len(h.outbox) != 1 {
		t.Fatalf("%d invoices out, want the one redelivery", len(h.outbox))
	}
	// The consumer pays it; its exchange message arrives twice (on the
	// stream and again in its resume): stored and paid once.
	em, err := h.payer.HandleInvoice(ctx, now.Add(3*time.Second), 5*mib, h.outbox[0])
	if err != nil || em == nil {
		t.Fatalf("pay: %v", err)
	}
	again, err := h.payer.HandleInvoice(ctx, now.Add(3*time.Second), 5*mib, h.outbox[0])
	if err != nil || again != nil {
		t.Fatalf("the consumer paid the same invoice twice: %v %v", again, err)
	}
	for range 2 {
		if err := h.tracker.HandleExchange(ctx, now.Add(3*time.Second), copyExchange(em)); err != nil {
			t.Fatal(err)
		}
	}
	if h.exchanges.count != 1 || h.tracker.Stats().Paid != 1 || h.tracker.Stats().Accepted.Cmp(dropped[0].AgreementTotal) != 0 {
		t.Fatalf("%d exchanges stored, stats %+v", h.exchanges.count, h.tracker.Stats())
	}
	// Paid: a later Redeliver (another resume) sends nothing.
	h.outbox = nil
	h.tracker.Redeliver(big.NewInt(0))
	if err := h.tracker.Tick(ctx, now.Add(4*time.Second), 5*mib); err != nil {
		t.Fatal(err)
	}
	if len(h.outbox) != 0 {
		t.Fatalf("a paid invoice was sent again: %v", h.outbox)
	}
}

// TestUndeliveredInvoiceGraceRuns: an invoice that never reaches the
// consumer still ends the session at its grace (the exposure bound does
// not grow while the stream is lost).
func TestUndeliveredInvoiceGraceRuns(t *testing.T) {
	h := newHarness(t, nil)
	h.tracker.cfg.Send = func(context.Context, *payments.Invoice) error { return ErrUndelivered }
	ctx := context.Background()
	now := t0.Add(5 * time.Second)
	if err := h.tracker.Tick(ctx, now, mib); err != nil {
		t.Fatal(err)
	}
	if err := h.tracker.Tick(ctx, now.Add(h.tracker.cfg.Grace+time.Second), mib); !errors.Is(err, ErrPaymentTimeout) {
		t.Fatalf("undelivered invoice past its grace: %v, want ErrPaymentTimeout", err)
	}
	// Any other send error still ends the session at once.
	h = newHarness(t, nil)
	h.tracker.cfg.Send = func(context.Context, *payments.Invoice) error { return errors.New("encode failed") }
	if err := h.tracker.Tick(ctx, now, mib); err == nil || errors.Is(err, ErrUndelivered) {
		t.Fatalf("send error: %v", err)
	}
}
