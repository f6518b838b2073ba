package tequilapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// cookieLogin logs in through POST /auth/session and returns the cookie
// and the CSRF token.
func (e *testEnv) cookieLogin(t *testing.T) (*http.Cookie, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/auth/session", strings.NewReader(`{"username":"myst","password":"`+e.pw+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sr SessionResponse
	if err := json.NewDecoder(resp.Body).Decode(&sr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /auth/session: %d %v", resp.StatusCode, err)
	}
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == SessionCookie {
			c = k
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", c)
	}
	if sr.CSRFToken == "" || sr.CSRFToken == c.Value || strings.Contains(sr.CSRFToken, c.Value) {
		t.Fatalf("csrf token %q must exist and not reveal the session", sr.CSRFToken)
	}
	return c, sr.CSRFToken
}

func (e *testEnv) cookieDo(t *testing.T, method, path string, c *http.Cookie, hdr map[string]string, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.AddCookie(c)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCookieSession: the cookie authenticates reads; writes need the
// CSRF token and a same-origin Origin; logout revokes the token.
func TestCookieSession(t *testing.T) {
	e := newEnv(t, nil)
	c, csrf := e.cookieLogin(t)
	if got := e.cookieDo(t, "GET", "/identities", c, nil, ""); got != 200 {
		t.Fatalf("GET with cookie = %d", got)
	}
	body := `{"passphrase":"correct horse battery"}`
	if got := e.cookieDo(t, "POST", "/identities", c, nil, body); got != http.StatusForbidden {
		t.Fatalf("POST with cookie and no CSRF token = %d, want 403", got)
	}
	if got := e.cookieDo(t, "POST", "/identities", c, map[string]string{CSRFHeader: "00" + csrf[2:]}, body); got != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token = %d, want 403", got)
	}
	if got := e.cookieDo(t, "POST", "/identities", c, map[string]string{CSRFHeader: csrf, "Origin": "http://evil.example"}, body); got != http.StatusForbidden {
		t.Fatalf("cross-origin POST = %d, want 403", got)
	}
	host := strings.TrimPrefix(e.ts.URL, "http://")
	if got := e.cookieDo(t, "POST", "/identities", c, map[string]string{CSRFHeader: csrf, "Origin": "http://" + host}, body); got != http.StatusCreated && got != http.StatusOK {
		t.Fatalf("same-origin POST with CSRF token = %d", got)
	}
	// A bearer request needs no CSRF token (no ambient credential).
	tok := e.login(t)
	if resp := e.do(t, "GET", "/identities", tok, "", nil); resp.StatusCode != 200 {
		t.Fatalf("bearer GET = %d", resp.StatusCode)
	}
	// Login from another origin is refused.
	req, _ := http.NewRequest("POST", e.ts.URL+"/auth/session", strings.NewReader(`{"username":"myst","password":"`+e.pw+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("cross-origin login = %d with %d cookies, want 403 and none", resp.StatusCode, len(resp.Cookies()))
	}
	// Logout: the cookie's token stops working.
	if got := e.cookieDo(t, "DELETE", "/auth/session", c, nil, ""); got != http.StatusForbidden {
		t.Fatalf("logout without CSRF = %d, want 403", got)
	}
	if got := e.cookieDo(t, "DELETE", "/auth/session", c, map[string]string{CSRFHeader: csrf}, ""); got != http.StatusNoContent {
		t.Fatalf("logout = %d", got)
	}
	if got := e.cookieDo(t, "GET", "/identities", c, nil, ""); got != http.StatusUnauthorized {
		t.Fatalf("GET after logout = %d, want 401", got)
	}
	if _, ok := e.s.Session(&http.Request{Header: http.Header{"Cookie": {c.String()}}}); ok {
		t.Fatal("Session accepts a revoked cookie")
	}
}

// TestEventsStream: a subscriber gets the retained state first, then
// published events; a forgotten key is not replayed; the bus is bounded.
func TestEventsStream(t *testing.T) {
	bus := NewEvents(2)
	e := newEnv(t, nil)
	e.s.Add(EventRoutes(bus, nil)...)
	bus.Publish("earnings", false, Event{Type: EventEarnings, Data: EarningsDTO{Earned: "5"}})
	bus.Publish("session/a", false, Event{Type: EventSessionStarted, Data: ProviderSessionDTO{ID: "a"}})
	bus.Publish("session/a", true, Event{Type: EventSessionEnded, Data: ProviderSessionDTO{ID: "a"}})
	tok := e.login(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() (string, string) {
		var ev, data string
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "event: "):
				ev = l[7:]
			case strings.HasPrefix(l, "data: "):
				data = l[6:]
			case l == "" && ev != "":
				return ev, data
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", ""
	}
	if ev, data := next(); ev != EventEarnings || !strings.Contains(data, `"earned":"5"`) {
		t.Fatalf("first event %s %s, want the retained earnings", ev, data)
	}
	bus.Publish("", false, Event{Type: EventConnection, Data: ConnectionEvent{Connected: false}})
	if ev, data := next(); ev != EventConnection || data != `{"connected":false}` {
		t.Fatalf("second event %s %s, want the published connection event (the ended session is not replayed)", ev, data)
	}
	// The bus holds 2 subscribers: this stream and one more.
	_, unsub, err := bus.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if _, _, err := bus.Subscribe(); err == nil {
		t.Fatal("third subscriber accepted on a bus of 2")
	}
}

// TestEventsDropSlowSubscriber: a subscriber that does not read is
// dropped instead of blocking publishers.
func TestEventsDropSlowSubscriber(t *testing.T) {
	bus := NewEvents(0)
	ch, unsub, err := bus.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	for i := 0; i < subscriberBuffer+1; i++ {
		bus.Publish("", false, Event{Type: EventEarnings})
	}
	n := 0
	for range ch {
		n++
	}
	if n != subscriberBuffer {
		t.Fatalf("slow subscriber got %d events then close, want %d", n, subscriberBuffer)
	}
}

// TestMetricsRoute: /metrics needs auth and serves parseable text.
func TestMetricsRoute(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "openmyst_test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)
	e := newEnv(t, nil)
	e.s.Add(MetricsRoutes(reg, nil)...)
	e.expectError(t, "GET", "/metrics", "", "", http.StatusUnauthorized, CodeUnauthorized)
	resp := e.send(t, "GET", "/metrics", e.login(t), "")
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	f := fams["openmyst_test_things_total"]
	if f == nil || f.GetMetric()[0].GetCounter().GetValue() != 3 {
		t.Fatalf("openmyst_test_things_total = %v", f)
	}
	e.s.Add(EventRoutes(NewEvents(0), nil)...)
	doc := e.s.OpenAPI()
	if doc.Paths["/metrics"]["get"].Responses["200"].Content["text/plain; version=0.0.4"] == nil ||
		doc.Paths["/events"]["get"].Responses["200"].Content["text/event-stream"] == nil {
		t.Fatalf("metrics/events media types not documented: %+v %+v", doc.Paths["/metrics"]["get"].Responses, doc.Paths["/events"]["get"].Responses)
	}
}

// TestEventsClose: Close ends open streams (a shutting-down server does
// not wait for them) and refuses new subscribers.
func TestEventsClose(t *testing.T) {
	bus := NewEvents(0)
	e := newEnv(t, nil)
	e.s.Add(EventRoutes(bus, nil)...)
	resp := e.send(t, "GET", "/events", e.login(t), "")
	defer resp.Body.Close()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
	bus.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stream ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream stays open after Close")
	}
	if _, _, err := bus.Subscribe(); err == nil {
		t.Fatal("Subscribe after Close succeeded")
	}
}
