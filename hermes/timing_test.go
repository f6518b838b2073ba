package hermes

import (
	"context"
	"sync/atomic"
	"time"

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
