package webui

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/tequilapi"
)

// TestNATCard: the provider page carries the reachability card and its
// script, the script is served, names no other origin and calls only
// the documented NAT routes.
func TestNATCard(t *testing.T) {
	ts := newServer(t)
	_, body := get(t, ts, PathProvider, "good")
	for _, want := range []string{`id="nat-card"`, `id="nat-access"`, `id="nat-peercheck"`, `id="nat-check"`, `src="/ui/assets/nat.js"`} {
		if !strings.Contains(body, want) {
			t.Errorf("provider page lacks %s", want)
		}
	}
	resp, js := get(t, ts, "/ui/assets/nat.js", "")
	if resp.StatusCode != 200 || !strings.Contains(js, "openmystUI") {
		t.Fatalf("nat.js: %d", resp.StatusCode)
	}
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9]`).FindString(js); m != "" {
		t.Errorf("nat.js references another origin: %q", m)
	}
	var routes []string
	for _, r := range tequilapi.NATRoutes(nil, nil) {
		routes = append(routes, r.Method+" "+r.Path)
	}
	calls := regexp.MustCompile(`api\('([A-Z]+)', '([^']+)'`).FindAllStringSubmatch(js, -1)
	if len(calls) == 0 {
		t.Fatal("nat.js calls no API")
	}
	for _, c := range calls {
		if !slices.Contains(routes, c[1]+" "+c[2]) {
			t.Errorf("nat.js calls %s %s, which NATRoutes does not serve", c[1], c[2])
		}
	}
}
