package tequilapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/identity"
)

func TestMain(m *testing.M) {
	// What the account tests' dev chains leave that no chain owns.
	devchaintest.VerifyTestMain(m)
}

type testEnv struct {
	s      *Server
	ts     *httptest.Server
	pwFile string
	pw     string
	ids    *identity.Manager
}

func newEnv(t testing.TB, mod func(*Config)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, PasswordFileName)
	pw, created, err := EnsurePassword(pwFile)
	if err != nil || !created || len(pw) < 20 {
		t.Fatalf("EnsurePassword = %q, %v, %v", pw, created, err)
	}
	cfg := Config{PasswordFile: pwFile, Version: "test", Log: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := identity.NewManager(filepath.Join(dir, "keystore"), identity.WithLightScrypt())
	if err != nil {
		t.Fatal(err)
	}
	s.Add(IdentityRoutes(ids, nil)...)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &testEnv{s: s, ts: ts, pwFile: pwFile, pw: pw, ids: ids}
}

// do sends a request and decodes the JSON answer into out (if non-nil).
func (e *testEnv) do(t *testing.T, method, path, token, body string, out any) *http.Response {
	t.Helper()
	resp := e.send(t, method, path, token, body)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp
}

func (e *testEnv) login(t *testing.T) string {
	t.Helper()
	var lr LoginResponse
	resp := e.do(t, "POST", "/auth/login", "", `{"username":"myst","password":"`+e.pw+`"}`, &lr)
	if resp.StatusCode != 200 || len(lr.Token) != 64 {
		t.Fatalf("login: %d %+v", resp.StatusCode, lr)
	}
	return lr.Token
}

// send sends a request (with token as the bearer token unless empty) and
// returns the response with its body unread; the caller closes it.
func (e *testEnv) send(t *testing.T, method, path, token, body string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// expectError checks status and the JSON error shape.
func (e *testEnv) expectError(t *testing.T, method, path, token, body string, status int, code string) ErrorBody {
	t.Helper()
	var er ErrorResponse
	resp := e.do(t, method, path, token, body, &er)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d (%+v)", method, path, resp.StatusCode, status, er)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: content type %q", method, path, ct)
	}
	if er.Error.Code != code || er.Error.Message == "" {
		t.Fatalf("%s %s: error %+v, want code %q", method, path, er.Error, code)
	}
	return er.Error
}

func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, PasswordFileName)
	pw, created, err := EnsurePassword(f)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	fi, _ := os.Stat(f)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode %v", fi.Mode().Perm())
	}
	pw2, created, err := EnsurePassword(f)
	if err != nil || created || pw2 != pw {
		t.Fatalf("second EnsurePassword = %q, %v, %v; want same password, not created", pw2, created, err)
	}
	pw3, _, _ := EnsurePassword(filepath.Join(t.TempDir(), PasswordFileName))
	if pw3 == pw {
		t.Fatal("two generated passwords are equal")
	}
	if err := os.WriteFile(f, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EnsurePassword(f); err == nil {
		t.Fatal("empty password file accepted")
	}
}

func TestHealthcheckIsPublic(t *testing.T) {
	e := newEnv(t, nil)
	var h HealthcheckResponse
	resp := e.do(t, "GET", "/healthcheck", "", "", &h)
	if resp.StatusCode != 200 || h.Version != "test" || h.Uptime == "" || h.StartedAt.IsZero() {
		t.Fatalf("healthcheck: %d %+v", resp.StatusCode, h)
	}
}

func TestAuthRequired(t *testing.T) {
	e := newEnv(t, nil)
	e.expectError(t, "GET", "/identities", "", "", 401, CodeUnauthorized)
	e.expectError(t, "GET", "/identities", "deadbeef", "", 401, CodeUnauthorized)
	e.expectError(t, "POST", "/identities", "", `{"passphrase":"x"}`, 401, CodeUnauthorized)
	e.expectError(t, "PUT", "/auth/password", "", `{}`, 401, CodeUnauthorized)
	tok := e.login(t)
	var list IdentityListResponse
	if resp := e.do(t, "GET", "/identities", tok, "", &list); resp.StatusCode != 200 || list.Identities == nil {
		t.Fatalf("GET /identities with token: %d %+v", resp.StatusCode, list)
	}
}

func TestTokenExpiry(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	e.s.auth.now = func() time.Time { return now }
	tok := e.login(t)
	if resp := e.do(t, "GET", "/identities", tok, "", nil); resp.StatusCode != 200 {
		t.Fatalf("fresh token: %d", resp.StatusCode)
	}
	now = now.Add(DefaultTokenTTL + time.Second)
	e.expectError(t, "GET", "/identities", tok, "", 401, CodeUnauthorized)
}

func TestLoginFailuresBackOff(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	e.s.auth.now = func() time.Time { return now }
	e.expectError(t, "POST", "/auth/login", "", `{"username":"myst","password":"nope"}`, 401, CodeUnauthorized)
	// Even the right password is refused during the backoff.
	var er ErrorResponse
	resp := e.do(t, "POST", "/auth/login", "", `{"username":"myst","password":"`+e.pw+`"}`, &er)
	if resp.StatusCode != 429 || er.Error.Code != CodeTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("login during backoff: %d %+v retry-after=%q", resp.StatusCode, er, resp.Header.Get("Retry-After"))
	}
	now = now.Add(time.Second)
	e.expectError(t, "POST", "/auth/login", "", `{"username":"root","password":"`+e.pw+`"}`, 401, CodeUnauthorized)
	// The second failure doubles the wait: 100ms later is still too early.
	now = now.Add(100 * time.Millisecond)
	e.expectError(t, "POST", "/auth/login", "", `{"username":"myst","password":"`+e.pw+`"}`, 429, CodeTooManyRequests)
	now = now.Add(time.Second)
	e.login(t)
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t)
	e.expectError(t, "PUT", "/auth/password", tok, `{"current_password":"x","new_password":"long enough pw"}`, 403, CodeForbidden)
	eb := e.expectError(t, "PUT", "/auth/password", tok, `{"current_password":"`+e.pw+`","new_password":"short"}`, 400, CodeValidation)
	if eb.Fields["new_password"] == "" {
		t.Fatalf("short password error has no field: %+v", eb)
	}
	if resp := e.do(t, "PUT", "/auth/password", tok, `{"current_password":"`+e.pw+`","new_password":"new password 1"}`, nil); resp.StatusCode != 204 {
		t.Fatalf("change password: %d", resp.StatusCode)
	}
	e.expectError(t, "GET", "/identities", tok, "", 401, CodeUnauthorized)
	if got, _ := ReadPassword(e.pwFile); got != "new password 1" {
		t.Fatalf("password file holds %q", got)
	}
	fi, _ := os.Stat(e.pwFile)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode after change %v", fi.Mode().Perm())
	}
	e.pw = "new password 1"
	e.login(t)
}

func TestBadJSON(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t)
	for _, tc := range []struct {
		body, code, msg, field string
	}{
		{`{"passphrase":`, CodeBadRequest, "malformed JSON", ""},
		{`{"passphrase":"a",}`, CodeBadRequest, "malformed JSON at byte", ""},
		{`[1,2]`, CodeBadRequest, "want a JSON object", ""},
		{`null`, CodeBadRequest, "null", ""},
		{``, CodeBadRequest, "empty", ""},
		{`{"passphrase":"a"} {"x":1}`, CodeBadRequest, "after the JSON object", ""},
		{`{"passphrase":"a","admin":true}`, CodeBadRequest, "unknown field admin", "admin"},
		{`{"passphrase":"a","PASSPHRASE":"b"}`, CodeBadRequest, "unknown field PASSPHRASE", "PASSPHRASE"},
		{`{"passphrase":5}`, CodeBadRequest, "wrong type", "passphrase"},
		{`{}`, CodeValidation, "missing required fields: passphrase", "passphrase"},
		{`{"passphrase":null}`, CodeValidation, "missing required", "passphrase"},
		{`{"passphrase":""}`, CodeValidation, "must not be empty", "passphrase"},
	} {
		eb := e.expectError(t, "POST", "/identities", tok, tc.body, 400, tc.code)
		if !strings.Contains(eb.Message, tc.msg) {
			t.Errorf("body %q: message %q does not contain %q", tc.body, eb.Message, tc.msg)
		}
		if tc.field != "" && eb.Fields[tc.field] == "" {
			t.Errorf("body %q: fields %v do not name %q", tc.body, eb.Fields, tc.field)
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	tok := e.login(t)
	big := `{"passphrase":"` + strings.Repeat("a", 2048) + `"}`
	e.expectError(t, "POST", "/identities", tok, big, 413, CodeTooLarge)
	// Also before auth-free decoding: the login body is limited too.
	e.expectError(t, "POST", "/auth/login", "", `{"username":"myst","password":"`+strings.Repeat("a", 2048)+`"}`, 413, CodeTooLarge)
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t)
	eb := e.expectError(t, "GET", "/identities/0x0000000000000000000000000000000000000001", tok, "", 404, CodeNotFound)
	if !strings.Contains(eb.Message, "0x0000000000000000000000000000000000000001") {
		t.Errorf("404 message does not name the identity: %q", eb.Message)
	}
	e.expectError(t, "GET", "/identities/nope", tok, "", 400, CodeValidation)
	e.expectError(t, "GET", "/no/such/route", tok, "", 404, CodeNotFound)
	var er ErrorResponse
	resp := e.do(t, "DELETE", "/healthcheck", "", "", &er)
	if resp.StatusCode != 405 || er.Error.Code != CodeMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "GET") {
		t.Fatalf("DELETE /healthcheck: %d %+v allow=%q", resp.StatusCode, er, resp.Header.Get("Allow"))
	}
}

func TestIdentityFlow(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t)
	var id IdentityDTO
	if resp := e.do(t, "POST", "/identities", tok, `{"passphrase":"secret"}`, &id); resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	if !id.Default || id.Unlocked || !strings.HasPrefix(id.ID, "0x") {
		t.Fatalf("created %+v", id)
	}
	var id2 IdentityDTO
	e.do(t, "POST", "/identities", tok, `{"passphrase":"secret2","set_default":true}`, &id2)
	if !id2.Default {
		t.Fatalf("set_default ignored: %+v", id2)
	}
	var list IdentityListResponse
	e.do(t, "GET", "/identities", tok, "", &list)
	if len(list.Identities) != 2 {
		t.Fatalf("list %+v", list)
	}
	defaults := 0
	for _, x := range list.Identities {
		if x.Default {
			defaults++
		}
	}
	if defaults != 1 {
		t.Fatalf("%d defaults in %+v", defaults, list)
	}
	var got IdentityDTO
	if resp := e.do(t, "GET", "/identities/"+strings.ToLower(id.ID), tok, "", &got); resp.StatusCode != 200 || got.ID != id.ID {
		t.Fatalf("get: %d %+v", resp.StatusCode, got)
	}
	e.expectError(t, "POST", "/identities/"+id.ID+"/sign", tok, `{"message":"hi"}`, 409, "identity_locked")
	eb := e.expectError(t, "PUT", "/identities/"+id.ID+"/unlock", tok, `{"passphrase":"wrong"}`, 403, "wrong_passphrase")
	if eb.Fields["passphrase"] == "" {
		t.Errorf("wrong passphrase error has no field: %+v", eb)
	}
	var un IdentityDTO
	if resp := e.do(t, "PUT", "/identities/"+id.ID+"/unlock", tok, `{"passphrase":"secret"}`, &un); resp.StatusCode != 200 || !un.Unlocked {
		t.Fatalf("unlock: %d %+v", resp.StatusCode, un)
	}
	var sr SignResponse
	if resp := e.do(t, "POST", "/identities/"+id.ID+"/sign", tok, `{"message":"hello"}`, &sr); resp.StatusCode != 200 {
		t.Fatalf("sign: %d", resp.StatusCode)
	}
	sig, err := hexutil.Decode(sr.Signature)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := identity.ParseAddress(id.ID)
	if err := identity.Verify(addr, []byte("hello"), sig); err != nil {
		t.Fatalf("API signature does not verify: %v", err)
	}
	if err := identity.Verify(addr, []byte("hellO"), sig); err == nil {
		t.Fatal("API signature verifies a different message")
	}
	e.expectError(t, "POST", "/identities/0x0000000000000000000000000000000000000002/sign", tok, `{"message":"x"}`, 404, CodeNotFound)
	var def IdentityDTO
	if resp := e.do(t, "PUT", "/identities/"+id.ID+"/default", tok, "", &def); resp.StatusCode != 200 || !def.Default || def.ID != id.ID {
		t.Fatalf("set default: %d %+v", resp.StatusCode, def)
	}
	var old IdentityDTO
	e.do(t, "GET", "/identities/"+id2.ID, tok, "", &old)
	if old.Default {
		t.Fatal("previous default still marked default")
	}
	e.expectError(t, "PUT", "/identities/0x0000000000000000000000000000000000000002/default", tok, "", 404, CodeNotFound)
}

func TestPanicGivesJSON500(t *testing.T) {
	e := newEnv(t, nil)
	e.s.Add(Route{Method: "GET", Path: "/boom", Public: true, Op: Operation{Summary: "boom"}, Handler: func(http.ResponseWriter, *http.Request) { panic("boom") }})
	eb := e.expectError(t, "GET", "/boom", "", "", 500, CodeInternal)
	if strings.Contains(eb.Message, "boom") {
		t.Fatal("internal details leaked to the client")
	}
}

func TestAddressPolicy(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, PasswordFileName)
	if _, _, err := EnsurePassword(pwFile); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"127.0.0.1", false, true}, {"::1", false, true}, {"localhost", false, true},
		{"0.0.0.0", false, false}, {"192.0.2.1", false, false}, {"0.0.0.0", true, true},
		{"example.com", true, false},
	} {
		_, err := New(Config{Address: tc.addr, AllowRemote: tc.remote, PasswordFile: pwFile})
		if (err == nil) != tc.ok {
			t.Errorf("New(address %s, remote %v) err = %v, want ok=%v", tc.addr, tc.remote, err, tc.ok)
		}
	}
	if _, err := New(Config{PasswordFile: filepath.Join(dir, "missing")}); err == nil {
		t.Error("missing password file accepted")
	}
}

// TestOpenAPIMatchesRoutes checks the served document against the mux: every
// documented operation is routed by the mux to exactly its own pattern, and
// every registered route is documented. Server.Add is the only way into the
// mux, so Routes() is the mux's route list.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, nil)
	var doc Document
	if resp := e.do(t, "GET", "/openapi.json", "", "", &doc); resp.StatusCode != 200 {
		t.Fatalf("openapi.json: %d", resp.StatusCode)
	}
	if doc.OpenAPI != OpenAPIVersion || len(doc.Paths) == 0 {
		t.Fatalf("bad document header %q, %d paths", doc.OpenAPI, len(doc.Paths))
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			pattern := strings.ToUpper(method) + " " + path
			documented[pattern] = true
			concrete := strings.ReplaceAll(path, "{id}", "0x0000000000000000000000000000000000000001")
			req := httptest.NewRequest(strings.ToUpper(method), concrete, nil)
			if _, got := e.s.mux.Handler(req); got != pattern {
				t.Errorf("documented %s is routed to %q", pattern, got)
			}
			if op.OperationID == "" || len(op.Responses) == 0 {
				t.Errorf("%s: incomplete operation %+v", pattern, op)
			}
			if _, ok := op.Responses["500"]; !ok {
				t.Errorf("%s: no 500 response documented", pattern)
			}
		}
	}
	routes := e.s.Routes()
	if len(routes) != len(documented) {
		t.Errorf("%d routes registered, %d documented", len(routes), len(documented))
	}
	for _, rt := range routes {
		if !documented[rt.Method+" "+rt.Path] {
			t.Errorf("route %s %s is not in openapi.json", rt.Method, rt.Path)
		}
	}
	for _, want := range []string{"GET /healthcheck", "POST /auth/login", "PUT /auth/password", "GET /identities", "POST /identities",
		"GET /identities/{id}", "PUT /identities/{id}/unlock", "PUT /identities/{id}/default", "POST /identities/{id}/sign", "GET /openapi.json"} {
		if !documented[want] {
			t.Errorf("%s missing from openapi.json", want)
		}
	}
	// Request schemas state the same required fields DecodeJSON enforces.
	create := doc.Paths["/identities"]["post"].RequestBody.Content["application/json"]["schema"]
	if len(create.Required) != 1 || create.Required[0] != "passphrase" || create.Properties["set_default"] == nil {
		t.Errorf("create identity schema %+v", create)
	}
	if doc.Paths["/healthcheck"]["get"].Security == nil || len(*doc.Paths["/healthcheck"]["get"].Security) != 0 {
		t.Error("healthcheck not documented as public")
	}
	if _, ok := doc.Paths["/identities"]["get"].Responses["401"]; !ok {
		t.Error("401 not documented for an authenticated route")
	}
}

func TestServeShutsDown(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Port = 0 })
	ln, err := e.s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthcheck")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"version":"test"`)) {
		t.Fatalf("healthcheck over real listener: %d %s", resp.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthcheck"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

func TestRebindingHostRejected(t *testing.T) {
	e := newEnv(t, nil)
	for host, want := range map[string]int{
		"evil.example:4050": 403, "evil.example": 403, "192.0.2.1:4050": 403,
		"localhost:4050": 200, "127.0.0.1:4050": 200, "[::1]:4050": 200, "LOCALHOST": 200,
	} {
		req := httptest.NewRequest("GET", "/healthcheck", nil)
		req.Host = host
		w := httptest.NewRecorder()
		e.s.Handler().ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("Host %q: status %d, want %d", host, w.Code, want)
		}
	}
	remote := newEnv(t, func(c *Config) { c.AllowRemote = true })
	req := httptest.NewRequest("GET", "/healthcheck", nil)
	req.Host = "node.example:4050"
	w := httptest.NewRecorder()
	remote.s.Handler().ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("remote-allowed server refused Host node.example: %d", w.Code)
	}
}

func TestEmbeddedStructFields(t *testing.T) {
	type Inner struct {
		A string `json:"a"`
		B int    `json:"b,omitempty"`
	}
	type Outer struct {
		Inner
		C bool `json:"c"`
	}
	var v Outer
	if err := DecodeBytes([]byte(`{"a":"x","c":true}`), &v); err != nil || v.A != "x" || !v.C {
		t.Fatalf("embedded decode: %+v, %v", v, err)
	}
	err := DecodeBytes([]byte(`{"c":true}`), &v)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Body.Fields["a"] != "required" {
		t.Fatalf("missing embedded required field: %v", err)
	}
	s := SchemaOf(Outer{})
	if s.Properties["a"] == nil || s.Properties["b"] == nil || s.Properties["Inner"] != nil || len(s.Required) != 2 {
		t.Fatalf("embedded schema %+v", s)
	}
}
