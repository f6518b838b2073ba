package hermes

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes/store"
)

// timingStore measures time spent in Commit (benchmark diagnostics).
type timingStore struct {
	store.Store
	commits, accepts, nanos atomic.Int64
}

func (t *timingStore) Commit(ctx context.Context, a []store.Accept) error {
	t0 := time.Now()
	err := t.Store.Commit(ctx, a)
	t.nanos.Add(int64(time.Since(t0)))
	t.commits.Add(1)
	t.accepts.Add(int64(len(a)))
	return err
}

func (t *timingStore) Committers() int { return store.Committers(t.Store) }

// LoadConsumers and LoadProviders pass the inner store's batch loads
// through (the embedded interface hides them).
func (t *timingStore) LoadConsumers(ctx context.Context, ids []common.Address) ([]store.ConsumerState, error) {
	return t.Store.(store.BatchLoader).LoadConsumers(ctx, ids)
}

func (t *timingStore) LoadProviders(ctx context.Context, ids []common.Address) ([]store.Provider, error) {
	return t.Store.(store.BatchLoader).LoadProviders(ctx, ids)
}
