package webui

import (
	"testing"

	"github.com/openmyst/openmyst/tequilapi"
)

// TestCapsCard: the provider page carries the caps card and its script,
// the script is served, names no other origin and calls only
// GET /service/caps.
func TestCapsCard(t *testing.T) {
	ts := newServer(t)
	cardPage(t, ts, `id="caps-card"`, `id="caps-bandwidth"`, `id="caps-sessions"`, `id="caps-quota"`, `id="caps-quota-bar"`, `id="caps-access"`, `src="/ui/assets/caps.js"`)
	js := cardScript(t, ts, "caps.js")
	calls := apiCalls(js)
	if len(calls) == 0 {
		t.Fatal("caps.js calls no API")
	}
	checkCallsServed(t, "caps.js", calls, "which ServiceCapsRoutes does not serve", tequilapi.ServiceCapsRoutes(nil, nil))
}
