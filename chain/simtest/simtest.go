// Package simtest runs go-ethereum's simulated backend for tests the way
// the dev chain runs in on-demand mode: a block is mined after every
// accepted transaction, so a client's receipt waits end. Tests only; no
// production code imports it.
package simtest

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
)

// AutoCommit is a simulated chain's client that mines a block after every
// accepted transaction.
type AutoCommit struct {
	simulated.Client
	// Sim is the backend, for tests that mine, fork or move the clock.
	Sim *simulated.Backend
	mu  sync.Mutex
}

// New starts a simulated chain with the genesis config cfg on which each
// of funded holds 1,000 ETH, closed when the test ends.
func New(tb testing.TB, cfg *params.ChainConfig, funded ...*ecdsa.PrivateKey) *AutoCommit {
	tb.Helper()
	eth := new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))
	alloc := types.GenesisAlloc{}
	for _, k := range funded {
		alloc[crypto.PubkeyToAddress(k.PublicKey)] = types.Account{Balance: eth}
	}
	sim := simulated.NewBackend(alloc, func(_ *node.Config, ec *ethconfig.Config) { ec.Genesis.Config = cfg })
	tb.Cleanup(func() { _ = sim.Close() })
	return &AutoCommit{Client: sim.Client(), Sim: sim}
}

// SendTransaction sends tx and mines it at once.
func (b *AutoCommit) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.Client.SendTransaction(ctx, tx); err != nil {
		return err
	}
	b.Sim.Commit()
	return nil
}

// Commit mines one block with whatever the pool holds, between sends.
func (b *AutoCommit) Commit() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Sim.Commit()
}

// AdjustTime moves the chain clock forward by d (mines one empty block,
// after committing whatever the pool still lists as pending).
//
// The simulated backend's AdjustTime refuses when the txpool reports pending
// transactions, and it checks without syncing the pool first: after
// SendTransaction's Commit has mined a transaction, the pool drops it from
// its pending set only when its background reset for the new head runs, so
// a transaction that is already mined (its receipt was read) can still be
// listed as pending for a moment. Commit syncs the pool (TxPool.Sync) before
// sealing, so after it the pending set is empty; b.mu keeps other
// transactions out until AdjustTime has run.
func (b *AutoCommit) AdjustTime(tb testing.TB, d time.Duration) {
	tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Sim.Commit()
	if err := b.Sim.AdjustTime(d); err != nil {
		tb.Fatalf("adjust time: %v", err)
	}
}
