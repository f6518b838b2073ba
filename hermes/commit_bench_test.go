package hermes

import (
	"context"
	"fmt"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes/store"
)

// BenchmarkStoreCommit measures one durable group commit of n accepts on
// SQLite (what the committer does per batch).
func BenchmarkStoreCommit(b *testing.B) {
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
			batches := make([][]store.Accept, b.N)
			seq := 0
			for i := range batches {
				for j := 0; j < n; j++ {
					seq++
					var d [32]byte
					copy(d[:], secret(fmt.Sprint(seq)))
					id := ids[seq%len(ids)]
					batches[i] = append(batches[i], store.Accept{
						Exchange: store.Exchange{Digest: d, Consumer: id, Provider: m.Provider, AgreementID: big.NewInt(1), AgreementTotal: big.NewInt(1),
							ConsumerPromise: m.Promise, HermesPromise: hp, ExchangeSignature: m.Signature},
						Consumer: store.Consumer{Identity: id, Promised: big.NewInt(1), Settled: new(big.Int), Version: int64(seq)},
						Provider: store.Provider{Identity: m.Provider, Earned: big.NewInt(1), Version: int64(seq)},
					})
				}
			}
			b.ResetTimer()
			t0 := time.Now()
			for i := 0; i < b.N; i++ {
				if err := st.Commit(context.Background(), batches[i]); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(t0)
			b.ReportMetric(float64(el.Microseconds())/1000/float64(b.N), "ms/commit")
			b.ReportMetric(float64(n*b.N)/el.Seconds(), "accepts/s")
		})
	}
}
