package webui

import (
	"testing"

	"github.com/openmyst/openmyst/tequilapi"
)

// TestNATCard: the provider page carries the reachability card and its
// script, the script is served, names no other origin and calls only
// the documented NAT routes.
func TestNATCard(t *testing.T) {
	ts := newServer(t)
	cardPage(t, ts, `id="nat-card"`, `id="nat-access"`, `id="nat-peercheck"`, `id="nat-check"`, `src="/ui/assets/nat.js"`)
	js := cardScript(t, ts, "nat.js")
	calls := apiCalls(js)
	if len(calls) == 0 {
		t.Fatal("nat.js calls no API")
	}
	checkCallsServed(t, "nat.js", calls, "which NATRoutes does not serve", tequilapi.NATRoutes(nil, nil))
}
