package consumer

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/openmyst/openmyst/tunnel"
)

func TestControlAddrsOfNonLibp2pStream(t *testing.T) {
	if got := controlAddrs(struct{}{}); got != nil {
		t.Fatalf("controlAddrs(non-stream) = %v, want nil", got)
	}
}

func TestKernelTunnelNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: the root check cannot fail here (the kernel tunnel itself is tested in node's netns end-to-end test)")
	}
	_, err := KernelTunnel(KernelConfig{})(context.Background(), tunnel.SessionConfig{}, nil)
	if !errors.Is(err, ErrNotRoot) {
		t.Fatalf("err = %v, want ErrNotRoot", err)
	}
}
