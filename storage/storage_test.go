package storage

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if path := os.Getenv("MYST_STORAGE_CRASH_WRITER"); path != "" {
		crashWriter(path)
		return
	}
	goleak.VerifyTestMain(m)
}

// crashWriter is the child of TestKillAfterAckKeepsData: it writes records
// forever and acknowledges each on stdout after Update returned.
func crashWriter(path string) {
	db, err := Open(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for i := uint64(0); ; i++ {
		key := binary.BigEndian.AppendUint64(nil, i)
		if err := db.Update(context.Background(), func(tx *Tx) error { return tx.Put(BucketPromises, key, []byte("promise")) }); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("ack", i)
	}
}

func TestOpenCreatesSchemaAndReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", FileName)
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.SchemaVersion()
	if err != nil || v != len(Migrations) {
		t.Fatalf("schema version = %d, %v; want %d", v, err, len(Migrations))
	}
	if err := db.PutSetting(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx *Tx) error {
		return tx.Put(BucketPromises, []byte("p1"), []byte("promise"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, ok, err := db.GetSetting(ctx, "k")
	if err != nil || !ok || string(got) != "v1" {
		t.Fatalf("setting after reopen = %q, %v, %v", got, ok, err)
	}
	var keys []string
	if err := db.View(ctx, func(tx *Tx) error {
		return tx.ForEach(BucketPromises, func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "p1" {
		t.Fatalf("promises after reopen = %v", keys)
	}
	if _, ok, _ := db.GetSetting(ctx, "missing"); ok {
		t.Fatal("missing setting reported as present")
	}
}

func TestMigrationsRunOnceInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	var runs []int
	ms := []Migration{
		{Version: 1, Name: "a", Apply: func(tx *Tx) error { runs = append(runs, 1); return tx.CreateBuckets("a") }},
		{Version: 2, Name: "b", Apply: func(tx *Tx) error { runs = append(runs, 2); return tx.Put("a", []byte("x"), []byte("y")) }},
	}
	db, err := Open(path, WithMigrations(ms[:1]))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path, WithMigrations(ms))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path, WithMigrations(ms))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if len(runs) != 2 || runs[0] != 1 || runs[1] != 2 {
		t.Fatalf("migration runs = %v, want [1 2]", runs)
	}
	if v, _ := db.SchemaVersion(); v != 2 {
		t.Fatalf("version = %d, want 2", v)
	}
}

func TestFailedMigrationRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	boom := errors.New("boom")
	ms := []Migration{
		{Version: 1, Name: "a", Apply: func(tx *Tx) error { return tx.CreateBuckets("a") }},
		{Version: 2, Name: "bad", Apply: func(tx *Tx) error {
			if err := tx.CreateBuckets("half"); err != nil {
				return err
			}
			return boom
		}},
	}
	if _, err := Open(path, WithMigrations(ms)); !errors.Is(err, boom) {
		t.Fatalf("Open with failing migration: %v, want boom", err)
	}
	db, err := Open(path, WithMigrations(ms[:1]))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(); v != 1 {
		t.Fatalf("version after failed migration = %d, want 1", v)
	}
	err = db.View(context.Background(), func(tx *Tx) error { _, _, err := tx.Get("half", []byte("x")); return err })
	if !errors.Is(err, ErrNoBucket) {
		t.Fatalf("bucket of failed migration exists: %v", err)
	}
}

func TestFutureSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	ms := append(append([]Migration(nil), Migrations...), Migration{
		Version: len(Migrations) + 1, Name: "future", Apply: func(*Tx) error { return nil },
	})
	db, err := Open(path, WithMigrations(ms))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path)
	if !errors.Is(err, ErrFutureSchema) {
		t.Fatalf("Open of newer schema: %v, want ErrFutureSchema", err)
	}
}

func TestBadMigrationListRejected(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), FileName), WithMigrations([]Migration{{Version: 2, Name: "x", Apply: func(*Tx) error { return nil }}}))
	if err == nil {
		t.Fatal("non-consecutive migration versions accepted")
	}
}

func TestLockedByOtherHandle(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = Open(path, WithLockTimeout(50_000_000))
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestTxErrors(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(ctx, func(tx *Tx) error { return tx.Put("nope", []byte("k"), []byte("v")) }); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("Put into unknown bucket: %v", err)
	}
	// A failing Update leaves nothing behind.
	boom := errors.New("boom")
	if err := db.Update(ctx, func(tx *Tx) error {
		if err := tx.Put(BucketSettings, []byte("k"), []byte("v")); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, ok, _ := db.GetSetting(ctx, "k"); ok {
		t.Fatal("rolled back write is visible")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.Update(cctx, func(*Tx) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with canceled ctx: %v", err)
	}
	if err := db.Update(ctx, func(tx *Tx) error {
		a, err := tx.NextSequence(BucketSessions)
		if err != nil {
			return err
		}
		b, err := tx.NextSequence(BucketSessions)
		if err != nil {
			return err
		}
		if b <= a {
			t.Errorf("sequence not increasing: %d then %d", a, b)
		}
		if err := tx.Delete(BucketSessions, []byte("absent")); err != nil {
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestKillAfterAckKeepsData kills a writing process with SIGKILL and checks
// that every write it had acknowledged is in the reopened database.
func TestKillAfterAckKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MYST_STORAGE_CRASH_WRITER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	last := int64(-1)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		n, ok := strings.CutPrefix(line, "ack ")
		if !ok {
			t.Fatalf("writer: %s", line)
		}
		last, _ = strconv.ParseInt(n, 10, 64)
		if last >= 30 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if last < 30 {
		t.Fatalf("writer acknowledged only up to %d", last)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	if err := db.View(context.Background(), func(tx *Tx) error {
		for i := int64(0); i <= last; i++ {
			if _, ok, err := tx.Get(BucketPromises, binary.BigEndian.AppendUint64(nil, uint64(i))); err != nil || !ok {
				return fmt.Errorf("acknowledged record %d lost (ok=%v, err=%v)", i, ok, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
