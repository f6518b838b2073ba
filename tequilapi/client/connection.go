package client

import (
	"context"
	"net/http"

	"github.com/openmyst/openmyst/tequilapi"
)

var _ tequilapi.ConnectionService = (*Client)(nil)

// Connect asks the daemon for a connection (PUT /connection).
func (c *Client) Connect(ctx context.Context, req tequilapi.ConnectRequest) (tequilapi.ConnectionStatus, error) {
	return call[tequilapi.ConnectionStatus](ctx, c, http.MethodPut, "/connection", req)
}

// Status is the daemon's connection (GET /connection).
func (c *Client) Status(ctx context.Context) (tequilapi.ConnectionStatus, error) {
	return call[tequilapi.ConnectionStatus](ctx, c, http.MethodGet, "/connection", nil)
}

// Disconnect ends the daemon's connection (DELETE /connection).
func (c *Client) Disconnect(ctx context.Context) error {
	return c.Do(ctx, http.MethodDelete, "/connection", nil, nil)
}
