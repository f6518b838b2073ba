package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/openmyst/openmyst/internal/tick"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// checkpointEvery is how often the background checkpointer copies the WAL
// into the database file.
// (A variable for tests that must not see a checkpoint's writes.)
var checkpointEvery = 500 * time.Millisecond

// sqliteDialect is SQLite's SQL.
var sqliteDialect = dialect{name: "sqlite", blob: "BLOB", serial: "INTEGER PRIMARY KEY AUTOINCREMENT"}

// OpenSQLite opens (creating if needed) the SQLite store at path in WAL
// mode with synchronous=FULL, so a committed transaction survives power
// loss, and applies pending migrations.
//
// Checkpoints (copying the WAL into the database file) run in a background
// goroutine on their own connection instead of inside the committing
// transaction, so a group commit waits only for its own WAL fsync. Close
// stops the goroutine.
func OpenSQLite(ctx context.Context, path string) (Store, error) {
	pragmas := []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)", "cache_size(-65536)"}
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	wq := url.Values{}
	for _, p := range append(pragmas, "wal_autocheckpoint(0)") {
		wq.Add("_pragma", p)
	}
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	// One writer connection: SQLite has one writer at a time anyway, and the
	// hermes batches accepts into group commits.
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	cctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	s := &sqlStore{
		d: sqliteDialect,
		w: w, r: r,
	}
	s.close = func() error {
		stop()
		wg.Wait()
		// A final full checkpoint leaves a short WAL behind.
		_, _ = w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		err1 := r.Close()
		err2 := w.Close()
		if err1 != nil {
			return err1
		}
		return err2
	}
	if err := s.init(ctx); err != nil {
		_ = s.close()
		return nil, err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick.Every(cctx, checkpointEvery, func(ctx context.Context) {
			// PASSIVE never blocks the writer or readers; with
			// synchronous=FULL it fsyncs the database file itself.
			_, _ = r.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		})
	}()
	return s, nil
}

func (s *sqlStore) init(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil {
		return err
	}
	return s.prepare(ctx)
}
