package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/storage"
)

// ErrUnknownHashlock is returned for a hashlock this node never created.
var ErrUnknownHashlock = errors.New("hermes client: unknown hashlock")

// Entry is the provider's durable record of one secret R.
type Entry struct {
	// Hashlock is keccak256(R).
	Hashlock [32]byte
	// R is the secret.
	R [32]byte
	// Message is the exchange message (JSON wire form) sent to the hermes
	// for this hashlock, nil until one is sent.
	Message []byte
	// Promise is the hermes promise (JSON wire form) received, nil until then.
	Promise []byte
	// Revealed is set once the hermes acknowledged R.
	Revealed bool
	// Created is when R was generated.
	Created time.Time
}

// HashlockStore keeps Entries durably: every write has reached the disk
// when it returns.
type HashlockStore interface {
	// Put stores a new entry.
	Put(ctx context.Context, e Entry) error
	// Get returns the entry for hashlock, or ErrUnknownHashlock.
	Get(ctx context.Context, hashlock [32]byte) (Entry, error)
	// Update replaces an existing entry.
	Update(ctx context.Context, e Entry) error
	// Unfinished lists entries with a message whose R is not revealed yet.
	Unfinished(ctx context.Context) ([]Entry, error)
	// Promised lists entries holding a hermes promise.
	Promised(ctx context.Context) ([]Entry, error)
}

// Bucket is the storage bucket the StorageHashlocks use.
const Bucket = "hermes_hashlocks"

// StorageHashlocks is a HashlockStore in the node database (storage
// package, bbolt: every committed update is fsynced).
type StorageHashlocks struct {
	db *storage.DB
}

// NewStorageHashlocks returns a HashlockStore in db, creating its bucket.
func NewStorageHashlocks(ctx context.Context, db *storage.DB) (*StorageHashlocks, error) {
	if err := db.Update(ctx, func(tx *storage.Tx) error { return tx.CreateBuckets(Bucket) }); err != nil {
		return nil, fmt.Errorf("hermes client: create bucket: %w", err)
	}
	return &StorageHashlocks{db: db}, nil
}

type entryJSON struct {
	R        string          `json:"r"`
	Message  json.RawMessage `json:"message,omitempty"`
	Promise  json.RawMessage `json:"promise,omitempty"`
	Revealed bool            `json:"revealed"`
	Created  time.Time       `json:"created"`
}

func encodeEntry(e Entry) ([]byte, error) {
	return json.Marshal(entryJSON{R: "0x" + hex.EncodeToString(e.R[:]), Message: e.Message, Promise: e.Promise, Revealed: e.Revealed, Created: e.Created})
}

func decodeEntry(key, v []byte) (Entry, error) {
	var e Entry
	var j entryJSON
	if len(key) != 32 {
		return e, fmt.Errorf("hermes client: corrupt hashlock key of %d bytes", len(key))
	}
	if err := json.Unmarshal(v, &j); err != nil {
		return e, fmt.Errorf("hermes client: corrupt entry: %w", err)
	}
	copy(e.Hashlock[:], key)
	r, err := hex.DecodeString(trim0x(j.R))
	if err != nil || len(r) != 32 {
		return e, errors.New("hermes client: corrupt secret")
	}
	copy(e.R[:], r)
	if payments.Hashlock(e.R[:]) != e.Hashlock {
		return e, errors.New("hermes client: stored secret does not match its hashlock")
	}
	e.Message, e.Promise, e.Revealed, e.Created = j.Message, j.Promise, j.Revealed, j.Created
	return e, nil
}

func trim0x(s string) string {
	if len(s) >= 2 && s[:2] == "0x" {
		return s[2:]
	}
	return s
}

// Put implements HashlockStore.
func (s *StorageHashlocks) Put(ctx context.Context, e Entry) error {
	return s.db.Update(ctx, func(tx *storage.Tx) error { return PutTx(tx, e) })
}

// PutTx is Put inside a caller's storage transaction (the bucket must
// exist: NewStorageHashlocks creates it), so a node can write the entry
// together with other records in one durable commit.
func PutTx(tx *storage.Tx, e Entry) error {
	v, err := encodeEntry(e)
	if err != nil {
		return err
	}
	_, ok, err := tx.Get(Bucket, e.Hashlock[:])
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("hermes client: hashlock %x already stored", e.Hashlock[:4])
	}
	return tx.Put(Bucket, e.Hashlock[:], v)
}

// Get implements HashlockStore.
func (s *StorageHashlocks) Get(ctx context.Context, hashlock [32]byte) (Entry, error) {
	var e Entry
	err := s.db.View(ctx, func(tx *storage.Tx) error {
		v, ok, err := tx.Get(Bucket, hashlock[:])
		if err != nil {
			return err
		}
		if !ok {
			return ErrUnknownHashlock
		}
		e, err = decodeEntry(hashlock[:], v)
		return err
	})
	return e, err
}

// Update implements HashlockStore.
func (s *StorageHashlocks) Update(ctx context.Context, e Entry) error {
	v, err := encodeEntry(e)
	if err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *storage.Tx) error {
		_, ok, err := tx.Get(Bucket, e.Hashlock[:])
		if err != nil {
			return err
		}
		if !ok {
			return ErrUnknownHashlock
		}
		return tx.Put(Bucket, e.Hashlock[:], v)
	})
}

// Unfinished implements HashlockStore.
func (s *StorageHashlocks) Unfinished(ctx context.Context) ([]Entry, error) {
	return s.list(ctx, func(e Entry) bool { return e.Message != nil && !e.Revealed })
}

// Promised implements HashlockStore.
func (s *StorageHashlocks) Promised(ctx context.Context) ([]Entry, error) {
	return s.list(ctx, func(e Entry) bool { return e.Message != nil && e.Promise != nil })
}

// list returns the entries keep selects.
func (s *StorageHashlocks) list(ctx context.Context, keep func(Entry) bool) ([]Entry, error) {
	var out []Entry
	err := s.db.View(ctx, func(tx *storage.Tx) error {
		return tx.ForEach(Bucket, func(k, v []byte) error {
			e, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			if keep(e) {
				out = append(out, e)
			}
			return nil
		})
	})
	return out, err
}
