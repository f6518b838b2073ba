package consumer

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/tunnel"
)

func TestControlAddrsOfNonLibp2pStream(t *testing.T) {
	if got := controlAddrs(struct{}{}); got != nil {
		t.Fatalf("controlAddrs(non-stream) = %v, want nil", got)
	}
}

// TestKernelTunnelNeedsRoot: without root the kernel tunnel refuses
// before touching anything. As root (CI) the test runs itself again as
// user nobody instead of skipping.
func TestKernelTunnelNeedsRoot(t *testing.T) {
	if testenv.AsNobody(t) {
		return
	}
	_, err := KernelTunnel(KernelConfig{})(context.Background(), tunnel.SessionConfig{}, nil)
	if !errors.Is(err, ErrNotRoot) {
		t.Fatalf("err = %v, want ErrNotRoot", err)
	}
}

func TestControlAddrsOfMultiaddrs(t *testing.T) {
	got := MultiaddrControlAddrs([]string{
		"/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWAj4mZnrM1kJ9Xa1EcY1Zy3Zt5wJXQd5mA4XmZ2mHcdMp",
		"/ip4/10.0.0.1/tcp/4001",             // duplicate
		"/ip6/2001:db8::1/udp/4001/quic-v1",  // UDP
		"/dns4/example.org/tcp/4001",         // needs DNS: not a literal
		"/ip4/10.0.0.3/tcp/4001/p2p-circuit", // relayed
		"/ip4/10.0.0.4/tcp/0",                // no port
		"not a multiaddr",
	})
	want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:4001"), netip.MustParseAddrPort("[2001:db8::1]:4001")}
	if !slices.Equal(got, want) {
		t.Fatalf("MultiaddrControlAddrs = %v, want %v", got, want)
	}
	p := market.Proposal{Addrs: []string{"/ip4/192.0.2.7/tcp/5000", "/ip4/192.0.2.7/udp/5000/quic-v1"}}
	want = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:5000")}
	if got := ProposalControlAddrs(p); len(got) != 1 || got[0] != want[0] {
		// TCP and UDP on the same port are one AddrPort: the kill switch
		// rule admits both protocols.
		t.Fatalf("ProposalControlAddrs = %v, want %v", got, want)
	}
}

func TestJoinAddrsUnmapsAndDrops(t *testing.T) {
	got := joinAddrs(
		[]netip.AddrPort{netip.MustParseAddrPort("[::ffff:10.0.0.1]:80"), {}},
		[]netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:80"), netip.MustParseAddrPort("10.0.0.1:0")},
	)
	if len(got) != 1 || got[0] != netip.MustParseAddrPort("10.0.0.1:80") {
		t.Fatalf("joinAddrs = %v", got)
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
	_, err := k.Opener()(context.Background(), tunnel.SessionConfig{}, nil)
	want := tunnel.ErrClosed
	if os.Geteuid() != 0 {
		want = ErrNotRoot
	}
	if !errors.Is(err, want) {
		t.Fatalf("Opener after Close: %v, want %v", err, want)
	}
}
