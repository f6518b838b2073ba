package tequilapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fakeConn struct {
	connected bool
	last      ConnectRequest
	failWith  error
}

func (f *fakeConn) Connect(_ context.Context, req ConnectRequest) (ConnectionStatus, error) {
	if f.failWith != nil {
		return ConnectionStatus{}, f.failWith
	}
	if f.connected {
		return ConnectionStatus{}, ErrAlreadyConnected
	}
	f.connected, f.last = true, req
	return ConnectionStatus{Provider: "0xabc", SOCKS: "127.0.0.1:1080", Running: true, Spent: "0", RatePerHour: "0"}, nil
}
func (f *fakeConn) Status(context.Context) (ConnectionStatus, error) {
	if !f.connected {
		return ConnectionStatus{}, ErrNotConnected
	}
	return ConnectionStatus{Provider: "0xabc", Running: true, RxBytes: 7}, nil
}
func (f *fakeConn) Disconnect(context.Context) error {
	if !f.connected {
		return ErrNotConnected
	}
	f.connected = false
	return nil
}

type fakeEarn struct{ settled bool }

func (f *fakeEarn) Earnings(context.Context) (EarningsDTO, error) {
	return EarningsDTO{Earned: "10", Settled: "4", Unsettled: "6"}, nil
}
func (f *fakeEarn) Settle(context.Context) (SettleDTO, error) {
	if f.settled {
		return SettleDTO{}, ErrNothingToSettle
	}
	f.settled = true
	return SettleDTO{Tx: "0x01", Amount: "10"}, nil
}

type fakeSessions struct{}

func (fakeSessions) Sessions(context.Context) ([]SessionDTO, error) { return nil, nil }

func serve(t *testing.T, routes []Route, method, path, body string) (int, string) {
	t.Helper()
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.HandleFunc(r.Method+" "+r.Path, r.Handler)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestConnectionRoutes(t *testing.T) {
	f := &fakeConn{}
	routes := ConnectionRoutes(f, nil)
	if code, _ := serve(t, routes, http.MethodGet, "/connection", ""); code != http.StatusNotFound {
		t.Fatalf("status before connect: %d", code)
	}
	if code, body := serve(t, routes, http.MethodPut, "/connection", `{"country":"DE","max_price_gib":"0.2"}`); code != http.StatusOK || !strings.Contains(body, `"socks":"127.0.0.1:1080"`) {
		t.Fatalf("connect: %d %s", code, body)
	}
	if f.last.Country != "DE" || f.last.MaxPriceGiB != "0.2" {
		t.Fatalf("request %+v", f.last)
	}
	if code, _ := serve(t, routes, http.MethodPut, "/connection", `{}`); code != http.StatusConflict {
		t.Fatalf("second connect: %d", code)
	}
	if code, body := serve(t, routes, http.MethodGet, "/connection", ""); code != http.StatusOK || !strings.Contains(body, `"rx_bytes":7`) {
		t.Fatalf("status: %d %s", code, body)
	}
	if code, _ := serve(t, routes, http.MethodDelete, "/connection", ""); code != http.StatusNoContent {
		t.Fatalf("disconnect: %d", code)
	}
	if code, _ := serve(t, routes, http.MethodDelete, "/connection", ""); code != http.StatusNotFound {
		t.Fatalf("second disconnect: %d", code)
	}
	for _, bad := range []string{`{"country":"Germany"}`, `{"ip_type":"satellite"}`, `{"max_price_gib":"-1"}`, `{"provider_id":"0x12"}`,
		`{"socks_listen":"0.0.0.0:1080"}`, `{"colour":"red"}`, `{"country":"DE"}{}`,
		`{"mode":"vpn"}`, `{"kill_switch":"always"}`, `{"dns":"custom","dns_servers":["1.1.1.1"]}`,
		`{"mode":"tun","socks_listen":"127.0.0.1:1080"}`, `{"mode":"tun","kill_switch":"sometimes"}`,
		`{"mode":"tun","dns":"google"}`, `{"mode":"tun","dns":"custom"}`, `{"mode":"tun","dns":"custom","dns_servers":["dns.google"]}`,
		`{"mode":"tun","dns":"custom","dns_servers":["1.1.1.1","1.0.0.1","8.8.8.8","8.8.4.4"]}`,
		`{"mode":"tun","dns":"custom","dns_servers":["fe80::1%eth0"]}`, `{"mode":"tun","dns":"custom","dns_servers":["0.0.0.0"]}`,
		`{"mode":"tun","dns_servers":["1.1.1.1"]}`} {
		if code, body := serve(t, routes, http.MethodPut, "/connection", bad); code != http.StatusBadRequest {
			t.Fatalf("body %s: %d %s, want 400", bad, code, body)
		}
	}
	for _, good := range []string{`{"mode":"tun"}`, `{"mode":"tun","kill_switch":"always","dns":"system"}`,
		`{"mode":"tun","dns":"custom","dns_servers":["192.0.2.53","2001:db8::53"]}`, `{"mode":"proxy","socks_listen":"127.0.0.1:0"}`} {
		if code, body := serve(t, routes, http.MethodPut, "/connection", good); code != http.StatusOK {
			t.Fatalf("body %s: %d %s, want 200", good, code, body)
		}
		if code, _ := serve(t, routes, http.MethodDelete, "/connection", ""); code != http.StatusNoContent {
			t.Fatalf("disconnect after %s: %d", good, code)
		}
	}
	f.failWith = fmt.Errorf("consumer: kernel tunnel: %w", ErrNoPrivileges)
	if code, body := serve(t, routes, http.MethodPut, "/connection", `{"mode":"tun"}`); code != http.StatusForbidden || !strings.Contains(body, CodeNoPrivileges) || !strings.Contains(body, "CAP_NET_ADMIN") {
		t.Fatalf("tun connect without privileges: %d %s, want 403 %s", code, body, CodeNoPrivileges)
	}
	f.failWith = errors.New("provider refused: insufficient_funds")
	if code, body := serve(t, routes, http.MethodPut, "/connection", `{}`); code != http.StatusBadGateway || !strings.Contains(body, "insufficient_funds") {
		t.Fatalf("failed connect: %d %s", code, body)
	}
}

func TestEarningsAndSessionRoutes(t *testing.T) {
	routes := append(EarningsRoutes(&fakeEarn{}, nil), SessionRoutes(fakeSessions{}, nil)...)
	if code, body := serve(t, routes, http.MethodGet, "/earnings", ""); code != http.StatusOK || !strings.Contains(body, `"unsettled":"6"`) {
		t.Fatalf("earnings: %d %s", code, body)
	}
	if code, body := serve(t, routes, http.MethodPost, "/settle", ""); code != http.StatusOK || !strings.Contains(body, `"tx":"0x01"`) {
		t.Fatalf("settle: %d %s", code, body)
	}
	if code, _ := serve(t, routes, http.MethodPost, "/settle", ""); code != http.StatusConflict {
		t.Fatalf("second settle: %d", code)
	}
	code, body := serve(t, routes, http.MethodGet, "/sessions", "")
	var list SessionList
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || list.Sessions == nil {
		t.Fatalf("sessions: %d %s (want an empty list, not null)", code, body)
	}
}

// FuzzConnectRequest: the PUT /connection body decoder never panics,
// fails only with a 400, and what it accepts has a valid filter.
func FuzzConnectRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"country":"DE"}`, `{"provider_id":"0xd6F8612193c308Cf6FfEd67911C907213e345BC0"}`,
		`{"ip_type":"residential","max_price_gib":"0.2","max_price_hour":"1"}`, `{"socks_listen":"127.0.0.1:1080"}`,
		`{"country":"de"}`, `{"max_price_gib":"1e5"}`, `{"country":null}`, `[]`, `{"country":"DE","country":"US"}`,
		`{"mode":"tun","kill_switch":"always","dns":"custom","dns_servers":["192.0.2.53"]}`, `{"mode":"tun","dns_servers":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ConnectRequest
		check(t, body, &req)
		if DecodeBytes(body, &req) == nil {
			if _, err := req.Filter(); err != nil {
				t.Fatalf("accepted %q with a bad filter: %v", body, err)
			}
			if req.DNS == DNSCustom {
				if _, err := req.CustomDNS(); err != nil {
					t.Fatalf("accepted %q with bad resolvers: %v", body, err)
				}
			}
		}
	})
}
