package node

import (
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel"
)

// TestReconnectAfterProviderCrash: the only matching provider crashes
// (its host dies first, so no withdrawal goes out and its last
// announcement stays in the consumer's cache) and comes back after
// providerDown, longer than the reconnect backoff (1 s + 2 s + 4 s). The
// daemon's connection must not burn its attempts redialling the dead
// addresses: it waits for the restarted provider's new announcement and
// reconnects. Before the fix it gave up after ~7 s with the session ended
// and 0 reconnects (the e2e flake under load, where a restart is slow).
func TestReconnectAfterProviderCrash(t *testing.T) {
	ctx := testenv.Long(t, "devnet test; skipped with -short", 3*time.Minute)
	const providerDown = 8 * time.Second
	_, rule := startServer(t, payload(1<<10))
	d, c := startDevnetConsumer(ctx, t, DevnetConfig{DataDir: t.TempDir(), Allow: []tunnel.Rule{rule}, Payment: testPayment, Log: testLog()})
	api := connectionAPI(ctx, t, c)
	st, err := api.Connect(ctx, tequilapi.ConnectRequest{Country: "DE", SOCKSListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	// The crash: the host goes first, so the announcer's withdrawal
	// reaches no one.
	_ = d.Providers[0].P2P.Close()
	_ = d.Providers[0].Close()
	d.Providers = d.Providers[1:]
	time.Sleep(providerDown)
	p, err := StartProvider(ctx, d.provCfgs[0])
	if err != nil {
		t.Fatal(err)
	}
	d.Providers = append([]*Provider{p}, d.Providers...)
	if err := p.WaitPublished(ctx); err != nil {
		t.Fatal(err)
	}
	// Bound: the three attempts' backoff and proposal waits.
	deadline := time.Now().Add(30 * time.Second)
	for {
		now, err := api.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if now.Reconnects == 1 && now.Running {
			if now.SessionID == st.SessionID || now.Provider != st.Provider {
				t.Fatalf("after reconnect %+v, before %+v", now, st)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reconnected: %+v", now)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
