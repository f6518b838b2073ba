package node

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/storage/storagetest"
)

// fillHistory writes n settled records straight into h's bucket and
// counts them as a database from before the status counts would be
// (a migration), so that a large history is quick to build.
func fillHistory(t testing.TB, db *storage.DB, n int) {
	t.Helper()
	err := db.Update(context.Background(), func(tx *storage.Tx) error {
		for i := 0; i < n; i++ {
			id, err := tx.NextSequence(settlementsBucket)
			if err != nil {
				return err
			}
			if err := putRecord(tx, SettlementRecord{ID: id, Trigger: TriggerAuto, Status: StatusSettled, Attempt: 1, Amount: "1", Tx: "0x01"}); err != nil {
				return err
			}
		}
		return tx.Delete(settlementCountsBucket, countsReady)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func openHistory(t testing.TB, path string) (*storage.DB, *SettlementHistory) {
	t.Helper()
	db := storagetest.Open(t, path)
	h, err := NewSettlementHistory(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return db, h
}

// reopenedHistory writes n settled records into a new history, closes
// its database and opens it again.
func reopenedHistory(tb testing.TB, n int) (*storage.DB, *SettlementHistory) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "provider.db")
	db, _ := openHistory(tb, path)
	fillHistory(tb, db, n)
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	return openHistory(tb, path)
}

// collectedSettlements is what the metrics collector reports for h.
func collectedSettlements(m *nodeMetrics, h *SettlementHistory) map[string]float64 {
	out := map[string]float64{}
	m.collectSettlements(h, func(_ *prometheus.Desc, v float64, l ...string) { out[l[0]] = v })
	return out
}

// TestSettlementGaugeConstantCost: the settlements gauge of GET /metrics
// costs the same with 5,000 records in the history as with 10 (it reads
// the counts kept on write instead of decoding the records), and the
// counts match the records through begin, finish, trimming and a reopen
// of a database written before the counts existed.
func TestSettlementGaugeConstantCost(t *testing.T) {
	m := newNodeMetrics(&DaemonNode{Log: slog.New(slog.DiscardHandler)}, nil, nil)
	allocs := func(n int) float64 {
		db, h := reopenedHistory(t, n)
		defer db.Close()
		if got := collectedSettlements(m, h); got[StatusSettled] != float64(n) || got[StatusPending] != 0 || got[StatusFailed] != 0 {
			t.Fatalf("%d settled records: collected %v", n, got)
		}
		return testing.AllocsPerRun(20, func() { collectedSettlements(m, h) })
	}
	small, large := allocs(10), allocs(5000)
	t.Logf("allocations per collection: %.0f with 10 records, %.0f with 5,000", small, large)
	if large > small+5 {
		t.Fatalf("collecting the settlements gauge allocates %.0f times with 5,000 records and %.0f with 10: it grows with the history", large, small)
	}

	// The counts follow every write.
	ctx := context.Background()
	db, h := openHistory(t, filepath.Join(t.TempDir(), "provider.db"))
	defer db.Close()
	check := func(step string, pending, settled, failed float64) {
		t.Helper()
		got := collectedSettlements(m, h)
		if got[StatusPending] != pending || got[StatusSettled] != settled || got[StatusFailed] != failed {
			t.Fatalf("%s: collected %v, want pending %v settled %v failed %v", step, got, pending, settled, failed)
		}
		list, err := h.List(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]float64{}
		for _, r := range list {
			by[r.Status]++
		}
		for _, st := range settlementStatuses {
			if by[st] != got[st] {
				t.Fatalf("%s: counts %v, records %v", step, got, by)
			}
		}
	}
	check("empty", 0, 0, 0)
	r1, err := h.begin(ctx, SettlementRecord{Trigger: TriggerAuto, Amount: "100"})
	if err != nil {
		t.Fatal(err)
	}
	check("begun", 1, 0, 0)
	if err := h.finish(ctx, r1, Settlement{}, errors.New("gas price too high")); err != nil {
		t.Fatal(err)
	}
	check("failed", 0, 0, 1)
	r2, err := h.begin(ctx, SettlementRecord{Trigger: TriggerAuto, Amount: "100"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.finish(ctx, r2, Settlement{Amount: big.NewInt(100)}, nil); err != nil {
		t.Fatal(err)
	}
	check("settled", 0, 1, 1)
	defer func(n int) { maxHistory = n }(maxHistory)
	maxHistory = 2
	if _, err := h.begin(ctx, SettlementRecord{Trigger: TriggerManual, Amount: "300"}); err != nil {
		t.Fatal(err)
	}
	check("trimmed (the failed record dropped)", 1, 1, 0)
}

// BenchmarkSettlementGauge: one collection of the settlements gauge with
// 10 and with 10,000 records in the history, and decoding the 10,000
// records as a scrape did before (docs/benchmarks.md).
func BenchmarkSettlementGauge(b *testing.B) {
	m := newNodeMetrics(&DaemonNode{Log: slog.New(slog.DiscardHandler)}, nil, nil)
	for _, n := range []int{10, 10_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			db, h := reopenedHistory(b, n)
			defer db.Close()
			b.ReportAllocs()
			for b.Loop() {
				collectedSettlements(m, h)
			}
		})
	}
	// Baseline: what a scrape did before the counts, decode the history.
	b.Run("decode-10000", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "provider.db")
		db, h := openHistory(b, path)
		defer db.Close()
		fillHistory(b, db, 10_000)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.List(context.Background(), maxHistory); err != nil {
				b.Fatal(err)
			}
		}
	})
}
