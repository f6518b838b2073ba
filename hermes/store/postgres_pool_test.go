package store

import (
	"testing"
)

// TestPostgresOpensItsConnectionsUpFront: OpenPostgres opens every pool
// connection before it returns, so the first burst of requests does not
// wait for the server to start a backend per connection.
func TestPostgresOpensItsConnectionsUpFront(t *testing.T) {
	s := freshPostgres(t)
	if n := s.w.Stats().OpenConnections; n != pgConns {
		t.Errorf("%d connections open in the pool after OpenPostgres, want %d", n, pgConns)
	}
	if n := s.commit.Stats().OpenConnections; n != pgCommitters {
		t.Errorf("%d connections open in the commit pool after OpenPostgres, want %d", n, pgCommitters)
	}
}
