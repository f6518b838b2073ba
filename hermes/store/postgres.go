package store

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// pgConns is the connection pool size, pgCommitters how many of them group
// commits may hold at once (the rest serve reads). Each commit costs the
// server ~0.2 ms of CPU whatever its size, and every committer splits
// the accepts into smaller batches: at 5,000 accepts/s two committers
// cost the server a third less CPU than four and cut the p99 by 40%
// (docs/benchmarks.md), while still overlapping one commit's fsync with
// the next batch.
const pgConns, pgCommitters = 16, 2

// OpenPostgres connects to the PostgreSQL database at dsn
// (postgres://user:pass@host:port/db) and applies pending migrations.
// Commits use the server's synchronous_commit (on by default), so an
// acknowledged accept is on the server's disk.
func OpenPostgres(ctx context.Context, dsn string) (Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	// Every connection stays open: the default keeps 2 idle, so under load
	// the pool would keep closing connections and opening new ones (each a
	// backend process on the server).
	db.SetMaxOpenConns(pgConns)
	db.SetMaxIdleConns(pgConns)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: connect postgres: %w", err)
	}
	s := &sqlStore{
		d: dialect{name: "postgres", blob: "BYTEA", serial: "BIGSERIAL PRIMARY KEY", dollar: true,
			migrationLock: "SELECT pg_advisory_xact_lock(4060)"},
		w: db, r: db, close: db.Close, committers: pgCommitters,
	}
	if err := s.init(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Open opens the store named by dsn: a postgres:// or postgresql:// URL
// selects PostgreSQL, anything else is a SQLite file path.
func Open(ctx context.Context, dsn string) (Store, error) {
	if IsPostgres(dsn) {
		return OpenPostgres(ctx, dsn)
	}
	return OpenSQLite(ctx, dsn)
}

// IsPostgres reports whether dsn names a PostgreSQL database (else it is
// a SQLite file).
func IsPostgres(dsn string) bool {
	return len(dsn) >= 11 && (dsn[:11] == "postgres://" || (len(dsn) >= 13 && dsn[:13] == "postgresql://"))
}
