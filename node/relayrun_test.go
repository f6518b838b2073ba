package node

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// TestRunRelay: the relay runs until its context ends, says where it
// listens, and refuses to start without a public IP.
func TestRunRelay(t *testing.T) {
	if err := RunRelay(context.Background(), RelayConfig{DataDir: t.TempDir()}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "--relay.public-ip") {
		t.Fatalf("no public ip: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	cfg := RelayConfig{UDP: "127.0.0.1:0", STUNAlt: "127.0.0.1:0", PublicIP: netip.MustParseAddr("127.0.0.1"), AllowPrivate: true, DataDir: t.TempDir()}
	if err := RunRelay(ctx, cfg, out); err != nil {
		t.Fatal(err)
	}
	if s := out.b.String(); !strings.Contains(s, "stun/turn udp: 127.0.0.1:") || !strings.Contains(s, "public ip:     127.0.0.1") ||
		!strings.Contains(s, "stun alt udp:  127.0.0.1:") || !strings.Contains(s, `network file:  [nat] stun = ["stun:127.0.0.1:`) {
		t.Fatalf("said %q", s)
	}
}
