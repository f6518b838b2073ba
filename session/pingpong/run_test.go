package pingpong

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/internal/tick"
	"github.com/openmyst/openmyst/payments"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runSession drives a tracker with Run on the system clock and a consumer
// goroutine paying with an InvoicePayer, like paystream does over a
// stream. payFor bounds how long the consumer pays.
//
// Like paystream.Provider, it hands the tracker every exchange message
// the consumer sent that Run had not handled when it returned (still
// buffered in the channel, or paid as the session ended), then settles:
// the payer counts a payment when it sends it, so the tracker must see
// it too.
func runSession(ctx context.Context, t *testing.T, h *harness, payFor time.Duration) error {
	t.Helper()
	invoices := make(chan *payments.Invoice, 16)
	exchanges := make(chan *payments.ExchangeMessage, 16)
	var late []*payments.ExchangeMessage // paid as the session ended; owned by the consumer until wg.Wait
	var bytes atomic.Uint64
	start := time.Now()
	h.tracker.cfg.Start, h.payer.cfg.Start = start, start
	h.tracker.cfg.Send = func(ctx context.Context, inv *payments.Invoice) error {
		select {
		case invoices <- inv:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // traffic
		defer wg.Done()
		tick.Every(runCtx, 2*time.Millisecond, func(context.Context) { bytes.Add(64 << 10) })
	}()
	go func() { // consumer
		defer wg.Done()
		for {
			select {
			case <-runCtx.Done():
				return
			case inv := <-invoices:
				if time.Since(start) > payFor {
					continue
				}
				em, err := h.payer.HandleInvoice(runCtx, time.Now(), bytes.Load(), inv)
				if err != nil {
					t.Errorf("consumer: %v", err)
					return
				}
				if em == nil {
					continue
				}
				select {
				case exchanges <- em:
				case <-runCtx.Done():
					late = append(late, em)
					return
				}
			}
		}
	}()
	err := h.tracker.Run(runCtx, SystemClock{}, bytes.Load, exchanges)
	stop()
	wg.Wait()
	handleCtx, cancelHandle := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelHandle()
	var pending []*payments.ExchangeMessage
	for len(exchanges) > 0 {
		pending = append(pending, <-exchanges)
	}
	for _, em := range append(pending, late...) {
		if err := h.tracker.HandleExchange(handleCtx, time.Now(), em); err != nil {
			t.Errorf("exchange message sent as the session ended: %v", err)
		}
	}
	if err := h.tracker.Settle(handleCtx, 10*time.Millisecond); err != nil {
		t.Errorf("settle: %v", err)
	}
	return err
}

func TestRunPaidSession(t *testing.T) {
	h := newHarness(t, func(tc *TrackerConfig, _ *PayerConfig) {
		tc.Interval, tc.CheckEvery, tc.Grace = 20*time.Millisecond, 5*time.Millisecond, 2*time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// Stats may be read concurrently (the status API does).
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = h.tracker.Stats()
			_ = h.payer.Stats()
			time.Sleep(time.Millisecond)
		}
	}()
	err := runSession(ctx, t, h, time.Hour)
	<-done
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run returned %v, want the context's end", err)
	}
	st := h.tracker.Stats()
	if st.Invoices < 3 || st.Settled.Sign() <= 0 {
		t.Fatalf("stats %+v: want several settled invoices", st)
	}
	if paid := h.payer.Stats().Paid; paid.Cmp(st.Accepted) != 0 || h.channel.promised().Cmp(paid) != 0 {
		t.Fatalf("payer paid %s, channel %s, tracker accepted %s", paid, h.channel.promised(), st.Accepted)
	}
	if st.Settled.Cmp(st.Accepted) != 0 || h.hermes.providerTotal().Cmp(st.Settled) != 0 {
		t.Fatalf("settled %s, hermes %s, accepted %s", st.Settled, h.hermes.providerTotal(), st.Accepted)
	}
}

func TestRunEndsUnpaidSession(t *testing.T) {
	h := newHarness(t, func(tc *TrackerConfig, _ *PayerConfig) {
		tc.Interval, tc.CheckEvery, tc.Grace = 20*time.Millisecond, 5*time.Millisecond, 60*time.Millisecond
		tc.Log = slog.New(slog.DiscardHandler)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := runSession(ctx, t, h, 50*time.Millisecond)
	if !errors.Is(err, ErrPaymentTimeout) {
		t.Fatalf("Run returned %v, want ErrPaymentTimeout", err)
	}
	if ctx.Err() != nil {
		t.Fatal("tracker did not end the unpaid session before the test's deadline")
	}
	st := h.tracker.Stats()
	if st.Settled.Sign() <= 0 || st.Owed.Cmp(st.Settled) <= 0 {
		t.Fatalf("stats %+v: want some paid, then unpaid", st)
	}
}
