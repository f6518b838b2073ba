package client

import (
	"context"
	"net/http"

	"github.com/openmyst/openmyst/tequilapi"
)

// NAT calls GET /nat: the node's reachability and NAT status.
func (c *Client) NAT(ctx context.Context) (tequilapi.NATStatusDTO, error) {
	var out tequilapi.NATStatusDTO
	err := c.Do(ctx, http.MethodGet, "/nat", nil, &out)
	return out, err
}

// CheckNAT calls POST /nat/check: a few random peers try to reach the
// node on fresh connections now.
func (c *Client) CheckNAT(ctx context.Context) (tequilapi.PeerCheckDTO, error) {
	var out tequilapi.PeerCheckDTO
	err := c.Do(ctx, http.MethodPost, "/nat/check", nil, &out)
	return out, err
}
