package webui

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/tequilapi"
)

// fakeSessions accepts the cookie value "good".
type fakeSessions struct{}

func (fakeSessions) Session(r *http.Request) (string, bool) {
	c, err := r.Cookie(tequilapi.SessionCookie)
	if err != nil || c.Value != "good" {
		return "", false
	}
	return "csrf-for-good", true
}

// newAPI is a Tequilapi server with a fresh password file.
func newAPI(t *testing.T) *tequilapi.Server {
	t.Helper()
	pw := filepath.Join(t.TempDir(), tequilapi.PasswordFileName)
	if _, _, err := tequilapi.EnsurePassword(pw); err != nil {
		t.Fatal(err)
	}
	s, err := tequilapi.New(tequilapi.Config{PasswordFile: pw, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := newAPI(t)
	s.Add(Routes(fakeSessions{}, "test", nil)...)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, ts *httptest.Server, path, cookie string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: tequilapi.SessionCookie, Value: cookie})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// cardPage fetches the provider page (with a session) and fails t for
// each of the card's element fragments (ids, script tag) it lacks.
func cardPage(t *testing.T, ts *httptest.Server, want ...string) string {
	t.Helper()
	_, body := get(t, ts, PathProvider, "good")
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("provider page lacks %s", w)
		}
	}
	return body
}

// cardScript fetches the asset name, fails t unless it is served and
// built on the page's openmystUI, and reports any other origin it names.
func cardScript(t *testing.T, ts *httptest.Server, name string) string {
	t.Helper()
	resp, js := get(t, ts, "/ui/assets/"+name, "")
	if resp.StatusCode != 200 || !strings.Contains(js, "openmystUI") {
		t.Fatalf("%s: %d", name, resp.StatusCode)
	}
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9]`).FindString(js); m != "" {
		t.Errorf("%s references another origin: %q", name, m)
	}
	return js
}

// apiCalls are the script's api('METHOD', 'path') calls, each as
// {call, METHOD, path}.
func apiCalls(js string) [][]string {
	return regexp.MustCompile(`api\('([A-Z]+)', '([^']+)'`).FindAllStringSubmatch(js, -1)
}

// checkCallsServed fails t for each call of the script name that none
// of the route sets serves (unserved says so: "which X does not serve").
func checkCallsServed(t *testing.T, name string, calls [][]string, unserved string, sets ...[]tequilapi.Route) {
	t.Helper()
	var routes []string
	for _, rs := range sets {
		for _, r := range rs {
			routes = append(routes, r.Method+" "+r.Path)
		}
	}
	for _, c := range calls {
		if !slices.Contains(routes, c[1]+" "+c[2]) {
			t.Errorf("%s calls %s %s, %s", name, c[1], c[2], unserved)
		}
	}
}

// TestPagesNeedSession: without a valid cookie every page sends the
// browser to the login page; with one it renders with the CSRF token.
func TestPagesNeedSession(t *testing.T) {
	ts := newServer(t)
	for _, p := range []string{"/", PathProvider, PathConsumer, PathSettings} {
		for _, cookie := range []string{"", "bad"} {
			resp, _ := get(t, ts, p, cookie)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != PathLogin {
				t.Errorf("GET %s with cookie %q = %d to %q, want 303 to %s", p, cookie, resp.StatusCode, resp.Header.Get("Location"), PathLogin)
			}
		}
	}
	for _, p := range []string{PathProvider, PathConsumer, PathSettings} {
		resp, body := get(t, ts, p, "good")
		if resp.StatusCode != 200 || !strings.Contains(body, `<meta name="csrf-token" content="csrf-for-good">`) {
			t.Errorf("GET %s with a session = %d, body without the CSRF token", p, resp.StatusCode)
		}
		if resp.Header.Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Errorf("GET %s: CSP %q", p, resp.Header.Get("Content-Security-Policy"))
		}
	}
	resp, body := get(t, ts, PathLogin, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `id="login-form"`) || strings.Contains(body, "csrf-token") {
		t.Errorf("login page: %d", resp.StatusCode)
	}
	if resp, _ := get(t, ts, PathLogin, "good"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login page with a session = %d, want a redirect", resp.StatusCode)
	}
}

// TestNoExternalReferences: the pages and assets name no other origin,
// so the UI works offline and leaks nothing.
func TestNoExternalReferences(t *testing.T) {
	ts := newServer(t)
	ext := regexp.MustCompile(`(?i)(src|href|url)\s*[=(]\s*["']?(https?:)?//`)
	check := func(name, body string) {
		if m := ext.FindString(body); m != "" {
			t.Errorf("%s references another origin: %q", name, m)
		}
	}
	for _, p := range []string{PathProvider, PathConsumer, PathSettings} {
		_, body := get(t, ts, p, "good")
		check(p, body)
	}
	for _, a := range []string{"app.js", "style.css"} {
		resp, body := get(t, ts, "/ui/assets/"+a, "")
		if resp.StatusCode != 200 || len(body) < 100 {
			t.Fatalf("asset %s: %d", a, resp.StatusCode)
		}
		check(a, body)
	}
	if resp, _ := get(t, ts, "/ui/assets/../webui.go", ""); resp.StatusCode == 200 {
		t.Fatal("asset path escapes the assets directory")
	}
}

// TestEveryControlHasALabel: each input and select of every page has a
// <label for> naming it (screen readers, click targets).
func TestEveryControlHasALabel(t *testing.T) {
	control := regexp.MustCompile(`<(input|select)\b[^>]*\bid="([^"]+)"`)
	anyControl := regexp.MustCompile(`<(input|select)\b`)
	label := regexp.MustCompile(`<label for="([^"]+)"`)
	files, err := templateFS.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := templateFS.ReadFile("templates/" + f.Name())
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		labels := map[string]bool{}
		for _, m := range label.FindAllStringSubmatch(src, -1) {
			labels[m[1]] = true
		}
		ids := control.FindAllStringSubmatch(src, -1)
		if n := len(anyControl.FindAllString(src, -1)); n != len(ids) {
			t.Errorf("%s: %d controls, %d with an id", f.Name(), n, len(ids))
		}
		for _, m := range ids {
			if !labels[m[2]] {
				t.Errorf("%s: %s #%s has no <label for>", f.Name(), m[1], m[2])
			}
		}
	}
}

// TestOpenAPIDocumentsPages: the pages are in the daemon's OpenAPI
// document as HTML, the root as a redirect.
func TestOpenAPIDocumentsPages(t *testing.T) {
	ts := newServer(t)
	resp, body := get(t, ts, "/openapi.json", "")
	if resp.StatusCode != 200 {
		t.Fatalf("openapi.json: %d", resp.StatusCode)
	}
	var doc tequilapi.Document
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{PathLogin, PathProvider, PathConsumer, PathSettings} {
		op := doc.Paths[p]["get"]
		if op == nil || op.Responses["200"].Content["text/html"] == nil {
			t.Errorf("%s not documented as text/html: %+v", p, op)
		}
	}
	if op := doc.Paths["/"]["get"]; op == nil || op.Responses["303"].Description == "" {
		t.Errorf("/ not documented as a redirect: %+v", op)
	}
}
