package quality

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/storage"
)

// FileName is the blacklist file inside a node's data dir.
const FileName = "blacklist.db"

// MaxProofs bounds the proofs a Store keeps. Anyone can convict an
// identity of their own making, so the list is keyed by remote input;
// past the cap new proofs are refused (docs/quality.md).
const MaxProofs = 20000

// ErrFull is returned (wrapped) by Store.Put when MaxProofs are stored.
var ErrFull = errors.New("quality: blacklist is full")

const bucketProofs = "fraud_proofs"

var storeMigrations = []storage.Migration{
	{Version: 1, Name: "create fraud proofs bucket", Apply: func(tx *storage.Tx) error {
		return tx.CreateBuckets(bucketProofs)
	}},
}

// Store is the durable blacklist: one verified proof per convicted
// provider identity, in its own bbolt file. The set of identities is also
// kept in memory for Blocked. It is safe for concurrent use.
type Store struct {
	db  *storage.DB
	max int

	mu      sync.RWMutex
	blocked map[common.Address]struct{}
}

// OpenStore opens (creating if needed) the blacklist at path and loads
// it. Every stored proof is verified again on load; one that no longer
// verifies (a file edited by hand) is an error.
func OpenStore(path string) (*Store, error) {
	db, err := storage.Open(path, storage.WithMigrations(storeMigrations))
	if err != nil {
		return nil, fmt.Errorf("quality: open blacklist %s: %w", path, err)
	}
	s := &Store{db: db, max: MaxProofs, blocked: map[common.Address]struct{}{}}
	err = db.View(context.Background(), func(tx *storage.Tx) error {
		return tx.ForEach(bucketProofs, func(k, v []byte) error {
			_, provider, err := DecodeProof(v)
			if err != nil {
				return fmt.Errorf("stored proof for %x: %w", k, err)
			}
			if common.BytesToAddress(k) != provider {
				return fmt.Errorf("stored proof under %x convicts %s", k, provider.Hex())
			}
			s.blocked[provider] = struct{}{}
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("quality: load blacklist %s: %w", path, err)
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Blocked reports whether provider is blacklisted.
func (s *Store) Blocked(provider common.Address) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.blocked[provider]
	return ok
}

// Len is the number of blacklisted identities.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.blocked)
}

// Put stores raw, the encoding of a proof that DecodeProof verified and
// that convicts provider, durably (fsynced) before it returns. It reports
// whether provider was new; a provider already blacklisted keeps its
// first proof.
func (s *Store) Put(ctx context.Context, provider common.Address, raw []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blocked[provider]; ok {
		return false, nil
	}
	if len(s.blocked) >= s.max {
		return false, fmt.Errorf("%w (%d identities)", ErrFull, s.max)
	}
	err := s.db.Update(ctx, func(tx *storage.Tx) error {
		return tx.Put(bucketProofs, provider.Bytes(), raw)
	})
	if err != nil {
		return false, fmt.Errorf("quality: store proof for %s: %w", provider.Hex(), err)
	}
	s.blocked[provider] = struct{}{}
	return true, nil
}

// Proofs returns up to limit stored proofs in wire form.
func (s *Store) Proofs(ctx context.Context, limit int) ([][]byte, error) {
	var out [][]byte
	errStop := errors.New("stop")
	err := s.db.View(ctx, func(tx *storage.Tx) error {
		return tx.ForEach(bucketProofs, func(_, v []byte) error {
			if len(out) >= limit {
				return errStop
			}
			out = append(out, append([]byte(nil), v...))
			return nil
		})
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("quality: read proofs: %w", err)
	}
	return out, nil
}

// Proof returns the stored proof convicting provider, in wire form.
func (s *Store) Proof(ctx context.Context, provider common.Address) ([]byte, bool, error) {
	var raw []byte
	var ok bool
	err := s.db.View(ctx, func(tx *storage.Tx) error {
		v, found, err := tx.Get(bucketProofs, provider.Bytes())
		raw, ok = append([]byte(nil), v...), found
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("quality: read proof for %s: %w", provider.Hex(), err)
	}
	return raw, ok, nil
}
