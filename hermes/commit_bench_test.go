package hermes

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes/store"
)

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
			c := testSigner("c")
			m := msg(b, c, testSigner("p").Address(), 1, 10, 10, secret("x"))
			hp := m.Promise
			hp.Signature = append([]byte(nil), m.Signature...)
			ids := make([]common.Address, 1000)
			for i := range ids {
				ids[i] = common.BigToAddress(big.NewInt(int64(i + 1)))
			}
			seq := 0
			makeBatch := func(n int) []store.Accept {
				batch := make([]store.Accept, 0, n)
				for j := 0; j < n; j++ {
					seq++
					var d [32]byte
					copy(d[:], secret(fmt.Sprint(seq)))
					id := ids[seq%len(ids)]
					// Every invoice has its own hashlock, as in production.
					cp, hpi := m.Promise, hp
					copy(cp.Hashlock[:], secret(fmt.Sprint("hashlock", seq)))
					hpi.Hashlock = cp.Hashlock
					batch = append(batch, store.Accept{
						Exchange: store.Exchange{Digest: d, Consumer: id, Provider: m.Provider, AgreementID: big.NewInt(1), AgreementTotal: big.NewInt(1),
							ConsumerPromise: cp, HermesPromise: hpi, ExchangeSignature: m.Signature},
						Consumer: store.Consumer{Identity: id, Promised: big.NewInt(1), Consumed: big.NewInt(1), Settled: new(big.Int), Version: int64(seq)},
						Provider: store.Provider{Identity: m.Provider, Earned: big.NewInt(1), Version: int64(seq)},
					})
				}
				return batch
			}
			for left := prefill; left > 0; left -= 512 {
				if err := st.Commit(context.Background(), makeBatch(min(left, 512))); err != nil {
					b.Fatal(err)
				}
			}
			batches := make([][]store.Accept, b.N)
			for i := range batches {
				batches[i] = makeBatch(n)
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
