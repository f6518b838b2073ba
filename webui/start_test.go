package webui

import (
	"regexp"
	"slices"
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
	_, body := get(t, ts, PathProvider, "good")
	for _, want := range []string{`id="start-card"`, `id="start-form"`, `src="/ui/assets/start.js"`, `id="sf-submit"`} {
		if !strings.Contains(body, want) {
			t.Errorf("provider page lacks %s", want)
		}
	}
	for _, id := range []string{"sf-exit", "sf-price-hour", "sf-price-gib", "sf-bandwidth", "sf-max-sessions", "sf-quota", "sf-country", "sf-access", "sf-allow"} {
		if !strings.Contains(body, `<label for="`+id+`">`) {
			t.Errorf("the start form's %s has no label", id)
		}
	}
	resp, js := get(t, ts, "/ui/assets/start.js", "")
	if resp.StatusCode != 200 || !strings.Contains(js, "openmystUI") {
		t.Fatalf("start.js: %d", resp.StatusCode)
	}
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9]`).FindString(js); m != "" {
		t.Errorf("start.js references another origin: %q", m)
	}
	// Each field PUT /service {"provider"} names in an error has its input
	// and error text.
	for _, f := range []string{"exit_mode", "price_per_hour", "price_per_gib", "bandwidth", "max_sessions", "monthly_quota", "allow", "country"} {
		m := regexp.MustCompile(f + `: '(sf-[a-z-]+)'`).FindStringSubmatch(js)
		if m == nil || !strings.Contains(body, `id="`+m[1]+`"`) || !strings.Contains(body, `id="`+m[1]+`-err"`) {
			t.Errorf("the refused option %s has no input and error text on the page", f)
		}
	}
	var routes []string
	for _, rs := range [][]tequilapi.Route{tequilapi.ServiceOptionsRoutes(nil, nil), tequilapi.CapabilitiesRoutes(nil, nil), tequilapi.ServiceStartRoutes(nil, nil)} {
		for _, r := range rs {
			routes = append(routes, r.Method+" "+r.Path)
		}
	}
	calls := regexp.MustCompile(`api\('([A-Z]+)', '([^']+)'`).FindAllStringSubmatch(js, -1)
	if len(calls) != 3 {
		t.Fatalf("start.js calls %d routes, want 3", len(calls))
	}
	for _, c := range calls {
		if !slices.Contains(routes, c[1]+" "+c[2]) {
			t.Errorf("start.js calls %s %s, which no start route serves", c[1], c[2])
		}
	}
}
