package node

import (
	"context"
	"errors"
	"os"
	"testing"
)

// TestStandaloneTunRefusesFirst: without root RunStandaloneTun refuses
// with ErrNotRoot; as root a bad bootstrap peer is refused before any
// tunnel, chain or keystore is touched.
func TestStandaloneTunRefusesFirst(t *testing.T) {
	l := &Local{DataDir: t.TempDir()}
	err := l.RunStandaloneTun(context.Background(), StandaloneTun{Bootstrap: []string{"/ip4/192.0.2.1/tcp/1"}})
	if os.Geteuid() != 0 {
		if !errors.Is(err, ErrNotRoot) {
			t.Fatalf("err = %v, want ErrNotRoot", err)
		}
		return
	}
	if err == nil || errors.Is(err, ErrNotRoot) {
		t.Fatalf("bad bootstrap: err = %v", err)
	}
	if entries, _ := os.ReadDir(l.DataDir); len(entries) != 0 {
		t.Fatalf("data dir touched: %v", entries)
	}
}
