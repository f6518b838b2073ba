package portmap

import (
	"context"
	"time"
)

// Retry delays of a Keeper whose router stopped answering.
const (
	minRetry = 5 * time.Second
	maxRetry = 5 * time.Minute
)

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
	retry := minRetry
	for {
		m, err := c.Map(ctx, protocol, port)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			c.log.Warn("port mapping failed; retrying", "protocol", protocol, "port", port, "in", retry, "err", err)
			report(Mapping{}, err)
			wait = retry
			retry = min(2*retry, maxRetry)
		} else {
			cur, have = m, true
			retry = minRetry
			report(m, nil)
			wait = max(m.Lifetime/2, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
			continue
		}
		break
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
