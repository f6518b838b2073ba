package hermes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/payments"
)

// TestOpenAPIMatchesRoutes keeps /openapi.json equal to the served routes.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, r := range Routes() {
		served = append(served, r.Method+" "+r.Path)
	}
	served = append(served, "GET /metrics")
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("openapi.json documents\n%s\nbut the server serves\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}

func post(t *testing.T, h http.Handler, path string, body []byte) (int, []byte) {
	t.Helper()
	return postAs(t, h, path, "application/json", body)
}

// postAs posts body declared as contentType ("": no header).
func postAs(t *testing.T, h http.Handler, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, b
}

// TestContentTypeRequired: request bodies must be declared
// application/json (parameters allowed); anything else is a 415 with the
// JSON error body and is not acted on.
func TestContentTypeRequired(t *testing.T) {
	e := newEnv(t, nil)
	h := e.svc.Handler(e.reg)
	c, prov := parties(e.chain)
	r := secret("ct")
	raw, _ := json.Marshal(msg(t, c, prov, 1, 100, 100, r))
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "application/json-seq", "multipart/form-data; boundary=x", "application/json;;"} {
		for _, path := range []string{"/v1/exchange", "/v1/reveal"} {
			body := raw
			if path == "/v1/reveal" {
				body = revealJSON(prov, r)
			}
			code, b := postAs(t, h, path, ct, body)
			if code != http.StatusUnsupportedMediaType || errCode(t, b) != CodeUnsupportedMedia {
				t.Errorf("%s as %q: %d %s, want 415 %s", path, ct, code, b, CodeUnsupportedMedia)
			}
		}
	}
	if pv, err := e.svc.Provider(context.Background(), prov); err != nil || pv.Earned.Sign() != 0 {
		t.Fatalf("a refused body was acted on: %+v %v", pv, err)
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
		if code, b := postAs(t, h, "/v1/exchange", ct, raw); code != http.StatusOK {
			t.Errorf("exchange as %q: %d %s", ct, code, b)
		}
	}
}

func errCode(t *testing.T, body []byte) Code {
	t.Helper()
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return eb.Error.Code
}

func TestHTTPAPI(t *testing.T) {
	e := newEnv(t, nil)
	h := e.svc.Handler(e.reg)
	c, prov := parties(e.chain)
	r := secret("1")
	m := msg(t, c, prov, 1, 100, 100, r)
	raw, _ := json.Marshal(m)

	code, body := post(t, h, "/v1/exchange", raw)
	if code != http.StatusOK {
		t.Fatalf("exchange: %d %s", code, body)
	}
	var resp struct {
		Promise  json.RawMessage `json:"promise"`
		Replayed bool            `json:"replayed"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	hp, err := payments.DecodePromise(resp.Promise)
	if err != nil || hp.Verify(e.op.Address()) != nil || hp.Hashlock != m.Promise.Hashlock || resp.Replayed {
		t.Fatalf("promise %s: %v", body, err)
	}
	if code, body = post(t, h, "/v1/exchange", raw); code != http.StatusOK || !strings.Contains(string(body), `"replayed":true`) {
		t.Fatalf("replay: %d %s", code, body)
	}

	// Strict decoding and specific codes in the JSON error body.
	var obj map[string]any
	_ = json.Unmarshal(raw, &obj)
	obj["extra"] = "1"
	unknown, _ := json.Marshal(obj)
	wrongHermes := *m
	wrongHermes.HermesID = common.HexToAddress("0x1")
	_ = wrongHermes.Sign(c)
	wh, _ := json.Marshal(&wrongHermes)
	for name, tc := range map[string]struct {
		path   string
		body   []byte
		status int
		code   Code
	}{
		"unknown field":   {"/v1/exchange", unknown, 400, CodeBadRequest},
		"not json":        {"/v1/exchange", []byte("{"), 400, CodeBadRequest},
		"too large":       {"/v1/exchange", bytes.Repeat([]byte(" "), maxBody+1), 400, CodeBadRequest},
		"wrong hermes":    {"/v1/exchange", wh, 400, CodeWrongHermes},
		"bad preimage":    {"/v1/reveal", mustJSON(api.RevealRequest{Provider: prov, Hashlock: m.Promise.Hashlock, R: [32]byte{1}}), 400, CodeBadPreimage},
		"reveal unknown":  {"/v1/reveal", revealJSON(prov, secret("zzz")), 404, CodeNotFound},
		"reveal extra":    {"/v1/reveal", []byte(`{"provider":"0x0000000000000000000000000000000000000001","hashlock":"0x00","r":"0x00","x":1}`), 400, CodeBadRequest},
		"reveal short r":  {"/v1/reveal", []byte(`{"provider":"0x0000000000000000000000000000000000000001","hashlock":"0x` + strings.Repeat("00", 32) + `","r":"0x00"}`), 400, CodeBadRequest},
		"reveal missing":  {"/v1/reveal", []byte(`{"provider":"0x0000000000000000000000000000000000000001"}`), 400, CodeBadRequest},
		"reveal trailing": {"/v1/reveal", append(revealJSON(prov, r), []byte("{}")...), 400, CodeBadRequest},
	} {
		code, body := post(t, h, tc.path, tc.body)
		if code != tc.status || errCode(t, body) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", name, code, body, tc.status, tc.code)
		}
	}
	if code, body = post(t, h, "/v1/reveal", revealJSON(prov, r)); code != 200 || !strings.Contains(string(body), `"revealed":1`) {
		t.Fatalf("reveal: %d %s", code, body)
	}
	if code, body = post(t, h, "/v1/reveal", revealJSON(prov, r)); code != 200 || !strings.Contains(string(body), `"revealed":0`) {
		t.Fatalf("retried reveal: %d %s", code, body)
	}

	for path, want := range map[string]string{
		"/v1/consumers/" + c.Address().Hex(): `"promised":"100"`,
		"/v1/providers/" + prov.Hex():        `"earned":"100"`,
		"/v1/info":                           `"chain_id":"1337"`,
		"/openapi.json":                      `"openapi"`,
		"/metrics":                           `hermes_exchange_rejected_total{reason="wrong_hermes"} 1`,
		"/healthz":                           `ok`,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d %s, want %s", path, rec.Code, rec.Body.String(), want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/consumers/0x12", nil))
	if rec.Code != 400 {
		t.Fatalf("bad identity: %d", rec.Code)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func revealJSON(p common.Address, r []byte) []byte {
	q := api.RevealRequest{Provider: p, Hashlock: payments.Hashlock(r)}
	copy(q.R[:], r)
	return mustJSON(q)
}

// TestCodeOfUnknownIsUnavailable: an error without a code answers as
// unavailable (retryable). The codes' statuses are tested where they
// live, in hermes/api (TestErrorCodesHaveStatuses); Code is an alias of
// api.Code.
func TestCodeOfUnknownIsUnavailable(t *testing.T) {
	if CodeOf(errors.New("x")) != CodeUnavailable {
		t.Fatal("unknown errors must map to unavailable")
	}
}

// TestWriteExchangeMatchesAPIType: the hand-built 200 answer is byte for
// byte what encoding/json makes of api.ExchangeResponse.
func TestWriteExchangeMatchesAPIType(t *testing.T) {
	hp := payments.Promise{ChainID: testChainID, ChannelID: payments.ProviderChannelID(testSigner("p").Address(), testHermes),
		Amount: big.NewInt(12345), Fee: big.NewInt(7), Hashlock: payments.Hashlock(secret("w"))}
	if err := hp.Sign(testSigner("operator")); err != nil {
		t.Fatal(err)
	}
	for _, replayed := range []bool{false, true} {
		rec := httptest.NewRecorder()
		writeExchange(rec, &Result{Promise: hp, Replayed: replayed})
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(api.ExchangeResponse{Promise: hp, Replayed: replayed}); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusOK || rec.Body.String() != want.String() || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("replayed=%v: %d %q\nwant %q", replayed, rec.Code, rec.Body.String(), want.String())
		}
	}
}
