package discovery

import (
	"slices"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/testenv"
)

// A provider whose addresses change (AutoNAT found it private and a relay
// reservation added a circuit address; here a new listener) announces
// them within seconds, not at the next TTL/3 refresh.
func TestAnnouncerFollowsAddressChanges(t *testing.T) {
	ctx := t.Context()
	net := startNet(t, ctx, 2, netOpts{})
	defer net.close()
	n, watcher := net.nodes[1], net.nodes[0]
	s := keytest.Signer(t)
	a, err := NewAnnouncer(n.svc, AnnouncerConfig{Proposal: offer(t, "LT", "0.1"), Signer: s, Host: n.node.Host, TTL: 3 * time.Minute, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	runAnnouncer(t, ctx, a)
	testenv.WaitFor(t, 5*time.Second, "first announcement", func() bool {
		_, ok := watcher.svc.Cache().Get(s.Address())
		return ok
	})
	first, _ := watcher.svc.Cache().Get(s.Address())
	if err := n.node.Host.Network().Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0")); err != nil {
		t.Fatal(err)
	}
	// The host notices its new listener within its address-update period
	// (5 s in go-libp2p), then the announcer waits addrSettle and at most
	// addrMinGap after its previous announcement: well within the 60 s
	// TTL/3 refresh.
	testenv.WaitFor(t, 15*time.Second, "announcement with the new address", func() bool {
		p, ok := watcher.svc.Cache().Get(s.Address())
		return ok && p.Seq > first.Seq && len(p.Addrs) > len(first.Addrs) && !slices.Equal(p.Addrs, first.Addrs)
	})
}
