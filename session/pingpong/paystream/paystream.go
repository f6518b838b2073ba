package paystream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session/pingpong"
)

// DefaultKeepalive is the default Options.Keepalive; DefaultReadTimeout
// is the per-message timeout to give the session stream's
// sessionproto.Reader so a peer that stops sending (not even keepalives)
// is dropped.
const (
	DefaultKeepalive   = 10 * time.Second
	DefaultReadTimeout = 35 * time.Second
	// DefaultDrain is the default Options.Drain.
	DefaultDrain = 2 * time.Second
)

// ErrPeerEnded is returned (wrapped, with the reason) when the peer ends
// the session with a Destroy message or closes the stream.
var ErrPeerEnded = errors.New("paystream: peer ended the session")

// ErrQuotaExhausted ends a provider session when the provider's monthly
// traffic quota is used up (sent to the consumer as quota_exhausted).
var ErrQuotaExhausted = errors.New("monthly traffic quota exhausted")

// Options tunes a payment loop. Zero values take the defaults.
type Options struct {
	// Keepalive is how long the stream may stay quiet before a keepalive
	// is sent (default 10 s). It must be well below the peer's read
	// timeout (the Reader's per-message timeout; DefaultReadTimeout).
	Keepalive time.Duration
	// Drain is how long a provider keeps reading the stream after it has
	// ended the session (its Error or Destroy sent), for an exchange
	// message the consumer sent before it saw the end (default 2 s). The
	// drain stops early when the consumer closes the stream or answers
	// with Destroy or Error.
	Drain time.Duration
	// Clock drives the provider's tracker (default pingpong.SystemClock).
	Clock pingpong.Clock
	// Log receives the loop's events (default slog.Default()).
	Log *slog.Logger
	// Stop, when set, ends a provider session with the error received
	// (told to the consumer with CodeFor's code), e.g. ErrQuotaExhausted.
	Stop <-chan error
}

func (o *Options) fill() {
	if o.Keepalive <= 0 {
		o.Keepalive = DefaultKeepalive
	}
	if o.Drain <= 0 {
		o.Drain = DefaultDrain
	}
	if o.Clock == nil {
		o.Clock = pingpong.SystemClock{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// InvoiceSender returns the Send function for a TrackerConfig that writes
// each invoice to the session stream. A write that has started is not cut
// off when ctx ends (the Writer's timeout still bounds it), so ending a
// session never leaves half a frame on the stream.
func InvoiceSender(w *sessionproto.Writer) func(context.Context, *payments.Invoice) error {
	return func(ctx context.Context, inv *payments.Invoice) error {
		m, err := sessionproto.NewInvoice(inv)
		if err != nil {
			return err
		}
		return w.WriteMessage(context.WithoutCancel(ctx), m)
	}
}

// CodeFor maps a payment loop error to the session protocol error code sent
// to the peer.
func CodeFor(err error) sessionproto.ErrorCode {
	switch {
	case errors.Is(err, pingpong.ErrPaymentTimeout), errors.Is(err, pingpong.ErrUnpaidLimit):
		return sessionproto.CodePaymentTimeout
	case errors.Is(err, pingpong.ErrOvercharge):
		return sessionproto.CodeOvercharge
	case errors.Is(err, pingpong.ErrInsufficientBalance), errors.Is(err, pingpong.ErrHermesRejected):
		return sessionproto.CodeInsufficientFunds
	case errors.Is(err, pingpong.ErrBadExchange), errors.Is(err, pingpong.ErrBadInvoice), errors.Is(err, sessionproto.ErrMalformed):
		return sessionproto.CodeBadRequest
	case errors.Is(err, ErrQuotaExhausted):
		return sessionproto.CodeQuotaExhausted
	}
	return sessionproto.CodeInternal
}

// keepalive sends a keepalive whenever nothing was written for interval,
// until ctx ends. It returns the first write error.
func keepalive(ctx context.Context, w *sessionproto.Writer, interval time.Duration) error {
	tick := time.NewTicker(interval / 4)
	defer tick.Stop()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if last := w.LastWrite(); !last.IsZero() && time.Since(last) < interval {
				continue
			}
			seq++
			if err := w.WriteMessage(context.WithoutCancel(ctx), &sessionproto.Keepalive{Seq: seq}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("paystream: keepalive: %w", err)
			}
		}
	}
}

// peerMessage interprets a message that ends the session or breaks the
// protocol; it returns nil for a keepalive.
func peerMessage(m sessionproto.Message) error {
	switch m := m.(type) {
	case *sessionproto.Keepalive:
		return nil
	case *sessionproto.Destroy:
		return fmt.Errorf("%w: %s", ErrPeerEnded, m.Reason)
	case *sessionproto.Error:
		return m
	}
	return fmt.Errorf("%w: unexpected %s message", sessionproto.ErrMalformed, m.Type())
}

// readErr turns a stream read error into the loop's error.
func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: stream closed", ErrPeerEnded)
	}
	return fmt.Errorf("paystream: read: %w", err)
}

// tellPeer sends the message that ends the session for err: an Error with
// its code, or nothing when the peer itself ended it. It uses a short
// context of its own, as ctx may already be done.
func tellPeer(w *sessionproto.Writer, err error, log *slog.Logger) {
	var perr *sessionproto.Error
	if errors.Is(err, ErrPeerEnded) || errors.As(err, &perr) {
		return
	}
	msg := err.Error()
	if len(msg) > sessionproto.MaxErrorMessageLen {
		msg = msg[:sessionproto.MaxErrorMessageLen]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if werr := w.WriteMessage(ctx, &sessionproto.Error{Code: CodeFor(err), Message: sanitize(msg)}); werr != nil {
		log.Debug("could not tell the peer why the session ended", "err", werr)
	}
}

// sanitize replaces control characters so a message always encodes.
func sanitize(s string) string {
	out := []rune(s)
	for i, r := range out {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			out[i] = ' '
		}
	}
	return string(out)
}

// group runs goroutines that all stop when the first fails or ctx ends.
type group struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	once   sync.Once
	err    error
}

func (g *group) spawn(ctx context.Context, f func(context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(ctx); err != nil {
			g.fail(err)
		}
	}()
}

// fail records err (the first one wins) and stops the group.
func (g *group) fail(err error) {
	g.once.Do(func() { g.err = err })
	g.cancel()
}

// Provider runs the payment loop of a provider session until the tracker
// ends it (payment timeout, unpaid cap, bad exchange, hermes refusal), the
// consumer sends Destroy or an Error or goes silent past the reader's
// timeout, or ctx ends. usage returns the session's bytes so far (up plus
// down). It tells the consumer why the session ended (an Error with the
// code, or Destroy when ctx ends) and returns the cause: nil when ctx
// ended, an error wrapping ErrPeerEnded when the consumer left, otherwise
// the failure. The tracker must send through InvoiceSender(w). Afterwards
// call tracker.Settle so the last payment reaches the hermes.
//
// When the provider ends the session, an exchange message the consumer
// sent before it saw the end is still on its way: the provider keeps
// reading for up to Options.Drain after its Error or Destroy and hands
// every exchange message it reads to the tracker, so a payment the
// consumer counted reaches the hermes too.
func Provider(ctx context.Context, r *sessionproto.Reader, w *sessionproto.Writer, tracker *pingpong.InvoiceTracker, usage func() uint64, opt Options) error {
	opt.fill()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := &group{cancel: cancel}
	// Buffered so the reader keeps reading while the tracker writes an
	// invoice: on a transport without buffering (net.Pipe) a reader
	// blocked on the tracker and a tracker blocked on the peer's reader
	// would otherwise wait for each other.
	exchanges := make(chan *payments.ExchangeMessage, 16)
	var late []*payments.ExchangeMessage // read after the session ended; owned by the reader until readDone

	// The reader outlives the session by the drain: it stops on the
	// consumer's end (Destroy, Error, closed stream), a read error, or
	// when readCtx is canceled after the drain.
	readCtx, stopRead := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRead()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		// failed reports an error that ends the session while it runs;
		// after the session ended it only ends the drain.
		failed := func(err error) {
			if runCtx.Err() == nil {
				g.fail(err)
			}
		}
		for {
			m, err := r.ReadMessage(readCtx)
			if err != nil {
				if readCtx.Err() == nil {
					failed(readErr(err))
				}
				return
			}
			x, ok := m.(*sessionproto.ExchangeMessage)
			if !ok {
				if err := peerMessage(m); err != nil {
					failed(err)
					return
				}
				continue
			}
			em, err := x.Payment()
			if err != nil {
				failed(fmt.Errorf("%w: %v", pingpong.ErrBadExchange, err))
				return
			}
			if runCtx.Err() != nil {
				late = append(late, em)
				continue
			}
			select {
			case exchanges <- em:
			case <-runCtx.Done():
				late = append(late, em)
			}
		}
	}()
	g.spawn(runCtx, func(ctx context.Context) error { return keepalive(ctx, w, opt.Keepalive) })
	if opt.Stop != nil {
		g.spawn(runCtx, func(ctx context.Context) error {
			select {
			case err := <-opt.Stop:
				return err
			case <-ctx.Done():
				return nil
			}
		})
	}
	g.spawn(runCtx, func(ctx context.Context) error {
		err := tracker.Run(ctx, opt.Clock, usage, exchanges)
		if ctx.Err() != nil {
			return nil
		}
		return err
	})
	g.wg.Wait()
	err := finish(w, g.err, opt.Log, endReason(ctx, "provider ended the session"))
	// Drain: the consumer may have paid an invoice just before it read
	// our end; its exchange message arrives after it.
	drain := time.AfterFunc(opt.Drain, stopRead)
	<-readDone
	drain.Stop()

	// Exchange messages read but not yet handled (the consumer paid, then
	// the session ended) are still payments: hand them to the tracker,
	// the buffered ones first (they were read first).
	handleCtx, cancelHandle := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelHandle()
	var pending []*payments.ExchangeMessage
	for len(exchanges) > 0 {
		pending = append(pending, <-exchanges)
	}
	for _, em := range append(pending, late...) {
		if err := tracker.HandleExchange(handleCtx, opt.Clock.Now(), em); err != nil {
			opt.Log.Warn("payment received as the session ended was not accepted", "err", err)
		}
	}
	return err
}

// Consumer runs the payment loop of a consumer session until ctx ends (the
// user disconnects), an invoice is refused (overcharge, bad invoice,
// insufficient balance), or the provider sends Destroy or an Error or goes
// silent past the reader's timeout. usage returns the consumer's own byte
// count for the session (up plus down). It tells the provider why it ended
// (Destroy when ctx ends, an Error with the code on a refusal) and returns
// the cause: nil when ctx ended, an error wrapping ErrPeerEnded or the
// provider's *sessionproto.Error when the provider ended it, otherwise the
// refusal (ErrOvercharge, ...), on which the caller tears the tunnel down.
func Consumer(ctx context.Context, r *sessionproto.Reader, w *sessionproto.Writer, payer *pingpong.InvoicePayer, usage func() uint64, opt Options) error {
	opt.fill()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := &group{cancel: cancel}
	g.spawn(runCtx, func(ctx context.Context) error { return keepalive(ctx, w, opt.Keepalive) })
	g.spawn(runCtx, func(ctx context.Context) error {
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return readErr(err)
			}
			im, ok := m.(*sessionproto.Invoice)
			if !ok {
				if err := peerMessage(m); err != nil {
					return err
				}
				continue
			}
			inv, err := im.Payment()
			if err != nil {
				return fmt.Errorf("%w: %v", pingpong.ErrBadInvoice, err)
			}
			em, err := payer.HandleInvoice(ctx, opt.Clock.Now(), usage(), inv)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if em == nil {
				continue
			}
			xm, err := sessionproto.NewExchangeMessage(em)
			if err != nil {
				return err
			}
			if err := w.WriteMessage(context.WithoutCancel(ctx), xm); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("paystream: send exchange message: %w", err)
			}
		}
	})
	g.wg.Wait()
	return finish(w, g.err, opt.Log, endReason(ctx, "consumer disconnected"))
}

// endReason is the Destroy reason of a session whose ctx ended: the
// context's cause when one was given (context.WithCancelCause: "path
// lost: ..."), otherwise reason.
func endReason(ctx context.Context, reason string) string {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(c, context.DeadlineExceeded) {
		return c.Error()
	}
	return reason
}

// finish tells the peer how the session ended and returns the loop's
// result.
func finish(w *sessionproto.Writer, err error, log *slog.Logger, destroyReason string) error {
	if err == nil {
		// ctx ended: a clean end on our side.
		wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if werr := w.WriteMessage(wctx, &sessionproto.Destroy{Reason: destroyReason}); werr != nil {
			log.Debug("could not send destroy", "err", werr)
		}
		return nil
	}
	tellPeer(w, err, log)
	return err
}
