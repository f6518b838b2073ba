package hermes

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// TestCommittersKeepProviderOrder: with several group committers, many
// consumers paying the same few providers at once all get accepted the
// first time (no commit conflicts: each provider's accepts go through one
// committer, in order) and every provider earns exactly its agreement
// totals.
func TestCommittersKeepProviderOrder(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Committers = 4; c.MaxBatch = 8 })
	const consumers, msgs, providers = 16, 12, 3
	provs := make([]common.Address, providers)
	for i := range provs {
		provs[i] = testSigner(fmt.Sprint("committers p", i)).Address()
	}
	want := make(map[common.Address]int64)
	var wg sync.WaitGroup
	errs := make(chan error, consumers)
	for c := 0; c < consumers; c++ {
		cs := testSigner(fmt.Sprint("committers c", c))
		e.chain.register(cs.Address(), 1_000_000)
		var amount int64
		totals := map[int]int64{}
		var seq []func() error
		for i := 0; i < msgs; i++ {
			p := (c + i) % providers
			totals[p] += 10
			amount += 10
			want[provs[p]] += 10
			m := msg(t, cs, provs[p], int64(100+p), totals[p], amount, secret(fmt.Sprint("committers", c, i)))
			seq = append(seq, func() error {
				_, err := e.svc.Exchange(context.Background(), m)
				return err
			})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, send := range seq {
				if err := send(); err != nil {
					errs <- fmt.Errorf("consumer %d message %d: %w", c, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for p, w := range want {
		ps, err := e.st.Provider(context.Background(), p)
		if err != nil || ps.Earned.Int64() != w || ps.Version != int64(w/10) {
			t.Errorf("provider %s earned %v in %d accepts, want %d (%v)", p.Hex(), ps.Earned, ps.Version, w, err)
		}
	}
}
