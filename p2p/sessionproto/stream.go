package sessionproto

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultTimeout is the per-message read and write deadline used when a
// Reader or Writer is given a zero timeout.
const DefaultTimeout = 30 * time.Second

// DeadlineReader is a byte stream with read deadlines, such as a libp2p
// network.Stream or a net.Conn.
type DeadlineReader interface {
	io.Reader
	SetReadDeadline(t time.Time) error
}

// DeadlineWriter is a byte stream with write deadlines, such as a libp2p
// network.Stream or a net.Conn.
type DeadlineWriter interface {
	io.Writer
	SetWriteDeadline(t time.Time) error
}

// ErrReadTimeout is wrapped by ReadMessage's error when no whole message
// arrived within the Reader's timeout: the peer went silent. A session
// ended by it tells the peer CodeReadTimeout.
var ErrReadTimeout = errors.New("sessionproto: nothing read within the read timeout")

// past is a deadline that has already expired, used to abort a blocked
// read or write when its context is cancelled.
var past = time.Unix(1, 0)

// Reader reads framed messages. Each ReadMessage must complete (the whole
// frame arrive) within the Reader's timeout or before ctx ends. A Reader is
// for one goroutine at a time.
type Reader struct {
	r       DeadlineReader
	timeout time.Duration
	hdr     [4]byte
}

// NewReader returns a Reader over r with a per-message timeout (zero means
// DefaultTimeout).
func NewReader(r DeadlineReader, timeout time.Duration) *Reader {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Reader{r: r, timeout: timeout}
}

// ReadMessage reads and strictly decodes the next message. It returns
// io.EOF when the stream ends cleanly between frames, an error wrapping
// ErrTruncated when it ends inside one, an error wrapping ErrMalformed for
// a bad frame, and a deadline or context error when the message does not
// arrive in time. After any error other than a decode error of a complete
// frame, the stream is out of sync and must be closed.
func (r *Reader) ReadMessage(ctx context.Context) (Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(r.timeout)
	ctxFirst := false // ctx's deadline comes before the Reader's timeout
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxFirst = d, true
	}
	// A stream refuses a deadline only once it is closed, and then the
	// read below fails at once (io.EOF for a peer's clean close), so the
	// error is not fatal here.
	_ = r.r.SetReadDeadline(deadline)
	stop := abortOnDone(ctx, func() { _ = r.r.SetReadDeadline(past) })
	payload, err := readFrame(r.r, r.hdr[:])
	if stop() {
		return nil, ctx.Err()
	}
	if err != nil {
		var te interface{ Timeout() bool }
		if !ctxFirst && errors.As(err, &te) && te.Timeout() {
			return nil, fmt.Errorf("%w (%v): %w", ErrReadTimeout, r.timeout, err)
		}
		return nil, err
	}
	return Decode(payload)
}

// readFrame reads one length-prefixed frame. hdr is a 4-byte scratch
// buffer.
func readFrame(r io.Reader, hdr []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, malformed(ErrTruncated, "stream ended inside the length prefix")
		}
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("sessionproto: read frame: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n == 0 || n > MaxFrameSize {
		return nil, malformed(ErrFrameTooLarge, "frame of %d bytes, want 1..%d", n, MaxFrameSize)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, malformed(ErrTruncated, "stream ended inside a %d-byte frame", n)
		}
		return nil, fmt.Errorf("sessionproto: read frame: %w", err)
	}
	return payload, nil
}

// Writer writes framed messages. It is safe for concurrent use: each
// message is written whole, so an invoice loop and a keepalive loop may
// share one Writer.
type Writer struct {
	mu        sync.Mutex
	w         DeadlineWriter // nil while detached
	timeout   time.Duration
	lastWrite time.Time
	broken    error                       // set once a frame was cut off mid-write
	onFail    func(DeadlineWriter, error) // set by DetachOnFailure
}

// ErrDetached is returned by a Writer's writes while it has no stream: a
// resumable session whose stream was lost, until the peer resumes it on a
// new one (Attach).
var ErrDetached = errors.New("sessionproto: session stream detached")

// ErrBroken is returned by WriteMessage after an earlier write stopped
// part-way through a frame: the peer can no longer find frame boundaries,
// so nothing more may be written and the stream must be closed.
var ErrBroken = errors.New("sessionproto: stream broken by a partial write")

// NewWriter returns a Writer over w with a per-message timeout (zero means
// DefaultTimeout).
func NewWriter(w DeadlineWriter, timeout time.Duration) *Writer {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Writer{w: w, timeout: timeout}
}

// WriteMessage validates, encodes and writes m as one frame, within the
// Writer's timeout and before ctx ends. If a write stops part-way through
// the frame (deadline, cancellation, stream error), every later call fails
// with ErrBroken and the stream must be closed. A caller that wants a
// clean shutdown lets in-flight writes finish (context.WithoutCancel)
// rather than cutting them off.
func (w *Writer) WriteMessage(ctx context.Context, m Message) error {
	payload, err := Encode(m)
	if err != nil {
		return err
	}
	frame := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(frame, uint32(len(payload)))
	copy(frame[4:], payload)

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return fmt.Errorf("%w: %s not sent", ErrDetached, m.Type())
	}
	if w.broken != nil {
		return w.broken
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(w.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := w.w.SetWriteDeadline(deadline); err != nil {
		// A stream that refuses a deadline is closed or reset: as lost as
		// one whose write fails.
		return w.failed(m, fmt.Errorf("set write deadline: %w", err))
	}
	stop := abortOnDone(ctx, func() { _ = w.w.SetWriteDeadline(past) })
	n, err := w.w.Write(frame)
	if n > 0 && n < len(frame) {
		w.broken = fmt.Errorf("%w (%d of %d bytes of a %s frame sent)", ErrBroken, n, len(frame), m.Type())
	}
	aborted := stop()
	if err != nil && w.onFail != nil {
		return w.failed(m, err)
	}
	if aborted {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("sessionproto: write %s: %w", m.Type(), err)
	}
	w.lastWrite = time.Now()
	return nil
}

// failed handles a write of m that failed on w's stream with err (w.mu
// held): a resumable session (DetachOnFailure) detaches the stream and
// reports it lost, as the stream is lost, not the session.
func (w *Writer) failed(m Message, err error) error {
	if w.onFail == nil {
		return fmt.Errorf("sessionproto: write %s: %w", m.Type(), err)
	}
	lost := w.w
	w.w, w.broken = nil, nil
	w.onFail(lost, err)
	return fmt.Errorf("sessionproto: write %s: %w: %w", m.Type(), ErrDetached, err)
}

// DetachOnFailure makes w survive the loss of its stream (a resumable
// session): from now on a write that fails on the stream detaches w from
// it, calls lost with that stream and the error (under w's lock: lost
// must not block or write), and returns an error wrapping ErrDetached;
// later writes fail with ErrDetached until Attach.
func (w *Writer) DetachOnFailure(lost func(s DeadlineWriter, err error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.onFail = lost
}

// Detach drops w's stream if it is s (nil: whatever stream w has) and
// reports whether it did; later writes fail with ErrDetached until Attach.
// A write in progress finishes first.
func (w *Writer) Detach(s DeadlineWriter) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil || (s != nil && w.w != s) {
		return false
	}
	w.w, w.broken = nil, nil
	return true
}

// Attach moves w onto a new stream s (a resumed session), replacing any
// stream it has; a partial write on the old stream no longer counts, as
// s starts at a frame boundary.
func (w *Writer) Attach(s DeadlineWriter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.w, w.broken = s, nil
}

// LastWrite returns when the last message was written whole (zero before
// the first), so a keepalive loop can stay quiet while other messages flow.
func (w *Writer) LastWrite() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastWrite
}

// abortOnDone runs abort if ctx ends before the returned stop is called.
// stop reports whether abort ran (or was running), and waits for it to
// finish so it cannot affect a later operation's deadline.
func abortOnDone(ctx context.Context, abort func()) (stop func() bool) {
	done := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		defer close(done)
		abort()
	})
	return func() bool {
		if cancel() {
			return false
		}
		<-done
		return true
	}
}
