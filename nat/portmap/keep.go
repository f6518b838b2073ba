package portmap

import (
	"context"
	"time"

	"github.com/openmyst/openmyst/internal/retry"
)

// keepBackoff is the retry delay of a Keeper whose router stopped
// answering: 5 s doubling up to 5 min.
var keepBackoff = retry.Backoff{Initial: 5 * time.Second, Max: 5 * time.Minute}

// Keep holds a mapping of protocol/port on the router until ctx ends, then
// removes it. It renews the lease at half its lifetime and, while the
// router does not answer, retries with doubling delays (5 s up to 5 min).
// report, if not nil, is called from Keep's goroutine after every attempt:
// with the mapping and nil, or with a zero Mapping and the error. Keep
// blocks until ctx ends and the mapping is removed.
func (c *Client) Keep(ctx context.Context, protocol string, port uint16, report func(Mapping, error)) {
	if report == nil {
		report = func(Mapping, error) {}
	}
	var cur Mapping
	have := false
	failures := 0
	for {
		m, err := c.Map(ctx, protocol, port)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			wait = keepBackoff.Delay(failures)
			c.log.Warn("port mapping failed; retrying", "protocol", protocol, "port", port, "in", wait, "err", err)
			report(Mapping{}, err)
		} else {
			cur, have = m, true
			failures = 0
			report(m, nil)
			wait = max(m.Lifetime/2, time.Second)
		}
		if retry.Sleep(ctx, wait) != nil {
			break
		}
	}
	if !have {
		return
	}
	// Remove the mapping with a short deadline of its own: ctx is done.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := c.Unmap(dctx, cur); err != nil {
		c.log.Warn("port mapping not removed", "external", cur.External, "err", err)
		return
	}
	c.log.Info("port mapping removed", "method", cur.Method, "external", cur.External)
}
