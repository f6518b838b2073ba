package storetest

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

// PostgresEnv names the environment variable holding the DSN of the
// PostgreSQL database tests may use (scripts/postgres-test.sh prints it).
const PostgresEnv = "MYST_TEST_POSTGRES_DSN"

// requireEnv is tunnel/netns.RequireEnv: set to 1 on CI (root), where a
// test that cannot get its PostgreSQL must fail instead of skipping.
const requireEnv = "OPENMYST_REQUIRE_NETNS"

// PostgresDSN returns the test database DSN from MYST_TEST_POSTGRES_DSN.
// When it is unset the test is skipped, or fails under
// OPENMYST_REQUIRE_NETNS=1.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		const why = PostgresEnv + " unset: start one with scripts/postgres-test.sh (make postgres)"
		if os.Getenv(requireEnv) == "1" {
			tb.Fatalf("%s (and %s=1 forbids skipping)", why, requireEnv)
		}
		tb.Skip(why)
	}
	return dsn
}

var schemaSeq atomic.Int64

// FreshPostgresSchema creates an empty schema in the database at dsn,
// drops it when the test ends, and returns a DSN whose search_path is that
// schema (every connection opened with it sees only the new schema).
func FreshPostgresSchema(tb testing.TB, dsn string) string {
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
