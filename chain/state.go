package chain

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/storage"
)

// PendingTx is a transaction a Transactor has signed for one nonce, with
// every fee-bumped replacement of it, oldest first. Any of them being mined
// completes it.
type PendingTx struct {
	// From is the sending account.
	From common.Address
	// Nonce is the account nonce all versions share.
	Nonce uint64
	// Op names the operation (for logs and errors).
	Op string
	// Txs are the signed versions, oldest first; the last is the newest.
	Txs []*types.Transaction
	// Created is when the first version was signed.
	Created time.Time
}

// Latest is the newest version.
func (p *PendingTx) Latest() *types.Transaction { return p.Txs[len(p.Txs)-1] }

// PendingStore keeps a Transactor's pending transactions durably: a
// version is stored before it is broadcast, and the record is deleted once
// one version is mined (or the nonce is known to be spent otherwise).
type PendingStore interface {
	// PutPending creates or replaces the record of (p.From, p.Nonce).
	PutPending(ctx context.Context, p *PendingTx) error
	// DeletePending removes the record of (from, nonce); missing is not an error.
	DeletePending(ctx context.Context, from common.Address, nonce uint64) error
	// PendingTxs lists from's records in nonce order.
	PendingTxs(ctx context.Context, from common.Address) ([]*PendingTx, error)
}

// BlockRef names one block.
type BlockRef struct {
	// Number is the block height.
	Number uint64 `json:"number"`
	// Hash is the block hash.
	Hash common.Hash `json:"hash"`
}

// WatchState is a LogWatcher's durable position.
type WatchState struct {
	// Next is the first block whose logs have not been delivered.
	Next uint64 `json:"next"`
	// Recent are delivered blocks inside the reorg window, ascending: the
	// last block of each delivered range and every block with a delivered
	// log. A changed hash among them means a reorg.
	Recent []BlockRef `json:"recent"`
	// Logs are the delivered logs inside the reorg window; on a reorg the
	// ones in dropped blocks are delivered again with Removed set.
	Logs []types.Log `json:"logs"`
}

// WatchStore keeps LogWatcher positions durably, by watcher name.
type WatchStore interface {
	// LoadWatch returns the state saved under name and whether there is one.
	LoadWatch(ctx context.Context, name string) (WatchState, bool, error)
	// SaveWatch durably replaces the state saved under name.
	SaveWatch(ctx context.Context, name string, st WatchState) error
}

// Buckets of the chain state database.
const (
	bucketPending = "chain_pending"
	bucketWatch   = "chain_watch"
)

// stateMigrations is the schema history of the chain state file. Append only.
var stateMigrations = []storage.Migration{
	{Version: 1, Name: "create pending transaction and watcher buckets", Apply: func(tx *storage.Tx) error {
		return tx.CreateBuckets(bucketPending, bucketWatch)
	}},
}

// StateDB is a small bbolt file (through the storage package) holding a
// Transactor's pending transactions and LogWatcher positions. It implements
// PendingStore and WatchStore; writes are fsynced before they return.
type StateDB struct {
	db *storage.DB
}

var (
	_ PendingStore = (*StateDB)(nil)
	_ WatchStore   = (*StateDB)(nil)
)

// OpenStateDB opens (creating if needed) the chain state file at path. One
// process may have it open at a time.
func OpenStateDB(path string) (*StateDB, error) {
	db, err := storage.Open(path, storage.WithMigrations(stateMigrations))
	if err != nil {
		return nil, fmt.Errorf("chain: open state %s: %w", path, err)
	}
	return &StateDB{db: db}, nil
}

// LockStateDB opens the chain state file at path like OpenStateDB, waiting
// (bounded by ctx) while another process has it open.
func LockStateDB(ctx context.Context, path string) (*StateDB, error) {
	for {
		s, err := tryStateDB(path)
		if !errors.Is(err, storage.ErrLocked) {
			return s, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("chain: state %s is held by another process: %w", path, ctx.Err())
		}
	}
}

// stateLockPoll is how long one attempt of LockStateDB waits for the file.
const stateLockPoll = 250 * time.Millisecond

// tryStateDB opens the file at path if no other process has it within
// stateLockPoll (else an error wrapping storage.ErrLocked).
func tryStateDB(path string) (*StateDB, error) {
	db, err := storage.Open(path, storage.WithMigrations(stateMigrations), storage.WithLockTimeout(stateLockPoll))
	switch {
	case errors.Is(err, storage.ErrLocked):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("chain: open state %s: %w", path, err)
	}
	return &StateDB{db: db}, nil
}

// PendingFileLock is a PendingLock over the chain state file at path
// (LockStateDB): each process taking it waits for the others to close it.
// log (may be nil) hears when a wait begins.
func PendingFileLock(path string, log *slog.Logger) PendingLock {
	return func(ctx context.Context) (PendingStore, func() error, error) {
		s, err := tryStateDB(path)
		if errors.Is(err, storage.ErrLocked) {
			if log != nil {
				log.Info("chain: another process is sending from this account; waiting for it", "state", path)
			}
			s, err = LockStateDB(ctx, path)
		}
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
}

// Close closes the file.
func (s *StateDB) Close() error { return s.db.Close() }

type pendingRecord struct {
	Op      string          `json:"op"`
	Created time.Time       `json:"created"`
	Txs     []hexutil.Bytes `json:"txs"`
}

func pendingKey(from common.Address, nonce uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), from.Bytes()...), nonce)
}

// PutPending implements PendingStore.
func (s *StateDB) PutPending(ctx context.Context, p *PendingTx) error {
	rec := pendingRecord{Op: p.Op, Created: p.Created}
	for _, tx := range p.Txs {
		raw, err := tx.MarshalBinary()
		if err != nil {
			return fmt.Errorf("chain: encode pending tx %s: %w", tx.Hash().Hex(), err)
		}
		rec.Txs = append(rec.Txs, raw)
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("chain: encode pending record: %w", err)
	}
	if err := s.db.Update(ctx, func(tx *storage.Tx) error { return tx.Put(bucketPending, pendingKey(p.From, p.Nonce), val) }); err != nil {
		return fmt.Errorf("chain: store pending tx %s/%d: %w", p.From.Hex(), p.Nonce, err)
	}
	return nil
}

// DeletePending implements PendingStore.
func (s *StateDB) DeletePending(ctx context.Context, from common.Address, nonce uint64) error {
	if err := s.db.Update(ctx, func(tx *storage.Tx) error { return tx.Delete(bucketPending, pendingKey(from, nonce)) }); err != nil {
		return fmt.Errorf("chain: delete pending tx %s/%d: %w", from.Hex(), nonce, err)
	}
	return nil
}

// PendingTxs implements PendingStore.
func (s *StateDB) PendingTxs(ctx context.Context, from common.Address) ([]*PendingTx, error) {
	var out []*PendingTx
	err := s.db.View(ctx, func(tx *storage.Tx) error {
		return tx.ForEach(bucketPending, func(k, v []byte) error {
			if len(k) != common.AddressLength+8 {
				return fmt.Errorf("pending key of %d bytes", len(k))
			}
			if common.BytesToAddress(k[:common.AddressLength]) != from {
				return nil
			}
			var rec pendingRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode pending record: %w", err)
			}
			if len(rec.Txs) == 0 {
				return errors.New("pending record without transactions")
			}
			p := &PendingTx{From: from, Nonce: binary.BigEndian.Uint64(k[common.AddressLength:]), Op: rec.Op, Created: rec.Created}
			for _, raw := range rec.Txs {
				t := new(types.Transaction)
				if err := t.UnmarshalBinary(raw); err != nil {
					return fmt.Errorf("decode pending tx: %w", err)
				}
				if t.Nonce() != p.Nonce {
					return fmt.Errorf("pending tx %s has nonce %d, record %d", t.Hash().Hex(), t.Nonce(), p.Nonce)
				}
				p.Txs = append(p.Txs, t)
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("chain: read pending txs: %w", err)
	}
	return out, nil
}

// LoadWatch implements WatchStore.
func (s *StateDB) LoadWatch(ctx context.Context, name string) (WatchState, bool, error) {
	var st WatchState
	ok, err := s.db.GetJSON(ctx, bucketWatch, []byte(name), &st)
	if err != nil {
		return WatchState{}, false, fmt.Errorf("chain: load watcher %q: %w", name, err)
	}
	return st, ok, nil
}

// SaveWatch implements WatchStore.
func (s *StateDB) SaveWatch(ctx context.Context, name string, st WatchState) error {
	val, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("chain: encode watcher %q: %w", name, err)
	}
	if err := s.db.Update(ctx, func(tx *storage.Tx) error { return tx.Put(bucketWatch, []byte(name), val) }); err != nil {
		return fmt.Errorf("chain: save watcher %q: %w", name, err)
	}
	return nil
}
