package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if s, err := ReadSecretFile(write("crlf", "hunter2 \r\n"), "passphrase"); err != nil || s != "hunter2 " {
		t.Fatalf("ReadSecretFile = %q, %v; want %q (only the line end removed)", s, err, "hunter2 ")
	}
	if _, err := ReadSecretFile(write("empty", "\n"), "password"); err == nil || !strings.Contains(err.Error(), "password file") || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty secret: %v", err)
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing"), "passphrase"); err == nil || !strings.HasPrefix(err.Error(), "read passphrase file: ") {
		t.Fatalf("missing file: %v", err)
	}
}
