package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestDaemon: Daemon logs in with the password file of a running server;
// without the file, with a wrong password or with nothing listening it
// answers ErrNoDaemon.
func TestDaemon(t *testing.T) {
	ctx := context.Background()
	url, pw := startServer(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Daemon(ctx, url, good, nil)
	if err != nil {
		t.Fatalf("Daemon with the password file: %v", err)
	}
	if _, err := c.Identities(ctx); err != nil {
		t.Fatalf("logged-in client: %v", err)
	}
	for name, tc := range map[string]struct{ url, file string }{
		"no password file": {url, filepath.Join(dir, "missing")},
		"wrong password":   {url, bad},
		"nothing there":    {"http://127.0.0.1:1", good},
	} {
		if _, err := Daemon(ctx, tc.url, tc.file, nil); !errors.Is(err, ErrNoDaemon) {
			t.Errorf("%s: %v, want ErrNoDaemon", name, err)
		}
	}
}
