package store

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/internal/testenv"
)

// BenchmarkProviderLoad times Store.Provider (the load a provider at the
// unrevealed limit repeats every second) for a provider with a short
// history (few rows) and one with a long history (many rows, all but three
// revealed), interleaved in the same run, and then the long one again with
// the partial index exchanges_unrevealed dropped (the schema before
// migration 5). It reports each time and the ratios to the short history:
//
//	go test -run '^$' -bench ProviderLoad -benchtime 300x ./hermes/store/
//
// MYST_BENCH_HISTORY sets the long history (default 50,000 rows);
// PostgreSQL runs when MYST_TEST_POSTGRES_DSN is set.
func BenchmarkProviderLoad(b *testing.B) {
	many := 50_000
	if v := os.Getenv("MYST_BENCH_HISTORY"); v != "" {
		var err error
		if many, err = strconv.Atoi(v); err != nil || many < 10 {
			b.Fatalf("MYST_BENCH_HISTORY=%q: want a number >= 10", v)
		}
	}
	const few = 10
	ctx := context.Background()
	id := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	opens := map[string]func(b *testing.B) *sqlStore{
		"sqlite": func(b *testing.B) *sqlStore {
			st, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "hermes.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			return st.(*sqlStore)
		},
		"postgres": func(b *testing.B) *sqlStore {
			testenv.RequirePostgres(b)
			return freshPostgres(b)
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			short, long := opens[name](b), opens[name](b)
			fillProvider(b, short, encAddr(id), few)
			fillProvider(b, long, encAddr(id), many)
			if short.d.dollar {
				for _, s := range []*sqlStore{short, long} {
					if _, err := s.w.ExecContext(ctx, `ANALYZE exchanges`); err != nil {
						b.Fatal(err)
					}
				}
			}
			load := func(s *sqlStore) time.Duration {
				t0 := time.Now()
				p, err := s.Provider(ctx, id)
				d := time.Since(t0)
				if err != nil || p.Unrevealed != 3 {
					b.Fatalf("provider %+v %v, want 3 unrevealed", p, err)
				}
				return d
			}
			for range 20 { // warm caches and prepared statements
				load(short)
				load(long)
			}
			b.ResetTimer()
			var dShort, dLong time.Duration
			for range b.N {
				dShort += load(short)
				dLong += load(long)
			}
			b.StopTimer()
			if _, err := long.w.ExecContext(ctx, `DROP INDEX exchanges_unrevealed`); err != nil {
				b.Fatal(err)
			}
			for range 20 {
				load(long)
			}
			var dShort2, dNoIndex time.Duration
			for range b.N {
				dShort2 += load(short) // interleaved as above: its own baseline
				dNoIndex += load(long)
			}
			n := float64(b.N)
			b.ReportMetric(float64(dShort.Nanoseconds())/n, "few-ns/load")
			b.ReportMetric(float64(dLong.Nanoseconds())/n, "many-ns/load")
			b.ReportMetric(float64(dNoIndex.Nanoseconds())/n, "many-noindex-ns/load")
			b.ReportMetric(float64(dLong)/float64(dShort), "many/few")
			b.ReportMetric(float64(dNoIndex)/float64(dShort2), "noindex/few")
		})
	}
}
