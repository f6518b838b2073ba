// Package retry is the module's one retry/backoff helper: exponential
// backoff with an optional jitter, a context-aware sleep, and Do, which
// runs an operation until it succeeds, fails for good, runs out of
// attempts or its context ends.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential backoff policy: the wait after the n-th
// failure is Initial·2^(n-1), at most Max. With Jitter each wait is drawn
// uniformly from [d/2, 3d/2) so that many clients do not retry in step.
type Backoff struct {
	// Initial is the wait after the first failure (must be > 0).
	Initial time.Duration
	// Max caps the wait (0: no cap). Max == Initial gives a fixed interval.
	Max time.Duration
	// Jitter spreads each wait over [d/2, 3d/2).
	Jitter bool
}

// Delay returns the wait after the n-th failure (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Initial
	for i := 1; i < n && (b.Max <= 0 || d < b.Max); i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	if b.Jitter && d > 0 {
		d = d/2 + time.Duration(rand.Int64N(int64(d)))
	}
	return d
}

// Sleep waits d, or until ctx ends, in which case it returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Do returns it at once instead of retrying.
// Do returns err itself, not the wrapper.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// ErrExhausted is wrapped by Do's error when every attempt failed.
var ErrExhausted = errors.New("retry: attempts exhausted")

// Do calls op until it returns nil or a Permanent error, attempts calls
// have failed (attempts <= 0: no limit), or ctx ends; between calls it
// waits b.Delay(failures). n is the 1-based number of the call. It returns
// nil, the permanent error, an error wrapping ErrExhausted and the last
// error, or an error wrapping ctx.Err() and the last error.
func Do(ctx context.Context, b Backoff, attempts int, op func(ctx context.Context, n int) error) error {
	var last error
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return ended(err, last)
		}
		err := op(ctx, n)
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		last = err
		if attempts > 0 && n >= attempts {
			return fmt.Errorf("%w after %d: %w", ErrExhausted, n, last)
		}
		if err := Sleep(ctx, b.Delay(n)); err != nil {
			return ended(err, last)
		}
	}
}

func ended(ctxErr, last error) error {
	if last == nil {
		return ctxErr
	}
	return fmt.Errorf("%w (last error: %w)", ctxErr, last)
}
