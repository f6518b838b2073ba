package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "f.json")
	if err := Write(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "two" {
		t.Fatalf("read %q %v", b, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*"))
	if len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
	// A directory where the file should be: the error names the path and
	// no temp file stays behind.
	if err := Write(filepath.Dir(path), []byte("x"), 0o644); err == nil {
		t.Fatal("replaced a directory")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(path)), ".*")); len(left) != 0 {
		t.Fatalf("temp files left after a failure: %v", left)
	}
}

// TestCreate: Create writes a new file with its mode, never replaces an
// existing one (fs.ErrExist) and leaves no temp file either way.
func TestCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "secret")
	if err := Create(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, []byte("two"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "one" {
		t.Fatalf("read %q %v", b, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}
