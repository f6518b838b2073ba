package pingpong

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPaymentCycle measures one full pay-as-you-go round on both
// sides: the provider draws and stores a secret and signs an invoice, the
// consumer verifies it, raises its ledger and signs an exchange message,
// and the provider verifies that, forwards it (to an in-memory hermes that
// verifies and signs) and reveals the secret. It reports the cost as a
// multiple of one identity signature measured in the same run
// ("x_sign"), so results compare across machines.
func BenchmarkPaymentCycle(b *testing.B) {
	s := signer(b, 0x09)
	msg := make([]byte, 32)
	const baseN = 300
	t0b := time.Now()
	for i := 0; i < baseN; i++ {
		if _, err := s.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
	signNs := float64(time.Since(t0b).Nanoseconds()) / baseN

	h := newHarness(b, nil)
	ctx := context.Background()
	now := t0
	var bytes uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(11 * time.Second)
		bytes += mib
		if err := h.tracker.Tick(ctx, now, bytes); err != nil {
			b.Fatal(err)
		}
		inv := h.outbox[0]
		h.outbox = h.outbox[:0]
		em, err := h.payer.HandleInvoice(ctx, now, bytes, inv)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.tracker.HandleExchange(ctx, now, em); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/signNs, "x_sign")
}
