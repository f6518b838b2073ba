package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/openmyst/openmyst/tequilapi"
)

// NAT calls GET /nat: the node's reachability and NAT status.
func (c *Client) NAT(ctx context.Context) (tequilapi.NATStatusDTO, error) {
	return call[tequilapi.NATStatusDTO](ctx, c, http.MethodGet, "/nat", nil)
}

// CheckNAT calls POST /nat/check: a few random peers try to reach the
// node on fresh connections now.
func (c *Client) CheckNAT(ctx context.Context) (tequilapi.PeerCheckDTO, error) {
	return call[tequilapi.PeerCheckDTO](ctx, c, http.MethodPost, "/nat/check", nil)
}

// PrintStatus writes what `myst status` shows: the connection (GET
// /connection), then this node's reachability (GET /nat, when the daemon
// serves it). It returns the connection's error (e.g. not connected)
// after printing the reachability, so that scripts can still test the
// exit status.
func (c *Client) PrintStatus(ctx context.Context, w io.Writer) error {
	var st tequilapi.ConnectionStatus
	cerr := c.Do(ctx, http.MethodGet, "/connection", nil, &st)
	if cerr == nil {
		if err := st.Print(w); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if nat, err := c.NAT(ctx); err == nil {
		fmt.Fprintln(w, "this node:")
		if err := nat.Print(w); err != nil {
			return err
		}
	}
	return cerr
}
