package storage

import (
	"context"
	"path/filepath"
	"testing"
)

func TestGetJSON(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "node.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type rec struct{ N int }
	v := rec{N: 7}
	if ok, err := db.GetJSON(ctx, BucketSessions, []byte("absent"), &v); ok || err != nil || v.N != 7 {
		t.Fatalf("absent key: ok=%v err=%v v=%+v, want false, nil, untouched", ok, err, v)
	}
	if err := db.Update(ctx, func(tx *Tx) error {
		if err := tx.Put(BucketSessions, []byte("good"), []byte(`{"N":42}`)); err != nil {
			return err
		}
		return tx.Put(BucketSessions, []byte("bad"), []byte(`{"N":`))
	}); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.GetJSON(ctx, BucketSessions, []byte("good"), &v); !ok || err != nil || v.N != 42 {
		t.Fatalf("good key: ok=%v err=%v v=%+v, want true, nil, 42", ok, err, v)
	}
	if _, err := db.GetJSON(ctx, BucketSessions, []byte("bad"), &v); err == nil {
		t.Fatal("a value that is no JSON decoded without error")
	}
	if _, err := db.GetJSON(ctx, "no-such-bucket", []byte("k"), &v); err == nil {
		t.Fatal("an unknown bucket read without error")
	}
}
