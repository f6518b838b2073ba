// Package storagetest opens the node database (storage.DB) for tests: one
// that fails the test when it cannot open and is closed when the test
// ends, and the close-and-open-again of a test that checks what survives
// a restart. Tests only; no production code imports it.
package storagetest

import (
	"path/filepath"
	"testing"

	"github.com/openmyst/openmyst/storage"
)

// Open opens the node database at path (created if missing), failing tb
// if it cannot; it is closed when the test ends.
func Open(tb testing.TB, path string) *storage.DB {
	tb.Helper()
	db, err := storage.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// Temp is Open on a fresh database in a temporary directory of the test.
func Temp(tb testing.TB) *storage.DB {
	tb.Helper()
	return Open(tb, filepath.Join(tb.TempDir(), storage.FileName))
}

// Reopen closes db, failing tb if that fails, and opens the database at
// path again (closed when the test ends): what a restarted process reads.
func Reopen(tb testing.TB, db *storage.DB, path string) *storage.DB {
	tb.Helper()
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	return Open(tb, path)
}
