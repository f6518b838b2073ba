package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/hermes/store/pgtest"
	"github.com/openmyst/openmyst/hermes/store/storetest"
	"github.com/openmyst/openmyst/internal/testenv"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, func() store.Store) {
		path := filepath.Join(t.TempDir(), "hermes.db")
		open := func() store.Store {
			s, err := store.OpenSQLite(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return open(), open
	})
}

func TestSQLiteDurabilitySettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hermes.db")
	s, err := store.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q %v, want wal", mode, err)
	}
}

// postgresDSN returns the test database DSN, or skips the test (fails it
// under OPENMYST_REQUIRE_NETNS=1).
func postgresDSN(t *testing.T) string {
	t.Helper()
	return testenv.RequirePostgres(t)
}

func TestPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	storetest.Run(t, func(t *testing.T) (store.Store, func() store.Store) {
		d := pgtest.FreshSchema(t, dsn)
		open := func() store.Store {
			s, err := store.Open(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return open(), open
	})
}
