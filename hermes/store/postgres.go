package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" database/sql driver
)

// pgConns is the size of the pool for reads and other writes,
// pgCommitters how many group commits may run at once, each on its own
// connection of a second pool (openCommitPool). Each commit costs the
// server ~0.2 ms of CPU whatever its size, and every committer splits
// the accepts into smaller batches: at 5,000 accepts/s two committers
// cost the server a third less CPU than four and cut the p99 by 40%
// (docs/benchmarks.md), while still overlapping one commit's fsync with
// the next batch.
const pgConns, pgCommitters = 16, 2

// postgresDialect is PostgreSQL's SQL; migrations serialize on an
// advisory lock (several hermes processes may share one database).
var postgresDialect = dialect{name: "postgres", blob: "BYTEA", serial: "BIGSERIAL PRIMARY KEY", dollar: true,
	migrationLock: "SELECT pg_advisory_xact_lock(4060)"}

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
	commit, err := openCommitPool(dsn)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	// Open every connection now rather than on the first requests: a
	// connection is a backend process the server forks, a few ms of CPU
	// each, and opened on demand they all open at once on the first burst
	// (an open-loop run's first quarter second: p99 64 ms, the rest of the
	// run 5-30 ms).
	if err := openAll(ctx, db, pgConns); err != nil {
		_ = errors.Join(commit.Close(), db.Close())
		return nil, err
	}
	if err := openAll(ctx, commit, pgCommitters); err != nil {
		_ = errors.Join(commit.Close(), db.Close())
		return nil, err
	}
	s := &sqlStore{
		d: postgresDialect,
		w: db, r: db, commit: commit, committers: pgCommitters,
		close: func() error { return errors.Join(commit.Close(), db.Close()) },
	}
	if err := s.init(ctx); err != nil {
		_ = s.close()
		return nil, err
	}
	return s, nil
}

// openCommitPool opens the connections that run only the group commit
// (pgCommit), pgCommitters of them, with plan_cache_mode=force_generic_plan.
// PostgreSQL otherwise plans a prepared statement anew on every execution
// while the generic plan's estimate is above the custom plans' average,
// which for pgCommit with a handful of accepts is most executions: 0.12
// ms of server CPU per commit, as much as half the commit's own execution
// (pg_stat_statements, docs/benchmarks.md). pgCommit's generic plan probes
// the unique indexes whatever the table's statistics
// (TestPostgresCommitPlanProbesIndexes); the other statements keep the
// default, since a generic plan cached while the table is small could scan
// it.
func openCommitPool(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	// SET after connecting rather than a startup parameter, which
	// connection poolers such as PgBouncer refuse unless told to ignore it.
	db := stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
		if _, err := c.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
			return fmt.Errorf("store: commit connection: %w", err)
		}
		return nil
	}))
	db.SetMaxOpenConns(pgCommitters)
	db.SetMaxIdleConns(pgCommitters)
	return db, nil
}

// openAll opens n connections of db and leaves them idle in its pool.
func openAll(ctx context.Context, db *sql.DB, n int) error {
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close() // back to the pool
		}
	}()
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("store: connect postgres: %w", err)
		}
		conns = append(conns, c)
	}
	return nil
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
