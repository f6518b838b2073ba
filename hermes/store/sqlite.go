package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// OpenSQLite opens (creating if needed) the SQLite store at path in WAL
// mode with synchronous=FULL, so a committed transaction survives power
// loss, and applies pending migrations.
func OpenSQLite(ctx context.Context, path string) (Store, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)", "cache_size(-65536)"} {
		q.Add("_pragma", p)
	}
	wq := url.Values{}
	for k, v := range q {
		wq[k] = v
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
	s := &sqlStore{
		d: dialect{name: "sqlite", blob: "BLOB", serial: "INTEGER PRIMARY KEY AUTOINCREMENT"},
		w: w, r: r,
		close: func() error {
			err1 := r.Close()
			err2 := w.Close()
			if err1 != nil {
				return err1
			}
			return err2
		},
	}
	if err := s.init(ctx); err != nil {
		_ = s.close()
		return nil, err
	}
	return s, nil
}

func (s *sqlStore) init(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil {
		return err
	}
	return s.prepare(ctx)
}
