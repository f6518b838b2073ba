package tunnel

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeAddrs is a ListAddrs whose answer the test changes.
type fakeAddrs struct {
	mu    sync.Mutex
	addrs []netip.Addr
	err   error
}

func (f *fakeAddrs) set(addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs = nil
	for _, a := range addrs {
		f.addrs = append(f.addrs, netip.MustParseAddr(a))
	}
}

func (f *fakeAddrs) list() ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.addrs), f.err
}

func blocked(p *ExitPolicy, a string) bool {
	return p.Check(netip.AddrPortFrom(netip.MustParseAddr(a), 443), ProtoTCP) != nil
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestPolicyFollowsInterfaceAddrs(t *testing.T) {
	src := &fakeAddrs{}
	src.set("198.51.100.7")
	p, err := NewExitPolicy(PolicyConfig{InterfaceAddrs: true, ListAddrs: src.list})
	if err != nil {
		t.Fatal(err)
	}
	if !blocked(p, "198.51.100.7") || blocked(p, "198.51.100.8") {
		t.Fatal("initial interface address not denied, or another one denied")
	}
	ch := p.Changed()
	if changed, err := p.RefreshInterfaceAddrs(); err != nil || changed || closed(ch) {
		t.Fatalf("refresh without a change: changed=%v err=%v closed=%v", changed, err, closed(ch))
	}
	// An address added after start is denied after the next refresh, and
	// one that went away is allowed again.
	src.set("198.51.100.8", "::ffff:192.0.2.1")
	if changed, err := p.RefreshInterfaceAddrs(); err != nil || !changed || !closed(ch) {
		t.Fatalf("refresh after a change: changed=%v err=%v closed=%v", changed, err, closed(ch))
	}
	if !blocked(p, "198.51.100.8") || !blocked(p, "192.0.2.1") || blocked(p, "198.51.100.7") {
		t.Fatalf("own addresses after the change: %v", p.OwnAddrs())
	}
	if !slices.Contains(p.DenyPrefixes(), netip.MustParsePrefix("198.51.100.8/32")) {
		t.Fatalf("DenyPrefixes lacks the new address: %v", p.DenyPrefixes())
	}
	// A failed read keeps what was known.
	src.mu.Lock()
	src.err = errors.New("netlink down")
	src.mu.Unlock()
	if _, err := p.RefreshInterfaceAddrs(); err == nil || !blocked(p, "198.51.100.8") {
		t.Fatalf("failed refresh: err=%v, still blocked=%v", err, blocked(p, "198.51.100.8"))
	}
}

func TestPolicySetExtraDenied(t *testing.T) {
	p, err := NewExitPolicy(PolicyConfig{OwnAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.10")}, ExtraDenied: []netip.Addr{netip.MustParseAddr("198.51.100.1")}})
	if err != nil {
		t.Fatal(err)
	}
	if !blocked(p, "198.51.100.1") {
		t.Fatal("configured extra address not denied")
	}
	ch := p.Changed()
	mapped := netip.MustParseAddr("203.0.113.9")
	if err := p.SetExtraDenied([]netip.Addr{mapped, mapped}); err != nil {
		t.Fatal(err)
	}
	if !closed(ch) {
		t.Fatal("Changed not signalled")
	}
	if !blocked(p, "203.0.113.9") || blocked(p, "198.51.100.1") || !blocked(p, "192.0.2.10") {
		t.Fatalf("after SetExtraDenied: own %v", p.OwnAddrs())
	}
	if got := p.OwnAddrs(); len(got) != 2 {
		t.Fatalf("own %v, want the static and the one (deduplicated) extra address", got)
	}
	if err := p.SetExtraDenied([]netip.Addr{{}}); err == nil {
		t.Fatal("invalid address accepted")
	}
	// Same set again: no change signalled.
	ch = p.Changed()
	if err := p.SetExtraDenied([]netip.Addr{mapped}); err != nil || closed(ch) {
		t.Fatalf("unchanged set: err=%v signalled=%v", err, closed(ch))
	}
}

func TestWatchInterfaceAddrs(t *testing.T) {
	src := &fakeAddrs{}
	p, err := NewExitPolicy(PolicyConfig{InterfaceAddrs: true, ListAddrs: src.list})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.WatchInterfaceAddrs(ctx, time.Millisecond, nil) }()
	ch := p.Changed()
	src.set("198.51.100.77")
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not pick up the new address")
	}
	if !blocked(p, "198.51.100.77") {
		t.Fatal("new address not denied")
	}
	cancel()
	<-done
	// Without InterfaceAddrs there is nothing to watch: it returns at once.
	q, _ := NewExitPolicy(PolicyConfig{})
	q.WatchInterfaceAddrs(context.Background(), time.Millisecond, nil)
}
