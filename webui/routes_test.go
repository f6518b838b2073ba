package webui

import (
	"regexp"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/tequilapi"
)

// TestScriptsCallDocumentedRoutes: every request the pages' scripts make
// (api(METHOD, path) and the event stream) is a route the daemon's
// Tequilapi serves and documents in OpenAPI: the UI adds no private API.
func TestScriptsCallDocumentedRoutes(t *testing.T) {
	s := newAPI(t)
	// Every route family the daemon can serve (the services are never
	// called here).
	for _, rs := range [][]tequilapi.Route{
		tequilapi.IdentityRoutes(nil, nil), tequilapi.AccountRoutes(nil, nil, nil),
		tequilapi.ConnectionRoutes(nil, nil), tequilapi.SessionRoutes(nil, nil), tequilapi.SpendingRoutes(nil, nil),
		tequilapi.ProviderHistoryRoutes(nil, nil), tequilapi.EarningsRoutes(nil, nil), tequilapi.SettlementRoutes(nil, nil),
		tequilapi.ProposalRoutes(nil, nil, nil), tequilapi.QualityRoutes(nil, nil), tequilapi.NATRoutes(nil, nil),
		tequilapi.ProviderSessionRoutes(nil, nil), tequilapi.PriceRoutes(nil, nil), tequilapi.ProviderStatusRoutes(nil, nil),
		tequilapi.ServiceCapsRoutes(nil, nil), tequilapi.ServiceStartRoutes(nil, nil), tequilapi.ServiceStopRoutes(nil, nil), tequilapi.EventRoutes(nil, nil),
		tequilapi.MetricsRoutes(nil, nil), tequilapi.ServiceOptionsRoutes(nil, nil), tequilapi.CapabilitiesRoutes(nil, nil),
	} {
		s.Add(rs...)
	}
	routes := s.Routes()
	served := func(method, path string) bool {
		for _, r := range routes {
			if r.Method == method && pathMatches(r.Path, path) {
				return true
			}
		}
		return false
	}
	for _, name := range []string{"app.js", "caps.js", "nat.js", "start.js"} {
		b, err := assetFS.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		calls := scriptCalls(string(b))
		if name == "app.js" && len(calls) < 20 {
			t.Fatalf("found only %d requests in app.js: %q", len(calls), calls)
		}
		for _, c := range calls {
			method, path, _ := strings.Cut(c, " ")
			if !served(method, path) {
				t.Errorf("%s requests %s %s, which no documented Tequilapi route serves", name, method, path)
			}
		}
	}
	// The matcher itself.
	if served("GET", "/sessions/private") || served("DELETE", "/proposals") || !served("GET", "/identities/{}/account") {
		t.Fatal("route matching is wrong")
	}
}

var (
	apiCall     = regexp.MustCompile(`\bapi\('([A-Z]+)',\s*`)
	eventSource = regexp.MustCompile(`new EventSource\('([^']+)'\)`)
	historyPath = regexp.MustCompile(`initHistory\('([^']+)'`)
)

// scriptCalls lists a script's requests as "METHOD /path", the path's
// expressions as {} and without its query: api('GET', '/quality/' + id)
// is "GET /quality/{}".
func scriptCalls(js string) []string {
	var out []string
	for _, m := range apiCall.FindAllStringSubmatchIndex(js, -1) {
		method := js[m[2]:m[3]]
		// The path argument: up to the ',' or ')' closing it.
		var b strings.Builder
		depth, inLit, expr := 0, false, false
	scan:
		for _, r := range js[m[1]:] {
			switch {
			case inLit && r == '\'':
				inLit = false
			case inLit && depth == 0:
				b.WriteRune(r)
			case inLit:
			case r == '\'':
				if expr && depth == 0 {
					b.WriteString("{}")
					expr = false
				}
				inLit = true
			case r == '(':
				depth++
				expr = true
			case r == ')' && depth == 0, r == ',' && depth == 0:
				break scan
			case r == ')':
				depth--
			case r == '+' && depth == 0, r == ' ':
			default:
				expr = true
			}
		}
		if b.Len() == 0 {
			// A bare variable: initHistory's path, listed below.
			continue
		}
		if expr {
			b.WriteString("{}")
		}
		path, _, _ := strings.Cut(b.String(), "?")
		out = append(out, method+" "+path)
	}
	for _, m := range eventSource.FindAllStringSubmatch(js, -1) {
		out = append(out, "GET "+m[1])
	}
	for _, m := range historyPath.FindAllStringSubmatch(js, -1) {
		out = append(out, "GET "+m[1])
	}
	return out
}

// pathMatches reports whether a script's path (expressions as {})
// matches a ServeMux pattern: {} only where the pattern has a wildcard.
func pathMatches(pattern, path string) bool {
	if pattern == "/{$}" {
		return path == "/"
	}
	ps, qs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(qs) {
		return false
	}
	for i := range ps {
		wild := strings.HasPrefix(ps[i], "{") && strings.HasSuffix(ps[i], "}")
		if wild != (qs[i] == "{}") || (!wild && ps[i] != qs[i]) {
			return false
		}
	}
	return true
}
