package session

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/storage"
	"github.com/openmyst/openmyst/storage/storagetest"
)

func TestHistoryDurableAndOrdered(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), storage.FileName)
	db := storagetest.Open(t, path)
	h := NewHistory(db)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"0xaa", "0xbb", "0xcc"} {
		if err := h.Put(ctx, Record{ID: id, Role: RoleProvider, Consumer: common.HexToAddress("0x01"), Start: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Update(ctx, "0xbb", func(r *Record) { r.Paid, r.Bytes, r.End = "12345", 99, t0.Add(5*time.Minute) }); err != nil {
		t.Fatal(err)
	}
	if err := h.Update(ctx, "0xdd", func(*Record) {}); err == nil {
		t.Fatal("update of a missing record succeeded")
	}
	if err := h.Put(ctx, Record{}); err == nil {
		t.Fatal("record without id stored")
	}
	// Reopen: everything written is still there.
	db = storagetest.Reopen(t, db, path)
	h = NewHistory(db)
	rs, err := h.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[0].ID != "0xcc" || rs[2].ID != "0xaa" {
		t.Fatalf("list %+v: want 3 records, newest first", rs)
	}
	r, ok, err := h.Get(ctx, "0xbb")
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if r.PaidInt().Int64() != 12345 || r.Bytes != 99 || r.Duration(time.Time{}) != 4*time.Minute {
		t.Fatalf("record %+v", r)
	}
	if r0, _, _ := h.Get(ctx, "0xaa"); r0.Paid != "0" || r0.PaidInt().Sign() != 0 {
		t.Fatalf("unpaid record has paid %q", r0.Paid)
	}
	if _, ok, _ := h.Get(ctx, "0xee"); ok {
		t.Fatal("missing record found")
	}
}
