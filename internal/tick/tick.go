// Package tick runs a function periodically until a context ends: the
// one ticker loop of the background checks (auto-settlement, the exit
// policy's address watch, the consumer's balance refresh).
package tick

import (
	"context"
	"time"
)

// Every calls fn(ctx) every interval, the first time one interval from
// now, until ctx ends; it returns when ctx ends and never calls fn after. Calls never overlap: a
// call longer than interval delays the next tick (time.Ticker drops the
// ticks it missed). interval must be positive.
func Every(ctx context.Context, interval time.Duration, fn func(ctx context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil { // both were ready: the end wins
				return
			}
			fn(ctx)
		}
	}
}
