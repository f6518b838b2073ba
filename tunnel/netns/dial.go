package netns

import (
	"context"
	"net"
	"time"
)

// Dialer returns a dial function, of the shape http.Transport.DialContext
// takes, whose sockets are made inside n (the calling test stays outside);
// each dial gives up after timeout.
func (n *NS) Dialer(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		derr := n.Do(func() error {
			c, err = (&net.Dialer{Timeout: timeout}).DialContext(ctx, network, addr)
			return err
		})
		if err == nil && derr != nil {
			err = derr
		}
		return c, err
	}
}

// Listen listens on network and addr inside n, failing the test if it
// cannot; the listener is closed when the test ends.
func (n *NS) Listen(network, addr string) net.Listener {
	n.tb.Helper()
	var ln net.Listener
	if err := n.Do(func() (err error) { ln, err = net.Listen(network, addr); return err }); err != nil {
		n.tb.Fatal(err)
	}
	n.tb.Cleanup(func() { _ = ln.Close() })
	return ln
}
