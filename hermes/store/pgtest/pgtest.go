// Package pgtest gives each test its own empty PostgreSQL schema. It is
// apart from storetest (which imports hermes/store) so that hermes/store's
// own tests can use it too.
package pgtest

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for schema setup
)

var schemaSeq atomic.Int64

// FreshSchema creates an empty schema in the database at dsn,
// drops it when the test ends, and returns a DSN whose search_path is that
// schema (every connection opened with it sees only the new schema).
func FreshSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("hermes_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano(), schemaSeq.Add(1))
	if _, err := db.Exec(`CREATE SCHEMA ` + name); err != nil {
		tb.Fatalf("create schema %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if db, err := sql.Open("pgx", dsn); err == nil {
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
