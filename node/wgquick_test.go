package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/tunnel/userspace"
)

// TestRunWGQuickRefusesBadFiles: a missing file and a wg-quick file with
// keys a userspace tunnel cannot honour (PostUp) are refused before any
// tunnel comes up.
func TestRunWGQuickRefusesBadFiles(t *testing.T) {
	ctx := context.Background()
	if err := RunWGQuick(ctx, filepath.Join(t.TempDir(), "none.conf"), userspace.ClientConfig{}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "read wg-quick config") {
		t.Fatalf("missing file: %v", err)
	}
	f := filepath.Join(t.TempDir(), "s.conf")
	if err := os.WriteFile(f, []byte("[Interface]\nPostUp = id\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := RunWGQuick(ctx, f, userspace.ClientConfig{}, &out); err == nil || !strings.Contains(err.Error(), "unsupported key") || out.Len() != 0 {
		t.Fatalf("PostUp: %v, said %q", err, out.String())
	}
}
