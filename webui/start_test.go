package webui

import (
	"regexp"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/tequilapi"
)

// TestStartForm: the provider page carries the start form (every input
// labelled, a field error beside each option PUT /service can refuse)
// and its script, which names no other origin and calls only
// GET /service/options, GET /capabilities and PUT /service.
func TestStartForm(t *testing.T) {
	ts := newServer(t)
	body := cardPage(t, ts, `id="start-card"`, `id="start-form"`, `src="/ui/assets/start.js"`, `id="sf-submit"`)
	for _, id := range []string{"sf-exit", "sf-price-hour", "sf-price-gib", "sf-bandwidth", "sf-max-sessions", "sf-quota", "sf-country", "sf-access", "sf-allow"} {
		if !strings.Contains(body, `<label for="`+id+`">`) {
			t.Errorf("the start form's %s has no label", id)
		}
	}
	js := cardScript(t, ts, "start.js")
	// Each field PUT /service {"provider"} names in an error has its input
	// and error text.
	for _, f := range []string{"exit_mode", "price_per_hour", "price_per_gib", "bandwidth", "max_sessions", "monthly_quota", "allow", "country"} {
		m := regexp.MustCompile(f + `: '(sf-[a-z-]+)'`).FindStringSubmatch(js)
		if m == nil || !strings.Contains(body, `id="`+m[1]+`"`) || !strings.Contains(body, `id="`+m[1]+`-err"`) {
			t.Errorf("the refused option %s has no input and error text on the page", f)
		}
	}
	calls := apiCalls(js)
	if len(calls) != 3 {
		t.Fatalf("start.js calls %d routes, want 3", len(calls))
	}
	checkCallsServed(t, "start.js", calls, "which no start route serves",
		tequilapi.ServiceOptionsRoutes(nil, nil), tequilapi.CapabilitiesRoutes(nil, nil), tequilapi.ServiceStartRoutes(nil, nil))
}
