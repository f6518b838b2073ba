package devchaintest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/openmyst/openmyst/chain/devchain"
)

// TestClientSendsAsTheDevTransactor: the client reads the dev chain's
// deployment and sends as the dev transactor account.
func TestClientSendsAsTheDevTransactor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev chain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	dc := Start(ctx, t, devchain.Config{Log: log})
	c := Client(ctx, t, dc, log)
	if got, want := c.Transactor().Address(), devchain.DevAddress(devchain.TransactorAccount); got != want {
		t.Fatalf("sends as %s, want the dev transactor %s", got, want)
	}
	if got, want := c.Deployment().Hermes, dc.Deployment().Hermes; got != want {
		t.Fatalf("hermes %s, want the dev chain's %s", got, want)
	}
}
