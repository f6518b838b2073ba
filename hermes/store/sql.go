package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openmyst/openmyst/payments"
)

// dialect holds what differs between the SQL databases.
type dialect struct {
	name string
	// blob and serial are the column types for bytes and an auto id.
	blob, serial string
	// dollar rebinds ? placeholders to $1, $2, ... (PostgreSQL).
	dollar bool
	// migrationLock is run first inside every migration transaction.
	migrationLock string
}

// sqlStore implements Store over database/sql for both dialects.
type sqlStore struct {
	d dialect
	// w is the writer pool, r the reader pool; for PostgreSQL both are the
	// same pool.
	w, r *sql.DB
	// commit, when set, runs the PostgreSQL group commits (see
	// openCommitPool); nil: w.
	commit *sql.DB
	close  func() error

	insExchange *sql.Stmt
	// consumerStmt and providerStmt are consumerQuery and providerQuery
	// prepared on r, for SQLite, whose driver otherwise parses and plans a
	// query on every call (the compound consumerQuery costs more to prepare
	// than to run); nil for PostgreSQL, whose driver caches prepared
	// statements per connection itself.
	consumerStmt, providerStmt *sql.Stmt
	// committers is how many Commit calls may run at once (see
	// ConcurrentCommitter).
	committers int
	// maxVersion stops migrations after that version (tests of upgrades);
	// 0 applies all.
	maxVersion int
}

// amountWidth is the fixed width amounts are stored with, so that textual
// order equals numeric order (2^256 has 78 decimal digits).
const amountWidth = 78

// encAmount is x in decimal, zero-padded to amountWidth digits. It
// builds the string in one buffer: it runs six times per accept.
func encAmount(x *big.Int) string {
	if x == nil {
		x = new(big.Int)
	}
	var buf [amountWidth]byte
	d := x.Append(buf[:0], 10)
	if len(d) >= amountWidth {
		return string(d) // never longer: amounts are uint256, checked before the store
	}
	var b strings.Builder
	b.Grow(amountWidth)
	for range amountWidth - len(d) {
		b.WriteByte('0')
	}
	b.Write(d)
	return b.String()
}

func decAmount(s string) (*big.Int, error) {
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return new(big.Int), nil
	}
	x, ok := new(big.Int).SetString(t, 10)
	if !ok || x.Sign() < 0 {
		return nil, fmt.Errorf("store: corrupt amount %q", s)
	}
	return x, nil
}

// encAddr is a's lower-case 0x-hex form: strings.ToLower(a.Hex()) without
// the EIP-55 checksum's keccak256 (three times per accept).
func encAddr(a common.Address) string {
	var b [2 + 2*common.AddressLength]byte
	copy(b[:], "0x")
	hex.Encode(b[2:], a[:])
	return string(b[:])
}

func (s *sqlStore) q(query string) string {
	if !s.d.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// migration is one schema version: SQL statements separated by ";", then
// an optional Go step in the same transaction (for data changes SQL cannot
// express in both dialects, such as 256-bit sums).
type migration struct {
	sql string
	fn  func(ctx context.Context, s *sqlStore, tx *sql.Tx) error
}

func (s *sqlStore) migrations() []migration {
	r := strings.NewReplacer("{{BLOB}}", s.d.blob, "{{SERIAL}}", s.d.serial)
	m := []migration{
		// 1: initial schema. exchanges is an append-only journal; the
		// consumer's and provider's current state is their latest row, and
		// the unique (consumer, consumer_seq) and (provider, provider_seq)
		// indexes are the optimistic lock: two writers extending the same
		// state both try to insert the same sequence number and one fails.
		{sql: `CREATE TABLE exchanges (
			seq {{SERIAL}},
			digest {{BLOB}} NOT NULL UNIQUE,
			consumer TEXT NOT NULL,
			consumer_seq BIGINT NOT NULL,
			provider TEXT NOT NULL,
			provider_seq BIGINT NOT NULL,
			channel TEXT NOT NULL,
			agreement_id TEXT NOT NULL,
			agreement_total TEXT NOT NULL,
			hashlock {{BLOB}} NOT NULL,
			consumer_amount TEXT NOT NULL,
			consumer_promise TEXT NOT NULL,
			hermes_amount TEXT NOT NULL,
			hermes_promise TEXT NOT NULL,
			exchange_signature {{BLOB}} NOT NULL,
			r {{BLOB}},
			created_at BIGINT NOT NULL
		);
		CREATE UNIQUE INDEX exchanges_consumer_seq ON exchanges (consumer, consumer_seq);
		CREATE UNIQUE INDEX exchanges_provider_seq ON exchanges (provider, provider_seq);
		CREATE INDEX exchanges_hashlock ON exchanges (hashlock);
		CREATE TABLE consumer_settled (
			consumer TEXT PRIMARY KEY,
			settled TEXT NOT NULL
		);
		CREATE TABLE settlements (
			id {{SERIAL}},
			consumer TEXT NOT NULL,
			amount TEXT NOT NULL,
			tx_hash TEXT NOT NULL,
			at BIGINT NOT NULL
		);
		CREATE INDEX settlements_consumer ON settlements (consumer, id);`},
		// 2: concurrent sessions. consumer_amount stays the consumer's
		// highest accepted promise (state), promise_amount is this row's
		// own promise amount (a late promise of another session may be
		// lower than the highest), and consumed is the consumer's sum of
		// accepted agreement deltas after this row. Under schema 1 every
		// accepted promise was the new highest, and the deltas of a
		// consumer sum to its agreements' totals: backfill from those.
		{sql: `ALTER TABLE exchanges ADD COLUMN promise_amount TEXT;
		ALTER TABLE exchanges ADD COLUMN consumed TEXT;
		UPDATE exchanges SET promise_amount = consumer_amount`, fn: backfillConsumed},
		// 3: one random-key index fewer per accept. The digest's own unique
		// index and the hashlock index become one unique (hashlock, digest)
		// index (a digest covers the promise and so its hashlock: the
		// uniqueness is the same). Every accept dirtied a random leaf page
		// of each; each dirty page is a WAL frame written at commit.
		{fn: mergeDigestIndex},
		// 4: named leases. Several hermes processes share one database;
		// work that must run in one of them at a time (settlement: one
		// operator key, one nonce sequence, and a settlement the chain
		// refuses still costs gas) is done by whoever holds its lease.
		{sql: `CREATE TABLE leases (
			name TEXT PRIMARY KEY,
			holder TEXT NOT NULL,
			expires_at BIGINT NOT NULL
		)`},
		// 5: a provider's unrevealed promises, counted without reading
		// its revealed history. Loading a provider counts them
		// (unrevealedQuery), and a provider at the unrevealed limit is
		// reloaded every second; through (provider, provider_seq) the
		// count read every row the provider ever had. The partial index
		// holds only rows whose R is not revealed: an accept adds one
		// entry in the same statement that inserts its row (so it is as
		// durable as the row and needs no version of its own), a reveal
		// removes it, and the count reads at most the provider's
		// unrevealed rows, which MaxUnrevealed bounds.
		{sql: `CREATE INDEX exchanges_unrevealed ON exchanges (provider) WHERE r IS NULL`},
		// 6: compact promises. New rows store the consumer's and the
		// hermes' promise in the binary form of encPromise (~140 bytes)
		// in consumer_promise_bin and hermes_promise_bin, and '' in the
		// JSON columns (~360 bytes each); rows written before keep their
		// JSON and NULL here, and scanExchange reads either. An accept
		// wrote 2.25 KB of WAL, 1.3 KB of it the two JSON promises and
		// their hex; a hermes older than this schema cannot read the new
		// rows, so every process sharing a database must be upgraded
		// together.
		{sql: `ALTER TABLE exchanges ADD COLUMN consumer_promise_bin {{BLOB}};
		ALTER TABLE exchanges ADD COLUMN hermes_promise_bin {{BLOB}}`},
	}
	for i := range m {
		m[i].sql = r.Replace(m[i].sql)
	}
	return m
}

// mergeDigestIndex is migration 3. SQLite cannot drop the inline UNIQUE
// constraint of schema 1, so it rebuilds the table; PostgreSQL drops it.
func mergeDigestIndex(ctx context.Context, s *sqlStore, tx *sql.Tx) error {
	var stmts []string
	if s.d.name == "postgres" {
		stmts = []string{
			`ALTER TABLE exchanges DROP CONSTRAINT exchanges_digest_key`,
			`DROP INDEX exchanges_hashlock`,
			`CREATE UNIQUE INDEX exchanges_hashlock_digest ON exchanges (hashlock, digest)`,
		}
	} else {
		cols := `seq, digest, consumer, consumer_seq, provider, provider_seq, channel, agreement_id, agreement_total, hashlock,
			consumer_amount, consumer_promise, hermes_amount, hermes_promise, exchange_signature, r, created_at, promise_amount, consumed`
		stmts = []string{
			`CREATE TABLE exchanges_v3 (
				seq INTEGER PRIMARY KEY AUTOINCREMENT,
				digest BLOB NOT NULL,
				consumer TEXT NOT NULL,
				consumer_seq BIGINT NOT NULL,
				provider TEXT NOT NULL,
				provider_seq BIGINT NOT NULL,
				channel TEXT NOT NULL,
				agreement_id TEXT NOT NULL,
				agreement_total TEXT NOT NULL,
				hashlock BLOB NOT NULL,
				consumer_amount TEXT NOT NULL,
				consumer_promise TEXT NOT NULL,
				hermes_amount TEXT NOT NULL,
				hermes_promise TEXT NOT NULL,
				exchange_signature BLOB NOT NULL,
				r BLOB,
				created_at BIGINT NOT NULL,
				promise_amount TEXT,
				consumed TEXT
			)`,
			`INSERT INTO exchanges_v3 (` + cols + `) SELECT ` + cols + ` FROM exchanges`,
			`DROP TABLE exchanges`,
			`ALTER TABLE exchanges_v3 RENAME TO exchanges`,
			`CREATE UNIQUE INDEX exchanges_consumer_seq ON exchanges (consumer, consumer_seq)`,
			`CREATE UNIQUE INDEX exchanges_provider_seq ON exchanges (provider, provider_seq)`,
			`CREATE UNIQUE INDEX exchanges_hashlock_digest ON exchanges (hashlock, digest)`,
		}
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", strings.Fields(q)[0], err)
		}
	}
	return nil
}

// backfillConsumed sets consumed on every consumer's latest row to the sum
// of its agreements' highest totals (migration 2).
func backfillConsumed(ctx context.Context, s *sqlStore, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT consumer, MAX(agreement_total) FROM exchanges GROUP BY consumer, provider, agreement_id`)
	if err != nil {
		return err
	}
	sums := map[string]*big.Int{}
	for rows.Next() {
		var c, total string
		if err := rows.Scan(&c, &total); err != nil {
			rows.Close()
			return err
		}
		t, err := decAmount(total)
		if err != nil {
			rows.Close()
			return err
		}
		if sums[c] == nil {
			sums[c] = new(big.Int)
		}
		sums[c].Add(sums[c], t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for c, sum := range sums {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE exchanges SET consumed = ? WHERE consumer = ? AND consumer_seq = (SELECT MAX(x.consumer_seq) FROM exchanges x WHERE x.consumer = ?)`),
			encAmount(sum), c, c); err != nil {
			return err
		}
	}
	return nil
}

// migrate applies every migration newer than the stored schema version,
// each in its own transaction.
func (s *sqlStore) migrate(ctx context.Context) error {
	// Under the migration lock: two hermes processes starting together on
	// an empty PostgreSQL database would otherwise both create the table,
	// and IF NOT EXISTS does not stop the loser failing on the catalog's
	// unique index.
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		if s.d.migrationLock != "" {
			if _, err := tx.ExecContext(ctx, s.d.migrationLock); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`)
		return err
	}); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	for i, m := range s.migrations() {
		version := i + 1
		if s.maxVersion > 0 && version > s.maxVersion {
			break
		}
		if err := s.inTx(ctx, func(tx *sql.Tx) error {
			if s.d.migrationLock != "" {
				if _, err := tx.ExecContext(ctx, s.d.migrationLock); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range strings.Split(m.sql, ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", strings.TrimSpace(stmt), err)
				}
			}
			if m.fn != nil {
				if err := m.fn(ctx, s, tx); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, time.Now().Unix())
			return err
		}); err != nil {
			return fmt.Errorf("store: migration %d: %w", version, err)
		}
	}
	return nil
}

func (s *sqlStore) prepare(ctx context.Context) error {
	var err error
	if s.d.dollar {
		return nil // PostgreSQL: one insert per batch, see insertMany
	}
	// SQLite: one insert per accept, with the version check folded in
	// (?20 and ?21 are the consumer's and provider's versions it extends;
	// rows inserted earlier in the same transaction count). SQLite runs it
	// in-process, so per-row statements cost no round trips, and a separate
	// check query would cost a parse per batch.
	//
	// OR IGNORE, not ON CONFLICT DO NOTHING: a row that fails the check or
	// collides with a unique index is skipped either way (and Commit turns
	// the missing row into ErrConflict), but with ON CONFLICT the NOT NULL
	// columns keep ABORT, and an INSERT ... SELECT that may abort halfway
	// makes SQLite keep a statement journal: every page the statement
	// touches that the transaction had already changed is copied first,
	// and past 64 KiB in a transaction the copies went to a temporary file,
	// a pwrite each (15% of a group commit's CPU, a third of its write
	// system calls; TestSQLiteCommitWritesOnlyWAL). Nothing in a row is
	// ever NULL (acceptArgs), so OR IGNORE never skips a row ON CONFLICT
	// would have stored.
	var cols strings.Builder
	for i := 1; i <= insertArity; i++ {
		if i > 1 {
			cols.WriteString(", ")
		}
		cols.WriteString("?" + strconv.Itoa(i))
	}
	s.insExchange, err = s.w.PrepareContext(ctx, `INSERT OR IGNORE INTO exchanges (`+insertCols+`) SELECT `+cols.String()+`
		WHERE (?20 = 0 OR EXISTS (SELECT 1 FROM exchanges WHERE consumer = ?2 AND consumer_seq = ?20))
		AND (?21 = 0 OR EXISTS (SELECT 1 FROM exchanges WHERE provider = ?4 AND provider_seq = ?21))`)
	if err != nil {
		return fmt.Errorf("store: prepare insert: %w", err)
	}
	if s.consumerStmt, err = s.r.PrepareContext(ctx, consumerQuery); err != nil {
		return fmt.Errorf("store: prepare consumer query: %w", err)
	}
	if s.providerStmt, err = s.r.PrepareContext(ctx, providerQuery); err != nil {
		return fmt.Errorf("store: prepare provider query: %w", err)
	}
	return nil
}

func (s *sqlStore) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Committers implements ConcurrentCommitter.
func (s *sqlStore) Committers() int { return max(1, s.committers) }

// Close implements Store.
func (s *sqlStore) Close() error { return s.close() }

// consumerQuery reads a consumer's whole state in one statement (one
// round trip, one snapshot): kind 0 is its settled amount, kind 1 its
// latest journal row, kind 2 one row per (provider, agreement) with the
// highest total. Its three ? are all the consumer.
const consumerQuery = `SELECT 0, settled, '', '', 0 FROM consumer_settled WHERE consumer = ?
	UNION ALL
	SELECT 1, channel, consumer_amount, consumed, consumer_seq FROM
		(SELECT channel, consumer_amount, consumed, consumer_seq FROM exchanges WHERE consumer = ? ORDER BY consumer_seq DESC LIMIT 1) AS latest
	UNION ALL
	SELECT 2, provider, agreement_id, MAX(agreement_total), 0 FROM exchanges WHERE consumer = ? GROUP BY provider, agreement_id`

// Consumer implements Store. One statement (consumerQuery): loading a
// consumer is on the path of its first accept, and each round trip to
// PostgreSQL is a wait for the server's CPU.
func (s *sqlStore) Consumer(ctx context.Context, id common.Address) (Consumer, []Agreement, error) {
	addr := encAddr(id)
	var rows *sql.Rows
	var err error
	if s.consumerStmt != nil {
		rows, err = s.consumerStmt.QueryContext(ctx, addr, addr, addr)
	} else {
		rows, err = s.r.QueryContext(ctx, s.q(consumerQuery), addr, addr, addr)
	}
	if err != nil {
		return newConsumer(id), nil, fmt.Errorf("store: read consumer %s: %w", id.Hex(), err)
	}
	l := consumerLoad{}
	if err := l.scan(rows, false, id); err != nil {
		return newConsumer(id), nil, err
	}
	cs := l.state(id)
	return cs.Consumer, cs.Agreements, nil
}

func newConsumer(id common.Address) Consumer {
	return Consumer{Identity: id, Promised: new(big.Int), Consumed: new(big.Int), Settled: new(big.Int)}
}

// consumerLoad collects the rows of consumerQuery or consumersQuery:
// one consumer's or several consumers' state.
type consumerLoad struct {
	states map[common.Address]*ConsumerState
	latest map[common.Address]bool
}

// scan reads and closes rows: (kind, a, b, x, n) of consumerQuery for
// consumer one, or, for a batch, (kind, consumer, a, b, x, n) of
// consumersQuery.
func (l *consumerLoad) scan(rows *sql.Rows, batch bool, one common.Address) error {
	defer rows.Close()
	if l.states == nil {
		l.states, l.latest = make(map[common.Address]*ConsumerState), make(map[common.Address]bool)
	}
	for rows.Next() {
		var kind int
		var who, a, b string
		var x sql.NullString
		var n int64
		var err error
		if batch {
			err = rows.Scan(&kind, &who, &a, &b, &x, &n)
		} else {
			err = rows.Scan(&kind, &a, &b, &x, &n)
		}
		id := one
		if batch && err == nil {
			id = common.HexToAddress(who)
		}
		if err != nil {
			return fmt.Errorf("store: read consumer %s: %w", id.Hex(), err)
		}
		cs := l.states[id]
		if cs == nil {
			cs = &ConsumerState{Consumer: newConsumer(id)}
			l.states[id] = cs
		}
		c := &cs.Consumer
		switch kind {
		case 0:
			if c.Settled, err = decAmount(a); err != nil {
				return err
			}
		case 1:
			l.latest[id] = true
			c.Channel, c.Version = common.HexToAddress(a), n
			if c.Promised, err = decAmount(b); err != nil {
				return err
			}
			if !x.Valid {
				return fmt.Errorf("store: consumer %s: latest exchange has no consumed amount", id.Hex())
			}
			if c.Consumed, err = decAmount(x.String); err != nil {
				return err
			}
		case 2:
			ag := Agreement{Consumer: id, Provider: common.HexToAddress(a)}
			if ag.AgreementID, err = decAmount(b); err != nil {
				return err
			}
			if ag.Total, err = decAmount(x.String); err != nil {
				return err
			}
			cs.Agreements = append(cs.Agreements, ag)
		default:
			return fmt.Errorf("store: read consumer %s: row of kind %d", id.Hex(), kind)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read consumers: %w", err)
	}
	return nil
}

// state is id's loaded state (zero state when nothing was read for it).
func (l *consumerLoad) state(id common.Address) ConsumerState {
	cs := l.states[id]
	if cs == nil {
		return ConsumerState{Consumer: newConsumer(id)}
	}
	if !l.latest[id] {
		// No journal row: no agreements either, only (perhaps) a settled
		// amount.
		return ConsumerState{Consumer: cs.Consumer}
	}
	return *cs
}

// consumersQuery is consumerQuery for several consumers at once: $1 is
// their addresses (text[]), the consumer is the second column. The whole
// batch is one statement, so each consumer's three parts come from one
// snapshot as with consumerQuery. The journal is read per consumer
// (LATERAL): with "consumer = ANY($1)" the generic plan made on an empty
// journal scans it (TestPostgresBatchLoadsUseIndexes).
const consumersQuery = `SELECT 0, consumer, settled, '', '', 0 FROM consumer_settled WHERE consumer = ANY($1::text[])
	UNION ALL
	SELECT 1, ids.id, latest.channel, latest.consumer_amount, latest.consumed, latest.consumer_seq FROM unnest($1::text[]) AS ids(id)
		CROSS JOIN LATERAL (SELECT channel, consumer_amount, consumed, consumer_seq FROM exchanges WHERE consumer = ids.id ORDER BY consumer_seq DESC LIMIT 1) AS latest
	UNION ALL
	SELECT 2, ids.id, ag.provider, ag.agreement_id, ag.total, 0 FROM unnest($1::text[]) AS ids(id)
		CROSS JOIN LATERAL (SELECT provider, agreement_id, MAX(agreement_total) AS total FROM exchanges WHERE consumer = ids.id GROUP BY provider, agreement_id) AS ag`

// providersQuery is providerQuery for several providers at once ($1 is
// their addresses, text[]); a provider never seen has no row.
const providersQuery = `SELECT ids.id, latest.hermes_amount, latest.provider_seq,
		(SELECT COUNT(*) FROM exchanges WHERE provider = ids.id AND r IS NULL)
	FROM unnest($1::text[]) AS ids(id)
		CROSS JOIN LATERAL (SELECT hermes_amount, provider_seq FROM exchanges WHERE provider = ids.id ORDER BY provider_seq DESC LIMIT 1) AS latest`

// uniqueAddrs is ids without repeats, encoded, or an error when there
// are more than MaxLoadBatch ids.
func uniqueAddrs(ids []common.Address) ([]string, error) {
	if len(ids) > MaxLoadBatch {
		return nil, fmt.Errorf("store: %d identities in one load, at most %d", len(ids), MaxLoadBatch)
	}
	seen := make(map[common.Address]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, encAddr(id))
		}
	}
	return out, nil
}

// loadBatch is the shape of the BatchLoader methods: out[i] is ids[i]'s
// state, read by one per identity on SQLite (in process, no round trips to
// save) and by all, given the deduplicated addresses, in one statement on
// PostgreSQL.
func loadBatch[T any](ctx context.Context, s *sqlStore, ids []common.Address,
	one func(context.Context, common.Address) (T, error), all func(addrs []string, out []T) error) ([]T, error) {
	addrs, err := uniqueAddrs(ids)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(ids))
	if len(addrs) == 0 {
		return out, nil
	}
	if !s.d.dollar {
		for i, id := range ids {
			if out[i], err = one(ctx, id); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	if err := all(addrs, out); err != nil {
		return nil, err
	}
	return out, nil
}

// LoadConsumers implements BatchLoader: one statement (consumersQuery) on
// PostgreSQL, Consumer per identity on SQLite.
func (s *sqlStore) LoadConsumers(ctx context.Context, ids []common.Address) ([]ConsumerState, error) {
	one := func(ctx context.Context, id common.Address) (ConsumerState, error) {
		c, a, err := s.Consumer(ctx, id)
		return ConsumerState{Consumer: c, Agreements: a}, err
	}
	return loadBatch(ctx, s, ids, one, func(addrs []string, out []ConsumerState) error {
		rows, err := s.r.QueryContext(ctx, consumersQuery, addrs)
		if err != nil {
			return fmt.Errorf("store: read %d consumers: %w", len(addrs), err)
		}
		var l consumerLoad
		if err := l.scan(rows, true, common.Address{}); err != nil {
			return err
		}
		for i, id := range ids {
			out[i] = l.state(id)
		}
		return nil
	})
}

// LoadProviders implements BatchLoader: one statement (providersQuery) on
// PostgreSQL, Provider per identity on SQLite.
func (s *sqlStore) LoadProviders(ctx context.Context, ids []common.Address) ([]Provider, error) {
	return loadBatch(ctx, s, ids, s.Provider, func(addrs []string, out []Provider) error {
		rows, err := s.r.QueryContext(ctx, providersQuery, addrs)
		if err != nil {
			return fmt.Errorf("store: read %d providers: %w", len(addrs), err)
		}
		defer rows.Close()
		got := make(map[common.Address]Provider, len(addrs))
		for rows.Next() {
			var who, earned string
			var p Provider
			if err := rows.Scan(&who, &earned, &p.Version, &p.Unrevealed); err != nil {
				return fmt.Errorf("store: read providers: %w", err)
			}
			p.Identity = common.HexToAddress(who)
			if p.Earned, err = decAmount(earned); err != nil {
				return err
			}
			got[p.Identity] = p
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: read providers: %w", err)
		}
		for i, id := range ids {
			p, ok := got[id]
			if !ok {
				p = Provider{Identity: id, Earned: new(big.Int)}
			}
			out[i] = p
		}
		return nil
	})
}

// providerQuery reads a provider's latest journal row and its unrevealed
// count (unrevealedQuery) in one statement. Its two ? are the provider.
const providerQuery = `SELECT hermes_amount, provider_seq, (` + unrevealedQuery + `) FROM exchanges WHERE provider = ? ORDER BY provider_seq DESC LIMIT 1`

// Provider implements Store, in one statement (providerQuery).
func (s *sqlStore) Provider(ctx context.Context, id common.Address) (Provider, error) {
	p := Provider{Identity: id, Earned: new(big.Int)}
	var earned string
	addr := encAddr(id)
	var row *sql.Row
	if s.providerStmt != nil {
		row = s.providerStmt.QueryRowContext(ctx, addr, addr)
	} else {
		row = s.r.QueryRowContext(ctx, s.q(providerQuery), addr, addr)
	}
	err := row.Scan(&earned, &p.Version, &p.Unrevealed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return p, nil
	case err != nil:
		return p, fmt.Errorf("store: read provider %s: %w", id.Hex(), err)
	}
	if p.Earned, err = decAmount(earned); err != nil {
		return p, err
	}
	return p, nil
}

// unrevealedQuery counts a provider's promises whose R is not revealed,
// through the partial index exchanges_unrevealed (migration 5): its cost
// follows the unrevealed rows, not the provider's whole history
// (TestUnrevealedCountUsesPartialIndex).
const unrevealedQuery = `SELECT COUNT(*) FROM exchanges WHERE provider = ? AND r IS NULL`

const exchangeCols = `seq, digest, consumer, provider, agreement_id, agreement_total, consumer_promise, hermes_promise, exchange_signature, r, created_at,
	consumer_promise_bin, hermes_promise_bin`

// storedPromise decodes a row's promise: the binary form when the row
// has one (schema 6 on), else the JSON wire form rows had before.
func storedPromise(bin []byte, js string) (*payments.Promise, error) {
	if bin != nil {
		return decPromise(bin)
	}
	p, err := payments.DecodePromise([]byte(js))
	if err != nil {
		return nil, fmt.Errorf("store: corrupt stored promise: %w", err)
	}
	return p, nil
}

func scanExchange(row interface{ Scan(...any) error }) (Exchange, error) {
	var e Exchange
	var digest, sig, r []byte
	var consumer, provider, aid, total, cp, hp string
	var cpBin, hpBin []byte
	var created int64
	if err := row.Scan(&e.Seq, &digest, &consumer, &provider, &aid, &total, &cp, &hp, &sig, &r, &created, &cpBin, &hpBin); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return e, ErrNotFound
		}
		return e, fmt.Errorf("store: read exchange: %w", err)
	}
	if len(digest) != 32 {
		return e, fmt.Errorf("store: corrupt exchange digest of %d bytes", len(digest))
	}
	copy(e.Digest[:], digest)
	e.Consumer, e.Provider = common.HexToAddress(consumer), common.HexToAddress(provider)
	var err error
	if e.AgreementID, err = decAmount(aid); err != nil {
		return e, err
	}
	if e.AgreementTotal, err = decAmount(total); err != nil {
		return e, err
	}
	p, err := storedPromise(cpBin, cp)
	if err != nil {
		return e, fmt.Errorf("store: consumer promise: %w", err)
	}
	e.ConsumerPromise = *p
	if p, err = storedPromise(hpBin, hp); err != nil {
		return e, fmt.Errorf("store: hermes promise: %w", err)
	}
	e.HermesPromise = *p
	e.ExchangeSignature = sig
	if len(r) > 0 {
		e.R = r
	}
	e.CreatedAt = time.Unix(0, created)
	return e, nil
}

// ExchangeByDigest implements Store.
func (s *sqlStore) ExchangeByDigest(ctx context.Context, hashlock, digest [32]byte) (Exchange, error) {
	return scanExchange(s.r.QueryRowContext(ctx, s.q(`SELECT `+exchangeCols+` FROM exchanges WHERE hashlock = ? AND digest = ?`), hashlock[:], digest[:]))
}

// LatestProviderExchange implements Store.
func (s *sqlStore) LatestProviderExchange(ctx context.Context, provider common.Address) (Exchange, error) {
	return scanExchange(s.r.QueryRowContext(ctx, s.q(`SELECT `+exchangeCols+` FROM exchanges WHERE provider = ? ORDER BY provider_seq DESC LIMIT 1`), encAddr(provider)))
}

// SettleCandidate implements Store.
func (s *sqlStore) SettleCandidate(ctx context.Context, consumer common.Address) (Exchange, error) {
	return scanExchange(s.r.QueryRowContext(ctx, s.q(`SELECT `+exchangeCols+` FROM exchanges WHERE consumer = ? AND r IS NOT NULL ORDER BY promise_amount DESC, consumer_seq DESC LIMIT 1`), encAddr(consumer)))
}

// rowsAffected fails with ErrConflict unless res affected want rows.
func rowsAffected(res sql.Result, want int) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != int64(want) {
		return fmt.Errorf("%d of %d rows written: %w", n, want, ErrConflict)
	}
	return nil
}

// insertCols are the columns one accept inserts, in the order of
// acceptArgs.
const insertCols = `digest, consumer, consumer_seq, provider, provider_seq, channel, agreement_id, agreement_total, hashlock,
	consumer_amount, promise_amount, consumed, consumer_promise, hermes_amount, hermes_promise, exchange_signature, created_at,
	consumer_promise_bin, hermes_promise_bin`

// insertArity is the number of insertCols.
const insertArity = 19

// versionCheck is one identity's state version a batch extends: the row
// (consumer or provider = id, at version seq) must exist.
type versionCheck struct {
	provider bool
	id       string
	seq      int64
}

// acceptArgs encodes accepts into insert arguments (insertArity per
// accept), outside the transaction, and lists the versions the batch
// extends. Within the batch, each identity's versions must follow each
// other (v, v+1, ...); the first one's predecessor row is checked in the
// transaction.
func acceptArgs(accepts []Accept, now int64) ([]any, []versionCheck, error) {
	args := make([]any, 0, insertArity*len(accepts))
	next := make(map[versionCheck]int64, 2*len(accepts)) // key with seq 0 -> next version
	var checks []versionCheck
	extend := func(provider bool, id string, version int64) error {
		k := versionCheck{provider: provider, id: id}
		if want, seen := next[k]; seen {
			if version != want {
				return fmt.Errorf("batch extends %s version %d after version %d", id, version, want)
			}
		} else if version > 0 {
			checks = append(checks, versionCheck{provider: provider, id: id, seq: version})
		}
		next[k] = version + 1
		return nil
	}
	for i := range accepts {
		a := &accepts[i]
		e := &a.Exchange
		if e.Consumer != a.Consumer.Identity || e.Provider != a.Provider.Identity {
			return nil, nil, fmt.Errorf("accept %d names different identities in exchange and state", i)
		}
		if len(e.ExchangeSignature) == 0 {
			// NOT NULL in the journal; the SQLite insert's OR IGNORE
			// would skip the row instead of failing.
			return nil, nil, fmt.Errorf("accept %d has no exchange signature", i)
		}
		consumer, provider := encAddr(e.Consumer), encAddr(e.Provider)
		if err := extend(false, consumer, a.Consumer.Version); err != nil {
			return nil, nil, err
		}
		if err := extend(true, provider, a.Provider.Version); err != nil {
			return nil, nil, err
		}
		// Both promises in one allocation (schema 6: binary, the JSON
		// columns empty).
		buf := make([]byte, 0, 2*maxPromiseBytes)
		cp, err := encPromise(buf, &e.ConsumerPromise)
		if err != nil {
			return nil, nil, fmt.Errorf("accept %d: consumer promise: %w", i, err)
		}
		cp = cp[:len(cp):len(cp)]
		hp, err := encPromise(buf[len(cp):len(cp)], &e.HermesPromise)
		if err != nil {
			return nil, nil, fmt.Errorf("accept %d: hermes promise: %w", i, err)
		}
		args = append(args, e.Digest[:], consumer, a.Consumer.Version+1, provider, a.Provider.Version+1,
			encAddr(a.Consumer.Channel), encAmount(e.AgreementID), encAmount(e.AgreementTotal), e.ConsumerPromise.Hashlock[:],
			encAmount(a.Consumer.Promised), encAmount(e.ConsumerPromise.Amount), encAmount(a.Consumer.Consumed), "",
			encAmount(a.Provider.Earned), "", e.ExchangeSignature, now, cp, hp)
	}
	return args, checks, nil
}

// Commit implements Store. The batch goes in one transaction and any
// conflict rolls all of it back. PostgreSQL: one statement for the whole
// batch (pgCommit: one round trip instead of BEGIN, an insert per accept
// and COMMIT). SQLite: one prepared insert per accept that checks the
// version itself.
func (s *sqlStore) Commit(ctx context.Context, accepts []Accept) error {
	if len(accepts) == 0 {
		return nil
	}
	args, checks, err := acceptArgs(accepts, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: commit %d accepts: %w", len(accepts), err)
	}
	if s.d.dollar {
		if err := s.commitPostgres(ctx, args, checks); err != nil {
			return fmt.Errorf("store: commit %d accepts: %w", len(accepts), err)
		}
		return nil
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		ins := tx.StmtContext(ctx, s.insExchange)
		row := make([]any, insertArity+2)
		for i := 0; i < len(accepts); i++ {
			copy(row, args[i*insertArity:(i+1)*insertArity])
			row[insertArity], row[insertArity+1] = accepts[i].Consumer.Version, accepts[i].Provider.Version
			res, err := ins.ExecContext(ctx, row...)
			if err != nil {
				return fmt.Errorf("insert exchange: %w", err)
			}
			if err := rowsAffected(res, 1); err != nil {
				e := &accepts[i].Exchange
				return fmt.Errorf("exchange %x (consumer %s version %d, provider %s version %d): %w",
					e.Digest[:4], e.Consumer.Hex(), accepts[i].Consumer.Version, e.Provider.Hex(), accepts[i].Provider.Version, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: commit %d accepts: %w", len(accepts), err)
	}
	return nil
}

// pgCommit is the whole PostgreSQL group commit in one statement (so one
// round trip, in its own implicit transaction, prepared once per
// connection: its text never changes): the batch's rows come as one array
// per column ($1..$19, unnest), and they go in only if every state version
// the batch extends is stored ($20..$23: consumer and provider identities
// and versions, $24 their count). A row never goes in without its
// predecessor, so each consumer's and provider's rows form one unbroken
// chain whatever the writers (several committers, several hermes
// processes) do; rows are never deleted, so a predecessor seen by the
// statement stays. Two writers extending the same version collide on the
// unique (identity, seq) index, which fails the whole statement. One row
// can be both a consumer's and a provider's latest, so the two kinds are
// counted separately.
//
// Each version is looked up on its own (LATERAL ... LIMIT 1, which the
// planner cannot turn into a join), so the check is one unique-index probe
// per version whatever the planner believes about the table's size. As a
// plain join, the plan cached while the table was empty (or not yet
// analyzed) hashed the whole exchanges table on every commit: 20 ms and
// 4,000 buffer reads per commit at 20,000 rows, growing with the table
// (TestPostgresCommitPlanProbesIndexes).
const pgCommit = `INSERT INTO exchanges (` + insertCols + `)
	SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bytea[],
		$10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::bytea[], $17::bigint[], $18::bytea[], $19::bytea[])
	WHERE (SELECT COUNT(*) FROM unnest($20::text[], $21::bigint[]) AS c(id, seq),
			LATERAL (SELECT 1 FROM exchanges e WHERE e.consumer = c.id AND e.consumer_seq = c.seq LIMIT 1) AS found)
		+ (SELECT COUNT(*) FROM unnest($22::text[], $23::bigint[]) AS p(id, seq),
			LATERAL (SELECT 1 FROM exchanges e WHERE e.provider = p.id AND e.provider_seq = p.seq LIMIT 1) AS found)
		= $24`

// commitPostgres stores a batch with pgCommit: all of it, or nothing and
// ErrConflict (a version not stored, or a row another writer stored).
func (s *sqlStore) commitPostgres(ctx context.Context, args []any, checks []versionCheck) error {
	rows := len(args) / insertArity
	params := make([]any, insertArity, insertArity+5)
	for c := range params {
		switch args[c].(type) {
		case []byte:
			v := make([][]byte, rows)
			for r := range v {
				v[r] = args[r*insertArity+c].([]byte)
			}
			params[c] = v
		case string:
			v := make([]string, rows)
			for r := range v {
				v[r] = args[r*insertArity+c].(string)
			}
			params[c] = v
		case int64:
			v := make([]int64, rows)
			for r := range v {
				v[r] = args[r*insertArity+c].(int64)
			}
			params[c] = v
		default:
			return fmt.Errorf("column %d has type %T", c, args[c])
		}
	}
	ids := [2][]string{{}, {}}
	seqs := [2][]int64{{}, {}}
	for _, c := range checks {
		k := 0
		if c.provider {
			k = 1
		}
		ids[k] = append(ids[k], c.id)
		seqs[k] = append(seqs[k], c.seq)
	}
	params = append(params, ids[0], seqs[0], ids[1], seqs[1], int64(len(checks)))
	db := s.w
	if s.commit != nil {
		db = s.commit
	}
	res, err := db.ExecContext(ctx, pgCommit, params...)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == pgUniqueViolation {
			return fmt.Errorf("%s: %w", pe.Detail, ErrConflict)
		}
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("a version the batch extends is not stored: %w", ErrConflict)
	}
	if n != int64(rows) {
		// Cannot happen (the statement inserts all rows or fails), but the
		// rows are committed: say so loudly rather than report a conflict.
		return fmt.Errorf("inserted %d of %d rows", n, rows)
	}
	return nil
}

// pgUniqueViolation is PostgreSQL's SQLSTATE unique_violation.
const pgUniqueViolation = "23505"

// RevealR implements Store.
func (s *sqlStore) RevealR(ctx context.Context, provider common.Address, hashlock [32]byte, r []byte) (int, error) {
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE exchanges SET r = ? WHERE hashlock = ? AND provider = ? AND r IS NULL`), r, hashlock[:], encAddr(provider))
	if err != nil {
		return 0, fmt.Errorf("store: reveal: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: reveal: %w", err)
	}
	if n > 0 {
		return int(n), nil
	}
	var total int
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM exchanges WHERE hashlock = ? AND provider = ?`), hashlock[:], encAddr(provider)).Scan(&total); err != nil {
		return 0, fmt.Errorf("store: reveal: %w", err)
	}
	if total == 0 {
		return 0, ErrNotFound
	}
	return 0, nil
}

// Consumers implements Store.
func (s *sqlStore) Consumers(ctx context.Context) ([]Consumer, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT e.consumer, e.channel, e.consumer_amount, COALESCE(e.consumed, '0'), e.consumer_seq, COALESCE(cs.settled, '0')
		FROM exchanges e LEFT JOIN consumer_settled cs ON cs.consumer = e.consumer
		WHERE e.consumer_seq = (SELECT MAX(x.consumer_seq) FROM exchanges x WHERE x.consumer = e.consumer)
		ORDER BY e.consumer`)
	if err != nil {
		return nil, fmt.Errorf("store: list consumers: %w", err)
	}
	defer rows.Close()
	var out []Consumer
	for rows.Next() {
		var id, ch, pr, cn, st string
		var c Consumer
		if err := rows.Scan(&id, &ch, &pr, &cn, &c.Version, &st); err != nil {
			return nil, fmt.Errorf("store: list consumers: %w", err)
		}
		c.Identity, c.Channel = common.HexToAddress(id), common.HexToAddress(ch)
		if c.Promised, err = decAmount(pr); err != nil {
			return nil, err
		}
		if c.Consumed, err = decAmount(cn); err != nil {
			return nil, err
		}
		if c.Settled, err = decAmount(st); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SetSettled implements Store.
func (s *sqlStore) SetSettled(ctx context.Context, consumer common.Address, settled *big.Int, st *Settlement) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO consumer_settled (consumer, settled) VALUES (?, ?)
			ON CONFLICT (consumer) DO UPDATE SET settled = excluded.settled WHERE consumer_settled.settled < excluded.settled`),
			encAddr(consumer), encAmount(settled)); err != nil {
			return err
		}
		if st == nil {
			return nil
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO settlements (consumer, amount, tx_hash, at) VALUES (?, ?, ?, ?)`),
			encAddr(st.Consumer), encAmount(st.Amount), st.TxHash.Hex(), st.At.UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set settled of %s: %w", consumer.Hex(), err)
	}
	return nil
}

// AcquireLease implements Store. One statement decides it: the row is
// inserted, or updated when this holder already has it or its holder's
// lease has run out; otherwise nothing is written and the lease is not ours.
func (s *sqlStore) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return false, fmt.Errorf("store: acquire lease %q: empty name or holder, or ttl %v", name, ttl)
	}
	res, err := s.w.ExecContext(ctx, s.q(`INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`),
		name, holder, now.Add(ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("store: acquire lease %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: acquire lease %q: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease implements Store.
func (s *sqlStore) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM leases WHERE name = ? AND holder = ?`), name, holder); err != nil {
		return fmt.Errorf("store: release lease %q: %w", name, err)
	}
	return nil
}

// Settlements implements Store.
func (s *sqlStore) Settlements(ctx context.Context, consumer common.Address) ([]Settlement, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT amount, tx_hash, at FROM settlements WHERE consumer = ? ORDER BY id`), encAddr(consumer))
	if err != nil {
		return nil, fmt.Errorf("store: list settlements: %w", err)
	}
	defer rows.Close()
	var out []Settlement
	for rows.Next() {
		var amount, tx string
		var at int64
		if err := rows.Scan(&amount, &tx, &at); err != nil {
			return nil, fmt.Errorf("store: list settlements: %w", err)
		}
		st := Settlement{Consumer: consumer, TxHash: common.HexToHash(tx), At: time.Unix(0, at)}
		if st.Amount, err = decAmount(amount); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// Stats implements Store.
func (s *sqlStore) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM exchanges), (SELECT COUNT(DISTINCT consumer) FROM exchanges), (SELECT COUNT(DISTINCT provider) FROM exchanges),
		(SELECT COALESCE(MAX(version), 0) FROM schema_migrations)`).Scan(&st.Exchanges, &st.Consumers, &st.Providers, &st.SchemaVersion)
	if err != nil {
		return st, fmt.Errorf("store: stats: %w", err)
	}
	return st, nil
}
