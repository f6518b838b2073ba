package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

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
	w, r  *sql.DB
	close func() error

	insExchange, upConsumer, upProvider, upAgreement *sql.Stmt
}

// amountWidth is the fixed width amounts are stored with, so that textual
// order equals numeric order (2^256 has 78 decimal digits).
const amountWidth = 78

func encAmount(x *big.Int) string {
	if x == nil {
		x = new(big.Int)
	}
	s := x.String()
	return strings.Repeat("0", amountWidth-len(s)) + s
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

func encAddr(a common.Address) string { return strings.ToLower(a.Hex()) }

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

func (s *sqlStore) migrations() []string {
	r := strings.NewReplacer("{{BLOB}}", s.d.blob, "{{SERIAL}}", s.d.serial)
	m := []string{
		// 1: initial schema.
		`CREATE TABLE consumers (
			identity TEXT PRIMARY KEY,
			channel TEXT NOT NULL,
			promised TEXT NOT NULL,
			settled TEXT NOT NULL,
			version BIGINT NOT NULL
		);
		CREATE TABLE providers (
			identity TEXT PRIMARY KEY,
			earned TEXT NOT NULL,
			version BIGINT NOT NULL
		);
		CREATE TABLE agreements (
			consumer TEXT NOT NULL,
			provider TEXT NOT NULL,
			agreement_id TEXT NOT NULL,
			total TEXT NOT NULL,
			PRIMARY KEY (consumer, provider, agreement_id)
		);
		CREATE TABLE exchanges (
			seq {{SERIAL}},
			digest {{BLOB}} NOT NULL UNIQUE,
			consumer TEXT NOT NULL,
			provider TEXT NOT NULL,
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
		CREATE INDEX exchanges_provider_hashlock ON exchanges (provider, hashlock);
		CREATE INDEX exchanges_provider_seq ON exchanges (provider, seq);
		CREATE INDEX exchanges_consumer_amount ON exchanges (consumer, consumer_amount);
		CREATE INDEX exchanges_unrevealed ON exchanges (provider) WHERE r IS NULL;
		CREATE TABLE settlements (
			id {{SERIAL}},
			consumer TEXT NOT NULL,
			amount TEXT NOT NULL,
			tx_hash TEXT NOT NULL,
			at BIGINT NOT NULL
		);
		CREATE INDEX settlements_consumer ON settlements (consumer, id);`,
	}
	for i := range m {
		m[i] = r.Replace(m[i])
	}
	return m
}

// migrate applies every migration newer than the stored schema version,
// each in its own transaction.
func (s *sqlStore) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	for i, m := range s.migrations() {
		version := i + 1
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
			for _, stmt := range strings.Split(m, ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", strings.TrimSpace(stmt), err)
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
	prep := func(query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = s.w.PrepareContext(ctx, s.q(query))
		if err != nil {
			err = fmt.Errorf("store: prepare %q: %w", query, err)
		}
		return st
	}
	s.insExchange = prep(`INSERT INTO exchanges (digest, consumer, provider, agreement_id, agreement_total, hashlock,
		consumer_amount, consumer_promise, hermes_amount, hermes_promise, exchange_signature, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`)
	s.upConsumer = prep(`INSERT INTO consumers (identity, channel, promised, settled, version) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (identity) DO UPDATE SET channel = excluded.channel, promised = excluded.promised, version = excluded.version
		WHERE consumers.version = ?`)
	s.upProvider = prep(`INSERT INTO providers (identity, earned, version) VALUES (?, ?, ?)
		ON CONFLICT (identity) DO UPDATE SET earned = excluded.earned, version = excluded.version
		WHERE providers.version = ?`)
	s.upAgreement = prep(`INSERT INTO agreements (consumer, provider, agreement_id, total) VALUES (?, ?, ?, ?)
		ON CONFLICT (consumer, provider, agreement_id) DO UPDATE SET total = excluded.total`)
	return err
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

// Close implements Store.
func (s *sqlStore) Close() error { return s.close() }

// Consumer implements Store.
func (s *sqlStore) Consumer(ctx context.Context, id common.Address) (Consumer, []Agreement, error) {
	c := Consumer{Identity: id, Promised: new(big.Int), Settled: new(big.Int)}
	var channel, promised, settled string
	err := s.r.QueryRowContext(ctx, s.q(`SELECT channel, promised, settled, version FROM consumers WHERE identity = ?`), encAddr(id)).
		Scan(&channel, &promised, &settled, &c.Version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return c, nil, nil
	case err != nil:
		return c, nil, fmt.Errorf("store: read consumer %s: %w", id.Hex(), err)
	}
	c.Channel = common.HexToAddress(channel)
	if c.Promised, err = decAmount(promised); err != nil {
		return c, nil, err
	}
	if c.Settled, err = decAmount(settled); err != nil {
		return c, nil, err
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT provider, agreement_id, total FROM agreements WHERE consumer = ?`), encAddr(id))
	if err != nil {
		return c, nil, fmt.Errorf("store: read agreements of %s: %w", id.Hex(), err)
	}
	defer rows.Close()
	var out []Agreement
	for rows.Next() {
		var p, aid, total string
		if err := rows.Scan(&p, &aid, &total); err != nil {
			return c, nil, fmt.Errorf("store: read agreements: %w", err)
		}
		a := Agreement{Consumer: id, Provider: common.HexToAddress(p)}
		if a.AgreementID, err = decAmount(aid); err != nil {
			return c, nil, err
		}
		if a.Total, err = decAmount(total); err != nil {
			return c, nil, err
		}
		out = append(out, a)
	}
	return c, out, rows.Err()
}

// Provider implements Store.
func (s *sqlStore) Provider(ctx context.Context, id common.Address) (Provider, error) {
	p := Provider{Identity: id, Earned: new(big.Int)}
	var earned string
	err := s.r.QueryRowContext(ctx, s.q(`SELECT earned, version FROM providers WHERE identity = ?`), encAddr(id)).Scan(&earned, &p.Version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return p, nil
	case err != nil:
		return p, fmt.Errorf("store: read provider %s: %w", id.Hex(), err)
	}
	if p.Earned, err = decAmount(earned); err != nil {
		return p, err
	}
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM exchanges WHERE provider = ? AND r IS NULL`), encAddr(id)).Scan(&p.Unrevealed); err != nil {
		return p, fmt.Errorf("store: count unrevealed of %s: %w", id.Hex(), err)
	}
	return p, nil
}

const exchangeCols = `seq, digest, consumer, provider, agreement_id, agreement_total, consumer_promise, hermes_promise, exchange_signature, r, created_at`

func scanExchange(row interface{ Scan(...any) error }) (Exchange, error) {
	var e Exchange
	var digest, sig, r []byte
	var consumer, provider, aid, total, cp, hp string
	var created int64
	if err := row.Scan(&e.Seq, &digest, &consumer, &provider, &aid, &total, &cp, &hp, &sig, &r, &created); err != nil {
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
	p, err := payments.DecodePromise([]byte(cp))
	if err != nil {
		return e, fmt.Errorf("store: corrupt consumer promise: %w", err)
	}
	e.ConsumerPromise = *p
	if p, err = payments.DecodePromise([]byte(hp)); err != nil {
		return e, fmt.Errorf("store: corrupt hermes promise: %w", err)
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
func (s *sqlStore) ExchangeByDigest(ctx context.Context, digest [32]byte) (Exchange, error) {
	return scanExchange(s.r.QueryRowContext(ctx, s.q(`SELECT `+exchangeCols+` FROM exchanges WHERE digest = ?`), digest[:]))
}

// LatestProviderExchange implements Store.
func (s *sqlStore) LatestProviderExchange(ctx context.Context, provider common.Address) (Exchange, error) {
	return scanExchange(s.r.QueryRowContext(ctx, s.q(`SELECT `+exchangeCols+` FROM exchanges WHERE provider = ? ORDER BY seq DESC LIMIT 1`), encAddr(provider)))
}

// SettleCandidate implements Store.
func (s *sqlStore) SettleCandidate(ctx context.Context, consumer common.Address) (Exchange, error) {
	return scanExchange(s.r.QueryRowContext(ctx, s.q(`SELECT `+exchangeCols+` FROM exchanges WHERE consumer = ? AND r IS NOT NULL ORDER BY consumer_amount DESC LIMIT 1`), encAddr(consumer)))
}

func rowsOne(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return ErrConflict
	}
	return nil
}

// Commit implements Store.
func (s *sqlStore) Commit(ctx context.Context, accepts []Accept) error {
	if len(accepts) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ins, upC, upP, upA := tx.StmtContext(ctx, s.insExchange), tx.StmtContext(ctx, s.upConsumer), tx.StmtContext(ctx, s.upProvider), tx.StmtContext(ctx, s.upAgreement)
		now := time.Now().UnixNano()
		for i := range accepts {
			a := &accepts[i]
			e := &a.Exchange
			cp, err := e.ConsumerPromise.MarshalJSON()
			if err != nil {
				return err
			}
			hp, err := e.HermesPromise.MarshalJSON()
			if err != nil {
				return err
			}
			res, err := ins.ExecContext(ctx, e.Digest[:], encAddr(e.Consumer), encAddr(e.Provider), encAmount(e.AgreementID), encAmount(e.AgreementTotal),
				e.ConsumerPromise.Hashlock[:], encAmount(e.ConsumerPromise.Amount), string(cp), encAmount(e.HermesPromise.Amount), string(hp), e.ExchangeSignature, now)
			if err != nil {
				return fmt.Errorf("insert exchange: %w", err)
			}
			if err := rowsOne(res); err != nil {
				return fmt.Errorf("exchange %x already stored: %w", e.Digest[:4], err)
			}
			c := &a.Consumer
			if res, err = upC.ExecContext(ctx, encAddr(c.Identity), encAddr(c.Channel), encAmount(c.Promised), encAmount(c.Settled), c.Version+1, c.Version); err != nil {
				return fmt.Errorf("upsert consumer: %w", err)
			}
			if err := rowsOne(res); err != nil {
				return fmt.Errorf("consumer %s version %d: %w", c.Identity.Hex(), c.Version, err)
			}
			p := &a.Provider
			if res, err = upP.ExecContext(ctx, encAddr(p.Identity), encAmount(p.Earned), p.Version+1, p.Version); err != nil {
				return fmt.Errorf("upsert provider: %w", err)
			}
			if err := rowsOne(res); err != nil {
				return fmt.Errorf("provider %s version %d: %w", p.Identity.Hex(), p.Version, err)
			}
			ag := &a.Agreement
			if _, err := upA.ExecContext(ctx, encAddr(ag.Consumer), encAddr(ag.Provider), encAmount(ag.AgreementID), encAmount(ag.Total)); err != nil {
				return fmt.Errorf("upsert agreement: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: commit %d accepts: %w", len(accepts), err)
	}
	return nil
}

// RevealR implements Store.
func (s *sqlStore) RevealR(ctx context.Context, provider common.Address, hashlock [32]byte, r []byte) (int, error) {
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE exchanges SET r = ? WHERE provider = ? AND hashlock = ? AND r IS NULL`), r, encAddr(provider), hashlock[:])
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
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM exchanges WHERE provider = ? AND hashlock = ?`), encAddr(provider), hashlock[:]).Scan(&total); err != nil {
		return 0, fmt.Errorf("store: reveal: %w", err)
	}
	if total == 0 {
		return 0, ErrNotFound
	}
	return 0, nil
}

// Consumers implements Store.
func (s *sqlStore) Consumers(ctx context.Context) ([]Consumer, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT identity, channel, promised, settled, version FROM consumers ORDER BY identity`)
	if err != nil {
		return nil, fmt.Errorf("store: list consumers: %w", err)
	}
	defer rows.Close()
	var out []Consumer
	for rows.Next() {
		var id, ch, pr, st string
		var c Consumer
		if err := rows.Scan(&id, &ch, &pr, &st, &c.Version); err != nil {
			return nil, fmt.Errorf("store: list consumers: %w", err)
		}
		c.Identity, c.Channel = common.HexToAddress(id), common.HexToAddress(ch)
		if c.Promised, err = decAmount(pr); err != nil {
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
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE consumers SET settled = ? WHERE identity = ? AND settled < ?`),
			encAmount(settled), encAddr(consumer), encAmount(settled)); err != nil {
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
	err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM exchanges), (SELECT COUNT(*) FROM consumers), (SELECT COUNT(*) FROM providers),
		(SELECT COALESCE(MAX(version), 0) FROM schema_migrations)`).Scan(&st.Exchanges, &st.Consumers, &st.Providers, &st.SchemaVersion)
	if err != nil {
		return st, fmt.Errorf("store: stats: %w", err)
	}
	return st, nil
}
