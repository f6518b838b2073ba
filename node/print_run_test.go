package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/network"
)

// cancelAfter collects what is written and cancels once it contains mark.
type cancelAfter struct {
	mu     sync.Mutex
	b      strings.Builder
	mark   string
	cancel context.CancelFunc
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if strings.Contains(w.b.String(), w.mark) {
		w.cancel()
	}
	return n, err
}

func (w *cancelAfter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestRunDevnet: `myst devnet` reports its progress, writes the network
// file it names in its usage, and stops when its context ends.
func TestRunDevnet(t *testing.T) {
	ctx := testenv.Long(t, "starts a devnet", 2*time.Minute)
	rctx, rcancel := context.WithCancel(ctx)
	out := &cancelAfter{mark: "myst demo", cancel: rcancel}
	dir := t.TempDir()
	err := RunDevnet(rctx, DevnetConfig{DataDir: dir, Providers: []ProviderSpec{}, Log: slog.New(slog.DiscardHandler)}, out)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	netFile := filepath.Join(dir, network.Dir, NetworkName+network.Ext)
	for _, want := range []string{"starting devnet", "  .. ", "devnet running", "myst proposals --network " + netFile, "stopping devnet"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in\n%s", want, s)
		}
	}
	if _, err := os.Stat(netFile); err != nil {
		t.Fatal(err)
	}
}
