package paystream

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/openmyst/openmyst/p2p/sessionproto"
)

// TestResumeCarriesLostPayment: the consumer pays an invoice but the
// stream dies before the exchange message gets through. The provider's
// session waits; the consumer resumes it on a new stream with that
// exchange message; the provider accepts it (once: the consumer's loop
// does not send it again), the session goes on there with new invoices
// paid, and at the end what the consumer paid is what the provider
// accepted and the hermes promised. The first stream is closed and each
// attachment released.
func TestResumeCarriesLostPayment(t *testing.T) {
	s := newSession(t, price, price, 2*time.Second, 5*time.Second)
	s.traffic(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resume := make(chan Attachment)
	opt := s.opt
	opt.Resume, opt.Stream, opt.ResumeGrace = resume, s.provConn, 5*time.Second
	var provErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); provErr = Provider(ctx, s.provR, s.provW, s.tracker, s.bytes.Load, opt) }()

	// The consumer reads invoices until it has paid one, and loses the
	// stream before sending the exchange message.
	lost := s.payNextInvoice(t, ctx)
	s.consConn.Close()
	time.Sleep(100 * time.Millisecond) // the provider notices, invoices meanwhile wait
	if s.tracker.Stats().Accepted.Sign() != 0 {
		t.Fatal("the lost payment arrived anyway")
	}

	provConn, consConn := net.Pipe()
	defer provConn.Close()
	defer consConn.Close()
	released := make(chan struct{})
	select {
	case resume <- Attachment{Reader: sessionproto.NewReader(provConn, 2*time.Second), Stream: provConn,
		Paid: s.payer.Stats().Paid, Exchange: lost, Done: released}:
	case <-time.After(5 * time.Second):
		t.Fatal("the provider session did not take the resumed stream")
	}
	consCtx, disconnect := context.WithCancel(ctx)
	var consErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		consErr = Consumer(consCtx, sessionproto.NewReader(consConn, 2*time.Second), sessionproto.NewWriter(consConn, time.Second), s.payer, s.bytes.Load, s.opt)
	}()
	for deadline := time.Now().Add(5 * time.Second); s.payer.Stats().Invoices < 4; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d invoices paid after the resume", s.payer.Stats().Invoices)
		}
	}
	disconnect()
	waitDone(t, &wg, cancel)
	if consErr != nil || !errors.Is(provErr, ErrPeerEnded) {
		t.Fatalf("consumer %v, provider %v", consErr, provErr)
	}
	paid, st := s.payer.Stats().Paid, s.tracker.Stats()
	if paid.Cmp(st.Accepted) != 0 || paid.Cmp(s.hermes.total()) != 0 || st.Refused != 0 {
		t.Fatalf("consumer paid %s; provider accepted %s (refused %d), hermes promised %s", paid, st.Accepted, st.Refused, s.hermes.total())
	}
	// Every payment the consumer made was accepted, the lost one too
	// (it reached the provider only with the resume).
	if n := s.payer.Stats().Invoices; st.Paid != n {
		t.Fatalf("provider accepted %d payments, the consumer made %d", st.Paid, n)
	}
	select {
	case <-released:
	default:
		t.Fatal("the resumed stream was not released when the session ended")
	}
	if _, err := s.provConn.Write([]byte{0}); err == nil {
		t.Fatal("the lost stream was not closed")
	}
}

// TestResumeGraceEnds: without a resume the session ends with
// ErrStreamLost after the grace, not before.
func TestResumeGraceEnds(t *testing.T) {
	s := newSession(t, price, price, 2*time.Second, time.Minute)
	opt := s.opt
	const grace = 300 * time.Millisecond
	opt.Resume, opt.Stream, opt.ResumeGrace = make(chan Attachment), s.provConn, grace
	done := make(chan error, 1)
	go func() { done <- Provider(context.Background(), s.provR, s.provW, s.tracker, s.bytes.Load, opt) }()
	lost := time.Now()
	s.consConn.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStreamLost) || time.Since(lost) < grace {
			t.Fatalf("ended after %v with %v, want ErrStreamLost after %v", time.Since(lost), err, grace)
		}
		if r := EndReason(err); r != EndStreamLost {
			t.Fatalf("EndReason(%v) = %s, want %s", err, r, EndStreamLost)
		}
	case <-time.After(20 * grace):
		t.Fatal("no end after the grace")
	}
}
