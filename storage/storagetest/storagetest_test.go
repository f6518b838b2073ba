package storagetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/openmyst/openmyst/storage"
)

// TestReopenKeepsWhatWasWritten: a value put before Reopen is read after
// it, from the same file.
func TestReopenKeepsWhatWasWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), storage.FileName)
	db := Open(t, path)
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *storage.Tx) error {
		if err := tx.CreateBuckets("b"); err != nil {
			return err
		}
		return tx.Put("b", []byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	db = Reopen(t, db, path)
	var got []byte
	if err := db.View(ctx, func(tx *storage.Tx) error {
		var err error
		got, _, err = tx.Get("b", []byte("k"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if string(got) != "v" {
		t.Fatalf("after Reopen: %q, want v", got)
	}
	if Temp(t) == nil {
		t.Fatal("Temp returned no database")
	}
}
