package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmyst/openmyst/hermes/store"
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

var schemaSeq atomic.Int64

// postgresDSN returns the test database DSN, or skips the test (fails it
// under OPENMYST_REQUIRE_NETNS=1).
func postgresDSN(t *testing.T) string {
	t.Helper()
	return testenv.RequirePostgres(t)
}

// freshSchema creates an empty schema and returns a DSN that uses it.
func freshSchema(t *testing.T, dsn string) string {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("hermes_test_%d_%d", time.Now().UnixNano(), schemaSeq.Add(1))
	if _, err := db.Exec(`CREATE SCHEMA ` + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err == nil {
			_, _ = db.Exec(`DROP SCHEMA ` + name + ` CASCADE`)
			_ = db.Close()
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + name
}

func TestPostgres(t *testing.T) {
	dsn := postgresDSN(t)
	storetest.Run(t, func(t *testing.T) (store.Store, func() store.Store) {
		d := freshSchema(t, dsn)
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
