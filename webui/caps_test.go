package webui

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/tequilapi"
)

// TestCapsCard: the provider page carries the caps card and its script,
// the script is served, names no other origin and calls only
// GET /service/caps.
func TestCapsCard(t *testing.T) {
	ts := newServer(t)
	_, body := get(t, ts, PathProvider, "good")
	for _, want := range []string{`id="caps-card"`, `id="caps-bandwidth"`, `id="caps-sessions"`, `id="caps-quota"`, `id="caps-quota-bar"`, `id="caps-access"`, `src="/ui/assets/caps.js"`} {
		if !strings.Contains(body, want) {
			t.Errorf("provider page lacks %s", want)
		}
	}
	resp, js := get(t, ts, "/ui/assets/caps.js", "")
	if resp.StatusCode != 200 || !strings.Contains(js, "openmystUI") {
		t.Fatalf("caps.js: %d", resp.StatusCode)
	}
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9]`).FindString(js); m != "" {
		t.Errorf("caps.js references another origin: %q", m)
	}
	var routes []string
	for _, r := range tequilapi.ServiceCapsRoutes(nil, nil) {
		routes = append(routes, r.Method+" "+r.Path)
	}
	calls := regexp.MustCompile(`api\('([A-Z]+)', '([^']+)'`).FindAllStringSubmatch(js, -1)
	if len(calls) == 0 {
		t.Fatal("caps.js calls no API")
	}
	for _, c := range calls {
		if !slices.Contains(routes, c[1]+" "+c[2]) {
			t.Errorf("caps.js calls %s %s, which ServiceCapsRoutes does not serve", c[1], c[2])
		}
	}
}
