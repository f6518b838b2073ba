package transactor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ethereum/go-ethereum/common"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Redemption states.
const (
	// StateClaimed: recorded, the chain not touched yet (or it failed
	// before anything was sent and the claim is being released).
	StateClaimed = "claimed"
	// StateDone: top-up and registration went through.
	StateDone = "done"
	// StateFailed: the top-up went through but the registration did not;
	// the voucher stays spent (its money is in the consumer's channel).
	StateFailed = "failed"
)

// Errors of the redemption store (wrapped).
var (
	// ErrRedeemed: the voucher was redeemed before.
	ErrRedeemed = errors.New("transactor: voucher already redeemed")
	// ErrSponsorCap: the sponsor reached its cap of redeemed vouchers.
	ErrSponsorCap = errors.New("transactor: sponsor reached its voucher cap")
)

// Store is the durable record of voucher redemptions (SQLite, WAL,
// synchronous=FULL): a claim is committed before the chain is touched, so
// a voucher is honoured once across restarts.
type Store struct{ db *sql.DB }

// OpenStore opens (creating) the SQLite file at path.
func OpenStore(path string) (*Store, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("transactor: open store: %w", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS redemptions (
		id BLOB PRIMARY KEY, sponsor TEXT NOT NULL, identity TEXT NOT NULL, amount TEXT NOT NULL,
		state TEXT NOT NULL, created INTEGER NOT NULL)`); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("transactor: create store schema: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Claim records v as being redeemed by ident, unless it was redeemed
// before (ErrRedeemed) or its sponsor has maxPerSponsor redemptions
// (ErrSponsorCap). It returns once the record is durable.
func (s *Store) Claim(ctx context.Context, v Voucher, ident common.Address, maxPerSponsor int, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("transactor: claim voucher: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM redemptions WHERE id = ?`, v.ID[:]).Scan(&n); err != nil {
		return fmt.Errorf("transactor: claim voucher: %w", err)
	}
	if n > 0 {
		return ErrRedeemed
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM redemptions WHERE sponsor = ?`, v.Sponsor.Hex()).Scan(&n); err != nil {
		return fmt.Errorf("transactor: claim voucher: %w", err)
	}
	if n >= maxPerSponsor {
		return fmt.Errorf("%w (%d)", ErrSponsorCap, maxPerSponsor)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO redemptions (id, sponsor, identity, amount, state, created) VALUES (?, ?, ?, ?, ?, ?)`,
		v.ID[:], v.Sponsor.Hex(), ident.Hex(), dec(v.Amount), StateClaimed, now.Unix()); err != nil {
		return fmt.Errorf("transactor: claim voucher: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("transactor: claim voucher: %w", err)
	}
	return nil
}

// Release deletes a claim whose redemption failed before anything was
// sent, so the voucher can be redeemed again.
func (s *Store) Release(ctx context.Context, id [16]byte) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM redemptions WHERE id = ? AND state = ?`, id[:], StateClaimed); err != nil {
		return fmt.Errorf("transactor: release voucher: %w", err)
	}
	return nil
}

// SetState records the outcome of a claimed redemption.
func (s *Store) SetState(ctx context.Context, id [16]byte, state string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE redemptions SET state = ? WHERE id = ?`, state, id[:]); err != nil {
		return fmt.Errorf("transactor: voucher state: %w", err)
	}
	return nil
}

// State is the recorded state of voucher id ("" when never claimed).
func (s *Store) State(ctx context.Context, id [16]byte) (string, error) {
	var st string
	err := s.db.QueryRowContext(ctx, `SELECT state FROM redemptions WHERE id = ?`, id[:]).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("transactor: voucher state: %w", err)
	}
	return st, nil
}
