// Package devchaintest starts the in-process dev chain for tests: the
// chain closed when the test ends, and a chain client on it that sends as
// the dev transactor account. Tests only; no production code imports it.
package devchaintest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/ethereum/go-ethereum/ethclient"
	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
)

// Start starts a dev chain with cfg and closes it when the test ends,
// failing tb if it does not start or does not close cleanly.
func Start(ctx context.Context, tb testing.TB, cfg devchain.Config) *devchain.Chain {
	tb.Helper()
	dc, err := devchain.Start(ctx, cfg)
	if err != nil {
		tb.Fatalf("dev chain: %v", err)
	}
	tb.Cleanup(func() {
		if err := dc.Close(); err != nil {
			tb.Errorf("close dev chain: %v", err)
		}
	})
	return dc
}

// Client dials dc (the connection is closed when the test ends) and
// returns a client of its deployment that sends as the dev transactor
// account, logging to log.
func Client(ctx context.Context, tb testing.TB, dc *devchain.Chain, log *slog.Logger) *chain.Client {
	tb.Helper()
	return ClientAt(ctx, tb, dc.URL(), dc.Deployment(), log)
}

// ClientAt is Client for a dev chain that runs elsewhere (`myst chain
// dev`): it dials the JSON-RPC at rpc and uses the deployment dep.
func ClientAt(ctx context.Context, tb testing.TB, rpc string, dep chain.Deployment, log *slog.Logger) *chain.Client {
	tb.Helper()
	eth, err := ethclient.DialContext(ctx, rpc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(eth.Close)
	tx, err := chain.NewTransactor(ctx, eth, devchain.DevKey(devchain.TransactorAccount), log)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := chain.NewClient(ctx, eth, dep, tx, log)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// VerifyTestMain runs m and then fails the package if any goroutine is
// left but those in LeftWorkers: the TestMain of a package whose tests
// start dev chains.
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(m, LeftWorkers()...)
}

// LeftWorkers are goleak options that ignore the goroutines a dev chain
// leaves behind that no chain instance owns: go-ethereum's package-level
// workers, and its on-demand sealing goroutine finishing a block it had
// started before the node closed (it ends on its own). For the TestMain
// of a package whose tests start dev chains.
func LeftWorkers() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/ethereum/go-ethereum/core.(*txSenderCacher).cache"),
		goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"),
		goleak.IgnoreAnyFunction("github.com/ethereum/go-ethereum/eth/catalyst.(*simulatedBeaconAPI).loop.func1"),
		goleak.IgnoreAnyFunction("github.com/ethereum/go-ethereum/miner.(*Miner).buildPayload.func1"),
	}
}
