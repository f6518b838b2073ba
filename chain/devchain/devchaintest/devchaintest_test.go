package devchaintest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/internal/testenv"
)

// TestClientSendsAsTheDevTransactor: the client reads the dev chain's
// deployment and sends as the dev transactor account.
func TestClientSendsAsTheDevTransactor(t *testing.T) {
	ctx := testenv.Long(t, "starts a dev chain", time.Minute)
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
