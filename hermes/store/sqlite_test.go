package store

import (
	"context"
	"path/filepath"
	"testing"
)

// TestSQLiteConnectionSettings checks the per-connection settings of both
// pools: synchronous=FULL (a commit is durable before it is acknowledged)
// and temp_store=MEMORY (the group commit's statement journal never
// spills to a temporary file: a write system call per page).
func TestSQLiteConnectionSettings(t *testing.T) {
	st, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hermes.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqlStore)
	for _, c := range []struct {
		pool   string
		pragma string
		want   int
	}{
		{"writer", "synchronous", 2}, {"writer", "temp_store", 2},
		{"reader", "synchronous", 2}, {"reader", "temp_store", 2},
	} {
		db := s.w
		if c.pool == "reader" {
			db = s.r
		}
		var got int
		if err := db.QueryRow("PRAGMA " + c.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s pool: PRAGMA %s = %d, want %d", c.pool, c.pragma, got, c.want)
		}
	}
}
