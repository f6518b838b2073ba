package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/storage"
)

// Role is which side of a session a record describes.
type Role string

// Roles of a session record.
const (
	RoleProvider Role = "provider"
	RoleConsumer Role = "consumer"
)

// Record is the durable history of one session: who, when, how many bytes
// and how much was paid. Amounts are wei as decimal strings.
type Record struct {
	// ID is the provider-chosen session id (0x hex).
	ID string `json:"id"`
	// Role is this node's side of the session.
	Role Role `json:"role"`
	// Provider and Consumer are the two identities.
	Provider common.Address `json:"provider"`
	Consumer common.Address `json:"consumer"`
	// Hermes is the payment hub of the session.
	Hermes common.Address `json:"hermes"`
	// PricePerHour and PricePerGiB are the agreed price in wei.
	PricePerHour string `json:"price_per_hour"`
	PricePerGiB  string `json:"price_per_gib"`
	// Start and End bound the session; End is zero while it runs.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Bytes is the tunnel traffic, up plus down.
	Bytes uint64 `json:"bytes"`
	// Paid is the agreement total paid (consumer: promised; provider:
	// covered by a hermes promise), in wei.
	Paid string `json:"paid"`
	// Reason is why the session ended ("" while it runs).
	Reason string `json:"reason"`
	// Path is how the tunnel's datagrams travelled: "static" (the
	// provider's UDP endpoint), "direct" or "relay" (ICE); empty in
	// records written before sessions ran ICE.
	Path string `json:"path,omitempty"`
}

// PaidInt returns Paid as a big.Int (zero when unset or malformed).
func (r Record) PaidInt() *big.Int {
	v, err := money.ParseWei(r.Paid)
	if err != nil {
		return new(big.Int)
	}
	return v
}

// Duration is End-Start, or until now while the session runs.
func (r Record) Duration(now time.Time) time.Duration {
	if r.End.IsZero() {
		return now.Sub(r.Start)
	}
	return r.End.Sub(r.Start)
}

// History stores session records durably in the node database
// (storage.BucketSessions). Every write is committed (fsynced) before the
// call returns. Safe for concurrent use.
type History struct {
	db *storage.DB
}

// NewHistory returns the session history kept in db.
func NewHistory(db *storage.DB) *History { return &History{db: db} }

var historyPrefix = []byte("session/")

func historyKey(id string) []byte { return append(append([]byte{}, historyPrefix...), id...) }

// Put stores r, replacing the record with the same ID.
func (h *History) Put(ctx context.Context, r Record) error {
	if r.ID == "" {
		return errors.New("session history: record without id")
	}
	if r.Paid == "" {
		r.Paid = "0"
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("session history: encode %s: %w", r.ID, err)
	}
	if err := h.db.Update(ctx, func(tx *storage.Tx) error {
		return tx.Put(storage.BucketSessions, historyKey(r.ID), b)
	}); err != nil {
		return fmt.Errorf("session history: store %s: %w", r.ID, err)
	}
	return nil
}

// Update applies fn to the stored record id and stores the result in one
// transaction.
func (h *History) Update(ctx context.Context, id string, fn func(*Record)) error {
	err := h.db.Update(ctx, func(tx *storage.Tx) error {
		b, ok, err := tx.Get(storage.BucketSessions, historyKey(id))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no record %s", id)
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("decode %s: %w", id, err)
		}
		fn(&r)
		nb, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return tx.Put(storage.BucketSessions, historyKey(id), nb)
	})
	if err != nil {
		return fmt.Errorf("session history: update %s: %w", id, err)
	}
	return nil
}

// Get returns the record id.
func (h *History) Get(ctx context.Context, id string) (Record, bool, error) {
	var r Record
	found, err := h.db.GetJSON(ctx, storage.BucketSessions, historyKey(id), &r)
	if err != nil {
		return Record{}, false, fmt.Errorf("session history: get %s: %w", id, err)
	}
	return r, found, nil
}

// List returns every record, newest start first.
func (h *History) List(ctx context.Context) ([]Record, error) {
	var out []Record
	err := h.db.View(ctx, func(tx *storage.Tx) error {
		return tx.ForEach(storage.BucketSessions, func(k, v []byte) error {
			if !bytes.HasPrefix(k, historyPrefix) {
				return nil
			}
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("session history: list: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	return out, nil
}
