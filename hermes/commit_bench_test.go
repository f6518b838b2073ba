package hermes

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/hermes/store/pgtest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/payments"
)

// acceptGen makes valid accept batches for the store benchmarks: its own
// provider and 1,000 consumers, each identity's versions chained as the
// store requires.
type acceptGen struct {
	m        *payments.ExchangeMessage
	hp       payments.Promise
	provider common.Address
	pv       int64
	ids      []common.Address
	cv       map[common.Address]int64
	seq      int
	label    string
}

func newAcceptGen(b *testing.B, label string) *acceptGen {
	c := testSigner("c")
	g := &acceptGen{label: label, provider: testSigner("p " + label).Address(), cv: map[common.Address]int64{}}
	g.m = msg(b, c, g.provider, 1, 10, 10, secret("x"))
	g.hp = g.m.Promise
	g.hp.Signature = append([]byte(nil), g.m.Signature...)
	g.ids = make([]common.Address, 1000)
	for i := range g.ids {
		g.ids[i] = common.BytesToAddress(secret(fmt.Sprint(label, "consumer", i))[:20])
	}
	return g
}

func (g *acceptGen) batch(n int) []store.Accept {
	batch := make([]store.Accept, 0, n)
	for j := 0; j < n; j++ {
		g.seq++
		var d [32]byte
		copy(d[:], secret(fmt.Sprint(g.label, g.seq)))
		id := g.ids[g.seq%len(g.ids)]
		// Every invoice has its own hashlock, as in production.
		cp, hpi := g.m.Promise, g.hp
		copy(cp.Hashlock[:], secret(fmt.Sprint(g.label, "hashlock", g.seq)))
		hpi.Hashlock = cp.Hashlock
		batch = append(batch, store.Accept{
			Exchange: store.Exchange{Digest: d, Consumer: id, Provider: g.provider, AgreementID: big.NewInt(1), AgreementTotal: big.NewInt(1),
				ConsumerPromise: cp, HermesPromise: hpi, ExchangeSignature: g.m.Signature},
			Consumer: store.Consumer{Identity: id, Promised: big.NewInt(1), Consumed: big.NewInt(1), Settled: new(big.Int), Version: g.cv[id]},
			Provider: store.Provider{Identity: g.provider, Earned: big.NewInt(1), Version: g.pv},
		})
		g.cv[id]++
		g.pv++
	}
	return batch
}

// BenchmarkStoreCommit measures one durable group commit of n accepts on
// SQLite (what the committer does per batch). MYST_BENCH_PREFILL=N first
// stores N accepts, so index inserts land on random leaf pages as in a
// hermes that has run for a while (a small database shares leaves).
func BenchmarkStoreCommit(b *testing.B) {
	prefill, _ := strconv.Atoi(os.Getenv("MYST_BENCH_PREFILL"))
	for _, n := range []int{1, 32, 128, 512} {
		b.Run(fmt.Sprint("batch=", n), func(b *testing.B) {
			st, err := store.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "h.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			g := newAcceptGen(b, "sqlite")
			for left := prefill; left > 0; left -= 512 {
				if err := st.Commit(context.Background(), g.batch(min(left, 512))); err != nil {
					b.Fatal(err)
				}
			}
			batches := make([][]store.Accept, b.N)
			for i := range batches {
				batches[i] = g.batch(n)
			}
			b.ResetTimer()
			cpu0 := processCPU()
			sys0, bytes0 := processIO()
			t0 := time.Now()
			for i := 0; i < b.N; i++ {
				if err := st.Commit(context.Background(), batches[i]); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(t0)
			sys1, bytes1 := processIO()
			accepts := float64(n * b.N)
			b.ReportMetric(float64(el.Microseconds())/1000/float64(b.N), "ms/commit")
			b.ReportMetric(accepts/el.Seconds(), "accepts/s")
			// Machine-independent costs: CPU, write syscalls and bytes
			// written per accept (WAL frames; checkpoints add to both).
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/accepts, "cpu-us/accept")
			b.ReportMetric(float64(sys1-sys0)/accepts, "writes/accept")
			b.ReportMetric(float64(bytes1-bytes0)/1024/accepts, "KiB/accept")
		})
	}
}

// BenchmarkPostgresCommitters measures PostgreSQL group commits of 32
// accepts with 1 and 4 committers at once (each with its own provider and
// consumers, as Service routes them), b.N commits per committer; the
// 1-committer row is the baseline of the same run. Needs
// MYST_TEST_POSTGRES_DSN:
// go test -run '^$' -bench PostgresCommitters -benchtime 100x ./hermes/
// MYST_BENCH_PREFILL=N first stores N accepts per committer (a journal
// that has run for a while: a commit must not cost more as it grows).
func BenchmarkPostgresCommitters(b *testing.B) {
	dsn := testenv.RequirePostgres(b)
	prefill, _ := strconv.Atoi(os.Getenv("MYST_BENCH_PREFILL"))
	const n = 32
	for _, committers := range []int{1, 4} {
		b.Run(fmt.Sprint("committers=", committers), func(b *testing.B) {
			st, err := store.Open(context.Background(), pgtest.FreshSchema(b, dsn))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			work := make([][][]store.Accept, committers)
			for w := range work {
				g := newAcceptGen(b, fmt.Sprint("pg", w))
				for left := prefill; left > 0; left -= 512 {
					if err := st.Commit(context.Background(), g.batch(min(left, 512))); err != nil {
						b.Fatal(err)
					}
				}
				for i := 0; i < b.N; i++ {
					work[w] = append(work[w], g.batch(n))
				}
			}
			b.ResetTimer()
			cpu0 := processCPU()
			t0 := time.Now()
			var wg sync.WaitGroup
			for w := range work {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, batch := range work[w] {
						if err := st.Commit(context.Background(), batch); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(t0)
			accepts := float64(n * b.N * committers)
			b.ReportMetric(float64(el.Microseconds())/1000/float64(b.N), "ms/round")
			b.ReportMetric(accepts/el.Seconds(), "accepts/s")
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/accepts, "client-cpu-us/accept")
		})
	}
}
