package ice

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestStartOnLoopback: Start returns an agent and its offer as JSON that
// decodes back under the same policy; a cancelled context leaves no
// agent behind and says why.
func TestStartOnLoopback(t *testing.T) {
	cfg := Config{Loopback: true, Policy: CandidatePolicy{AllowPrivate: true}, GatherTimeout: 2 * time.Second}
	a, raw, err := Start(context.Background(), cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if len(raw) == 0 || len(raw) > MaxOfferSize {
		t.Fatalf("offer of %d bytes", len(raw))
	}
	if _, cands, err := DecodeOffer(raw, cfg.Policy); err != nil || len(cands) == 0 {
		t.Fatalf("own offer does not decode under its policy: %d candidates, %v", len(cands), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a2, raw2, err := Start(ctx, cfg, false); err == nil || a2 != nil || raw2 != nil {
		t.Fatalf("Start with a cancelled context: %v %v %q", a2, err, raw2)
	}
}

// TestGatherFilters: an excluded interface (a consumer's own TUN) and a
// host filter keep their addresses out of the offer.
func TestGatherFilters(t *testing.T) {
	base := Config{Loopback: true, Policy: CandidatePolicy{AllowPrivate: true}, GatherTimeout: 2 * time.Second}
	excl := base
	excl.ExcludeInterfaces = []string{"lo"}
	if a, _, err := Start(context.Background(), excl, true); err == nil {
		a.Close()
		t.Fatal("gathered on an excluded interface")
	}
	filt := base
	filt.HostFilter = func(a netip.Addr) bool { return a != netip.MustParseAddr("127.0.0.1") }
	if a, raw, err := Start(context.Background(), filt, true); err == nil {
		a.Close()
		if strings.Contains(string(raw), "127.0.0.1") {
			t.Fatalf("the host filter let 127.0.0.1 in: %s", raw)
		}
	}
	a, raw, err := Start(context.Background(), base, true)
	if err != nil || !strings.Contains(string(raw), "127.0.0.1") {
		t.Fatalf("control: no 127.0.0.1 candidate without filters: %s, %v", raw, err)
	}
	a.Close()
}

// TestServerAddrs: the STUN/TURN servers a kill switch admits.
func TestServerAddrs(t *testing.T) {
	got, err := ServerAddrs(context.Background(), []Server{{URL: "stun:192.0.2.1:3478"}, {URL: "turn:[2001:db8::1]:5349?transport=tcp", Username: "u", Password: "p"}})
	if err != nil || fmt.Sprint(got) != "[192.0.2.1:3478 [2001:db8::1]:5349]" {
		t.Fatalf("ServerAddrs = %v, %v", got, err)
	}
	if got, err := ServerAddrs(context.Background(), []Server{{URL: "stun:localhost:3478"}}); err != nil || len(got) == 0 || !got[0].Addr().IsLoopback() {
		t.Fatalf("ServerAddrs(localhost) = %v, %v", got, err)
	}
	if _, err := ServerAddrs(context.Background(), []Server{{URL: "http://192.0.2.1"}}); err == nil {
		t.Fatal("a non-STUN URL was accepted")
	}
}
