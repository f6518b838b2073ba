package paystream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/openmyst/openmyst/internal/defaults"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	// Aliased: this package's tests name a type session.
	osession "github.com/openmyst/openmyst/session"
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

// ErrStreamLost is wrapped by the error that ends a resumable session
// whose stream was lost and not resumed (see Options.Resume and
// Options.Reconnect).
var ErrStreamLost = errors.New("paystream: session stream lost")

// DefaultResumeGrace is the default Options.ResumeGrace.
const DefaultResumeGrace = 30 * time.Second

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

	// Resume, when set, makes a provider session survive the loss of its
	// stream (a circuit relay connection that hit its limit, any dropped
	// connection; the tunnel is not touched): when a read or write fails
	// or the consumer goes silent, the stream is closed and the session
	// waits up to ResumeGrace for the consumer to resume it, which the
	// session manager delivers here after checking the consumer's signed
	// sessionproto.Resume. The tracker keeps running meanwhile (invoices
	// it cannot send count as sent, pingpong.ErrUndelivered, so the
	// payment grace bounds the exposure as before); on a resume the
	// session moves to the new stream, the consumer's last payment is
	// handed to the tracker and its latest unpaid invoice re-sent
	// (pingpong.InvoiceTracker.Redeliver). Needs Stream.
	Resume <-chan Attachment
	// Stream is the session's first stream (what the Reader reads and the
	// Writer writes), closed when it is lost. Required with Resume.
	Stream Stream
	// ResumeGrace is how long a provider session whose stream was lost
	// waits for a resume before it ends (default DefaultResumeGrace).
	ResumeGrace time.Duration
	// Reconnect, when set, makes a consumer session survive the loss of
	// its stream: it is called with the loss, must open a new stream,
	// resume the session on it (sessionproto.Resume, answered by
	// ResumeAck) and return its Reader and Writer; the payment loop goes
	// on there. An error ends the session.
	Reconnect func(ctx context.Context, lost error) (*sessionproto.Reader, *sessionproto.Writer, error)
}

// Stream is a session stream with deadlines that can be closed.
type Stream interface {
	sessionproto.DeadlineReader
	sessionproto.DeadlineWriter
	Close() error
}

// Attachment is a new stream for a running provider session: the consumer
// resumed the session on it (Options.Resume).
type Attachment struct {
	// Reader reads the new stream; Stream is the stream itself.
	Reader *sessionproto.Reader
	Stream Stream
	// Paid is the agreement total the consumer says it has paid (zero
	// before its first payment).
	Paid *big.Int
	// Exchange is the consumer's last exchange message (nil before its
	// first payment), handed to the tracker in case the old stream lost
	// it.
	Exchange *payments.ExchangeMessage
	// Done, when set, is closed once the session no longer uses the
	// stream (lost, replaced, or the session ended); the stream is closed
	// by then.
	Done chan struct{}
	// Taken, when set, is called when the session takes the stream,
	// before it closes the old one or writes on the new: what it records
	// (a resume count) is seen by whoever sees the session on the new
	// stream. Not called for a stream the session ended without taking.
	Taken func()
}

func (o *Options) fill() {
	o.Keepalive = defaults.Positive(o.Keepalive, DefaultKeepalive)
	o.Drain = defaults.Positive(o.Drain, DefaultDrain)
	o.Clock = cmp.Or[pingpong.Clock](o.Clock, pingpong.SystemClock{})
	o.Log = cmp.Or(o.Log, slog.Default())
	o.ResumeGrace = defaults.Positive(o.ResumeGrace, DefaultResumeGrace)
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
		err = w.WriteMessage(context.WithoutCancel(ctx), m)
		if errors.Is(err, sessionproto.ErrDetached) {
			// A resumable session's stream is lost: the invoice waits for
			// the consumer's resume.
			return fmt.Errorf("%w: %w", pingpong.ErrUndelivered, err)
		}
		return err
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
	case errors.Is(err, sessionproto.ErrReadTimeout):
		return sessionproto.CodeReadTimeout
	}
	return sessionproto.CodeInternal
}

// The end reasons that are not session protocol codes (see EndReason).
const (
	EndNormal     = "normal"
	EndPathLost   = "path_lost"
	EndStreamLost = "stream_lost"
	EndOther      = "other"
)

// EndReasons returns every value EndReason can return: a fixed set, so
// that a metric labelled with it has bounded cardinality.
func EndReasons() []string {
	out := []string{EndNormal, EndPathLost, EndStreamLost}
	for _, c := range sessionproto.Codes() {
		out = append(out, string(c))
	}
	return append(out, EndOther)
}

// EndReason names how a session that ended with err (a payment loop's
// result, or a session layer's error wrapping it) ended, for counting:
// EndNormal for a clean end (nil: ctx ended; the peer's Destroy or
// closed stream), EndPathLost (session.ErrPathLost), EndStreamLost (a
// resumable session's stream lost and not resumed), the code of the
// Error the peer sent, or else the code CodeFor sent to the peer.
// EndOther stands for a code outside the protocol's list: the result
// never carries text from the peer.
func EndReason(err error) string {
	var perr *sessionproto.Error
	switch {
	case err == nil, errors.Is(err, ErrPeerEnded):
		return EndNormal
	case errors.Is(err, osession.ErrPathLost):
		return EndPathLost
	case errors.Is(err, ErrStreamLost):
		return EndStreamLost
	case errors.As(err, &perr):
		if !perr.Code.Valid() {
			return EndOther
		}
		return string(perr.Code)
	}
	return string(CodeFor(err))
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
				if errors.Is(err, sessionproto.ErrDetached) {
					continue // a resumable session's loss is handled by its loop
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
//
// With Options.Resume the session survives the loss of its stream (see
// Options.Resume): the tracker keeps running, invoices it cannot send
// wait for the consumer's resume, and the session ends with an error
// wrapping ErrStreamLost if none comes within Options.ResumeGrace.
func Provider(ctx context.Context, r *sessionproto.Reader, w *sessionproto.Writer, tracker *pingpong.InvoiceTracker, usage func() uint64, opt Options) error {
	opt.fill()
	resumable := opt.Resume != nil
	if resumable && opt.Stream == nil {
		return errors.New("paystream: a resumable provider session needs Options.Stream")
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := &group{cancel: cancel}
	// Buffered so the reader keeps reading while the tracker writes an
	// invoice: on a transport without buffering (net.Pipe) a reader
	// blocked on the tracker and a tracker blocked on the peer's reader
	// would otherwise wait for each other.
	exchanges := make(chan *payments.ExchangeMessage, 16)
	var lateMu sync.Mutex
	var late []*payments.ExchangeMessage // read after the session ended

	// lost carries streams found dead, with why: by their reader, or by
	// a write (the Writer's DetachOnFailure, called under its lock: never
	// block).
	type lostStream struct {
		s   sessionproto.DeadlineWriter
		err error
	}
	lost := make(chan lostStream, 16)
	report := func(s sessionproto.DeadlineWriter, err error) {
		select {
		case lost <- lostStream{s, err}:
		default: // the loop is busy with enough reports already
		}
	}
	if resumable {
		w.DetachOnFailure(func(s sessionproto.DeadlineWriter, err error) {
			opt.Log.Info("session stream lost on write", "err", err)
			report(s, err)
		})
	}
	var streams sync.WaitGroup // reader goroutines and retired streams
	// startReader reads one stream until it fails, the consumer ends
	// the session, or a.stopRead is called. A reader outlives the session
	// by the drain.
	startReader := func(a *attachment) {
		streams.Add(1)
		go func() {
			defer streams.Done()
			defer close(a.readDone)
			// failed reports an error that ends the session while it
			// runs; after the session ended it only ends the drain.
			failed := func(err error) {
				if runCtx.Err() == nil {
					g.fail(err)
				}
			}
			for {
				m, err := a.r.ReadMessage(a.readCtx)
				if err != nil {
					if a.readCtx.Err() != nil {
						return
					}
					if resumable && runCtx.Err() == nil && streamLost(err, true) {
						opt.Log.Info("session stream lost on read", "err", err)
						report(a.s, err)
						return
					}
					failed(readErr(err))
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
				if runCtx.Err() == nil {
					select {
					case exchanges <- em:
						continue
					case <-runCtx.Done():
					}
				}
				lateMu.Lock()
				late = append(late, em)
				lateMu.Unlock()
			}
		}()
	}
	// retire stops using a's stream: it is aborted (a write blocked on
	// it fails at once, the consumer notices), its reader stops and its
	// owner is told.
	retire := func(a *attachment) {
		if a.closer != nil {
			if runCtx.Err() == nil {
				abort(a.closer)
			} else {
				_ = a.closer.Close() // the session's last stream: its end is on it
			}
		}
		a.stopRead()
		streams.Add(1)
		go func() {
			defer streams.Done()
			<-a.readDone
			if a.release != nil {
				close(a.release)
			}
		}()
	}
	first := newAttachment(ctx, r, opt.Stream, nil)
	var curMu sync.Mutex
	cur := first // the stream in use; nil while lost (under curMu)
	startReader(first)

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
	if resumable {
		g.spawn(runCtx, func(ctx context.Context) error {
			var expired <-chan time.Time // set while the stream is lost
			var timer *time.Timer
			var why error // how the stream was lost
			stopTimer := func() {
				if timer != nil {
					timer.Stop()
					timer, expired = nil, nil
				}
			}
			defer stopTimer()
			for {
				select {
				case <-ctx.Done():
					return nil
				case l := <-lost:
					curMu.Lock()
					a := cur
					if a == nil || a.s != l.s {
						curMu.Unlock()
						continue // an older stream, already replaced
					}
					cur = nil
					curMu.Unlock()
					retire(a)
					w.Detach(l.s)
					why = l.err
					opt.Log.Warn("session stream lost; waiting for the consumer to resume", "grace", opt.ResumeGrace)
					stopTimer()
					timer = time.NewTimer(opt.ResumeGrace)
					expired = timer.C
				case in := <-opt.Resume:
					if in.Taken != nil {
						in.Taken()
					}
					// The consumer's last payment first: before anything
					// the new stream brings, so the tracker sees the
					// payments in the order the consumer made them.
					if in.Exchange != nil {
						select {
						case exchanges <- in.Exchange:
						case <-ctx.Done():
							lateMu.Lock()
							late = append(late, in.Exchange)
							lateMu.Unlock()
						}
					}
					a := newAttachment(runCtx, in.Reader, in.Stream, in.Done)
					curMu.Lock()
					old := cur
					cur = a
					curMu.Unlock()
					if old != nil {
						retire(old) // first: a write blocked on it must not hold w
					}
					stopTimer()
					w.Attach(in.Stream)
					startReader(a)
					tracker.Redeliver(in.Paid)
					opt.Log.Info("session resumed on a new stream", "paid", in.Paid)
				case <-expired:
					// With the cause: a consumer gone silent (its
					// stream's read timeout) is told as such.
					return fmt.Errorf("%w: the consumer did not resume within %v after %w", ErrStreamLost, opt.ResumeGrace, why)
				}
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
	curMu.Lock()
	last := cur
	curMu.Unlock()
	if last != nil {
		drain := time.AfterFunc(opt.Drain, last.stopRead)
		<-last.readDone
		drain.Stop()
		if last != first {
			retire(last)
		}
	}
	// An attachment that came in as the session ended is not used.
	for {
		select {
		case in := <-opt.Resume:
			if in.Stream != nil {
				abort(in.Stream)
			}
			if in.Done != nil {
				close(in.Done)
			}
			continue
		default:
		}
		break
	}
	first.stopRead()
	streams.Wait()

	// Exchange messages read but not yet handled (the consumer paid, then
	// the session ended) are still payments: hand them to the tracker,
	// the buffered ones first (they were read first).
	handleCtx, cancelHandle := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelHandle()
	var pending []*payments.ExchangeMessage
	for len(exchanges) > 0 {
		pending = append(pending, <-exchanges)
	}
	lateMu.Lock()
	pending = append(pending, late...)
	lateMu.Unlock()
	for _, em := range pending {
		if err := tracker.HandleExchange(handleCtx, opt.Clock.Now(), em); err != nil {
			opt.Log.Warn("payment received as the session ended was not accepted", "err", err)
		}
	}
	return err
}

// abort ends a stream at once: Reset when it has one (a libp2p stream),
// else Close.
func abort(c io.Closer) {
	if r, ok := c.(interface{ Reset() error }); ok {
		_ = r.Reset()
		return
	}
	_ = c.Close()
}

// attachment is one stream of a provider session.
type attachment struct {
	r        *sessionproto.Reader
	s        sessionproto.DeadlineWriter // what the session's Writer writes to (nil: unknown)
	closer   io.Closer                   // closes the stream when it is retired (nil: the caller does)
	release  chan struct{}               // Attachment.Done
	readCtx  context.Context
	stopRead context.CancelFunc
	readDone chan struct{}
}

// newAttachment prepares a stream; its reader outlives ctx's
// cancellation (for the drain) until stopRead.
func newAttachment(ctx context.Context, r *sessionproto.Reader, s Stream, release chan struct{}) *attachment {
	a := &attachment{r: r, release: release, readDone: make(chan struct{})}
	if s != nil {
		a.s, a.closer = s, s
	}
	a.readCtx, a.stopRead = context.WithCancel(context.WithoutCancel(ctx))
	return a
}

// streamLost reports whether a read error means the stream is gone (the
// connection under it dropped, the peer went silent past the deadline)
// rather than that the peer broke the protocol. A clean end of the
// stream (io.EOF: the peer closed it without Destroy) counts as lost
// when eofLost.
func streamLost(err error, eofLost bool) bool {
	switch {
	case errors.Is(err, sessionproto.ErrMalformed) && !errors.Is(err, sessionproto.ErrTruncated):
		return false
	case errors.Is(err, io.EOF):
		return eofLost
	}
	return true
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
//
// With Options.Reconnect, a stream that is lost (a read or write fails,
// the provider goes silent) does not end the session: Reconnect resumes
// it on a new stream and the loop goes on there. If it cannot, the
// session ends with an error wrapping ErrStreamLost.
func Consumer(ctx context.Context, r *sessionproto.Reader, w *sessionproto.Writer, payer *pingpong.InvoicePayer, usage func() uint64, opt Options) error {
	opt.fill()
	for {
		err := consumerRun(ctx, r, w, payer, usage, opt)
		if err == nil || opt.Reconnect == nil || !errors.Is(err, ErrStreamLost) || ctx.Err() != nil {
			return finish(w, err, opt.Log, endReason(ctx, "consumer disconnected"))
		}
		opt.Log.Warn("session stream lost; resuming the session on a new stream", "err", err)
		nr, nw, rerr := opt.Reconnect(ctx, err)
		if rerr != nil {
			if ctx.Err() != nil {
				return finish(w, nil, opt.Log, endReason(ctx, "consumer disconnected"))
			}
			return finish(w, fmt.Errorf("%w; not resumed: %w", err, rerr), opt.Log, "")
		}
		r, w = nr, nw
	}
}

// consumerRun is Consumer on one stream.
func consumerRun(ctx context.Context, r *sessionproto.Reader, w *sessionproto.Writer, payer *pingpong.InvoicePayer, usage func() uint64, opt Options) error {
	resumable := opt.Reconnect != nil
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := &group{cancel: cancel}
	g.spawn(runCtx, func(ctx context.Context) error {
		err := keepalive(ctx, w, opt.Keepalive)
		if err != nil && resumable {
			return fmt.Errorf("%w: %w", ErrStreamLost, err)
		}
		return err
	})
	g.spawn(runCtx, func(ctx context.Context) error {
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if resumable && streamLost(err, true) {
					return fmt.Errorf("%w: read: %w", ErrStreamLost, err)
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
				if resumable {
					// Counted and signed: the resume carries it.
					return fmt.Errorf("%w: send exchange message: %w", ErrStreamLost, err)
				}
				return fmt.Errorf("paystream: send exchange message: %w", err)
			}
		}
	})
	g.wg.Wait()
	return g.err
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
