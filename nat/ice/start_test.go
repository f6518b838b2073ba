package ice

import (
	"context"
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
