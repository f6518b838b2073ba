// Package atomicfile writes files so that readers see either the old
// content or the new one, never a torn write: a temp file in the same
// directory, fsync, rename, fsync of the directory.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data (mode perm), creating its directory
// (mode 0755) if needed.
func Write(path string, data []byte, perm fs.FileMode) error {
	return write(path, data, perm, os.Rename)
}

// Create writes data to path (mode perm) only if path does not exist
// yet (an error satisfying errors.Is(err, fs.ErrExist) otherwise),
// creating its directory (mode 0755) if needed; readers never see a
// partial file.
func Create(path string, data []byte, perm fs.FileMode) error {
	return write(path, data, perm, func(tmp, path string) error {
		err := os.Link(tmp, path) // fails if path exists, unlike a rename
		_ = os.Remove(tmp)
		return err
	})
}

// write writes data to a synced temp file beside path and moves it
// there with place, then syncs the directory.
func write(path string, data []byte, perm fs.FileMode, place func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(perm)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = place(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("atomicfile: write %s: %w", path, werr)
	}
	// The rename or link itself is durable only once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		werr = d.Sync()
		_ = d.Close()
	}
	if werr != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", dir, werr)
	}
	return nil
}
