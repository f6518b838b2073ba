// Package httpserve runs an http.Server for as long as a context lives:
// the one graceful-shutdown loop of the node's HTTP services (Tequilapi,
// the hermes, the transactor).
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve serves srv on ln — over TLS when srv.TLSConfig is set (its
// certificates come from the config) — until ctx is done, then shuts it
// down, waiting up to grace for requests in flight before closing them.
// It returns nil after a shutdown caused by ctx, and the server's error
// (wrapped with the address) when it stopped on its own.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	if shutErr != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown %s: %w", ln.Addr(), shutErr)
	}
	return nil
}
