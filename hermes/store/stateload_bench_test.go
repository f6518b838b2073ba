package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/testenv"
)

// BenchmarkStateLoad times loading a consumer (Store.Consumer: settled
// amount, latest row, agreements) and a provider (Store.Provider: latest
// row, unrevealed count) with 20 journal rows each, as a hermes does on
// an identity's first accept:
//
//	go test -run '^$' -bench StateLoad -benchtime 2000x ./hermes/store/
//
// PostgreSQL runs when MYST_TEST_POSTGRES_DSN is set.
func BenchmarkStateLoad(b *testing.B) {
	ctx := context.Background()
	consumer := common.HexToAddress("0x00000000000000000000000000000000000000c1")
	provider := common.HexToAddress("0x00000000000000000000000000000000000000a1")
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			var st Store
			var err error
			if name == "sqlite" {
				st, err = OpenSQLite(ctx, filepath.Join(b.TempDir(), "hermes.db"))
			} else {
				testenv.RequirePostgres(b)
				st, err = OpenPostgres(ctx, freshSchema(b))
			}
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			s := st.(*sqlStore)
			fillProvider(b, s, encAddr(provider), 20)
			if _, err := s.w.ExecContext(ctx, s.q(`UPDATE exchanges SET consumer = ?, agreement_id = CAST(consumer_seq % 5 AS TEXT)`), encAddr(consumer)); err != nil {
				b.Fatal(err)
			}
			if _, err := s.w.ExecContext(ctx, s.q(`INSERT INTO consumer_settled (consumer, settled) VALUES (?, '7')`), encAddr(consumer)); err != nil {
				b.Fatal(err)
			}
			load := func() {
				c, ags, err := s.Consumer(ctx, consumer)
				if err != nil || c.Version != 20 || len(ags) != 5 || c.Settled.Int64() != 7 {
					b.Fatalf("consumer %+v, %d agreements, %v; want version 20, 5 agreements, settled 7", c, len(ags), err)
				}
				p, err := s.Provider(ctx, provider)
				if err != nil || p.Version != 20 || p.Unrevealed != 3 {
					b.Fatalf("provider %+v %v, want version 20, 3 unrevealed", p, err)
				}
			}
			for range 20 { // warm caches and prepared statements
				load()
			}
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				load()
			}
			b.ReportMetric(float64(time.Since(t0).Microseconds())/float64(b.N), "us/load")
		})
	}
}
