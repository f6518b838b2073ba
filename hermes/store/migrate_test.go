package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"math/big"

	"github.com/ethereum/go-ethereum/common"
)

// v1Rows writes a consumer's history the way schema 1 stored it: every
// accepted promise was the consumer's new highest, so consumer_amount was
// both the state and the row's promise. Agreement 1 with provider a1 went
// 100 -> 300, agreement 2 with a2 reached 250: consumed = 550, highest 550.
func v1Rows(t *testing.T, s *sqlStore, consumer string) {
	t.Helper()
	ctx := context.Background()
	rows := []struct {
		seq, pseq      int64
		provider       string
		agreement      int64
		total, promise int64
	}{
		{1, 1, "0x00000000000000000000000000000000000000a1", 1, 100, 100},
		{2, 1, "0x00000000000000000000000000000000000000a2", 2, 250, 350},
		{3, 2, "0x00000000000000000000000000000000000000a1", 1, 300, 550},
	}
	for i, r := range rows {
		_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO exchanges (digest, consumer, consumer_seq, provider, provider_seq, channel,
			agreement_id, agreement_total, hashlock, consumer_amount, consumer_promise, hermes_amount, hermes_promise, exchange_signature, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			[]byte(fmt.Sprintf("%032d", i)), consumer, r.seq, r.provider, r.pseq, "0xcc", encAmount(bigInt(r.agreement)), encAmount(bigInt(r.total)),
			[]byte(fmt.Sprintf("%032d", i)), encAmount(bigInt(r.promise)), "{}", encAmount(bigInt(r.total)), "{}", []byte{1}, time.Now().UnixNano())
		if err != nil {
			t.Fatal(err)
		}
	}
}

// testUpgradeFromV1 migrates a store holding schema-1 rows and checks the
// backfilled consumed amount and promise amounts.
func testUpgradeFromV1(t *testing.T, v1 *sqlStore, reopen func() Store) {
	ctx := context.Background()
	v1.maxVersion = 1
	if err := v1.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	consumer := "0x00000000000000000000000000000000000000c1"
	v1Rows(t, v1, consumer)
	s := reopen()
	defer s.Close()
	st, err := s.Stats(ctx)
	if err != nil || st.SchemaVersion != len(s.(*sqlStore).migrations()) {
		t.Fatalf("stats after upgrade %+v %v", st, err)
	}
	c, ags, err := s.Consumer(ctx, common.HexToAddress(consumer))
	if err != nil {
		t.Fatal(err)
	}
	if c.Consumed.Int64() != 550 || c.Promised.Int64() != 550 || c.Version != 3 || len(ags) != 2 {
		t.Fatalf("upgraded consumer %+v agreements %+v, want consumed 550 = 300 + 250", c, ags)
	}
	var n int
	if err := v1.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM exchanges WHERE promise_amount = consumer_amount`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("rows with backfilled promise_amount: %d %v", n, err)
	}
	// Schema 3: a digest is still unique (now through (hashlock, digest))
	// and new rows continue the sequence.
	ins := v1.q(`INSERT INTO exchanges (digest, consumer, consumer_seq, provider, provider_seq, channel, agreement_id, agreement_total, hashlock,
		consumer_amount, consumer_promise, hermes_amount, hermes_promise, exchange_signature, created_at) VALUES (?, ?, ?, ?, ?, '', '', '', ?, '', '', '', '', ?, 0)`)
	if _, err := v1.w.ExecContext(ctx, ins, []byte(fmt.Sprintf("%032d", 0)), consumer, 99, "0xa9", 99, []byte(fmt.Sprintf("%032d", 0)), []byte{1}); err == nil {
		t.Fatal("duplicate digest inserted after the upgrade")
	}
	if _, err := v1.w.ExecContext(ctx, ins, []byte(fmt.Sprintf("%032d", 7)), consumer, 4, "0xa9", 1, []byte(fmt.Sprintf("%032d", 7)), []byte{1}); err != nil {
		t.Fatal(err)
	}
	var seq int64
	// (PostgreSQL sequences may skip the value of the failed insert.)
	if err := v1.r.QueryRowContext(ctx, `SELECT seq FROM exchanges WHERE consumer_seq = 4`).Scan(&seq); err != nil || seq <= 3 {
		t.Fatalf("sequence after upgrade %d %v, want > 3", seq, err)
	}
}

func TestSQLiteUpgradeFromV1(t *testing.T) {
	v1, reopen := unmigratedSQLite(t)
	testUpgradeFromV1(t, v1, reopen)
}

func TestPostgresUpgradeFromV1(t *testing.T) {
	v1, reopen := unmigratedPostgres(t)
	testUpgradeFromV1(t, v1, reopen)
}

// unmigratedSQLite returns a store over a new SQLite database that is not
// migrated (the test writes an old schema's rows through it), and a func
// that opens that database as a Store, migrating it.
func unmigratedSQLite(t *testing.T) (*sqlStore, func() Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hermes.db")
	return unmigrated(t, "sqlite", "file:"+path, sqliteDialect, func(ctx context.Context) (Store, error) { return OpenSQLite(ctx, path) })
}

// unmigratedPostgres is unmigratedSQLite in a fresh PostgreSQL schema.
func unmigratedPostgres(t *testing.T) (*sqlStore, func() Store) {
	t.Helper()
	d := freshSchema(t)
	return unmigrated(t, "pgx", d, postgresDialect, func(ctx context.Context) (Store, error) { return OpenPostgres(ctx, d) })
}

func unmigrated(t *testing.T, driver, dsn string, d dialect, open func(context.Context) (Store, error)) (*sqlStore, func() Store) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &sqlStore{d: d, w: db, r: db}, func() Store {
		s, err := open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func bigInt(x int64) *big.Int { return big.NewInt(x) }
