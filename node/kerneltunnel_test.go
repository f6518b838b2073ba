package node

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tunnel"
)

// TestKernelTunnelNeedsRoot: without root the kernel tunnel refuses
// before touching anything. As root (CI) the test runs itself again as
// user nobody instead of skipping.
func TestKernelTunnelNeedsRoot(t *testing.T) {
	if testenv.AsNobody(t) {
		return
	}
	_, err := KernelTunnel(KernelConfig{})(context.Background(), tunnel.SessionConfig{}, consumer.TunnelRoute{})
	if !errors.Is(err, ErrNotRoot) {
		t.Fatalf("err = %v, want ErrNotRoot", err)
	}
}

func TestReconnectingKernelLifecycle(t *testing.T) {
	k := NewReconnectingKernel(KernelConfig{})
	if k.Connected() {
		t.Fatal("connected before any session")
	}
	// Before the first session there is no kill switch to open.
	if err := k.Prepare(context.Background(), market.Proposal{Addrs: []string{"/ip4/192.0.2.7/tcp/5000"}}); err != nil {
		t.Fatalf("Prepare before connect: %v", err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := k.Prepare(context.Background(), market.Proposal{}); !errors.Is(err, tunnel.ErrClosed) {
		t.Fatalf("Prepare after Close: %v, want ErrClosed", err)
	}
	_, err := k.Opener()(context.Background(), tunnel.SessionConfig{}, consumer.TunnelRoute{})
	want := tunnel.ErrClosed
	if os.Geteuid() != 0 {
		want = ErrNotRoot
	}
	if !errors.Is(err, want) {
		t.Fatalf("Opener after Close: %v, want %v", err, want)
	}
}
