package tequilapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/market"
)

type fakeCaps struct {
	c   ServiceCapsDTO
	err error
}

func (f fakeCaps) Caps(context.Context) (ServiceCapsDTO, error) { return f.c, f.err }

func TestServiceCapsRoutes(t *testing.T) {
	want := ServiceCapsDTO{SessionBandwidth: 1 << 20, MaxSessions: 5, Sessions: 2, Access: "public",
		Quota: QuotaDTO{Month: "2026-12", Limit: 1 << 30, Used: 1 << 29, Resets: "2027-01-01T00:00:00Z"}}
	code, body := serve(t, ServiceCapsRoutes(fakeCaps{c: want}, nil), http.MethodGet, "/service/caps", "")
	var got ServiceCapsDTO
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || got.Allow == nil || got.Quota != want.Quota || got.MaxSessions != 5 || got.SessionBandwidth != 1<<20 {
		t.Fatalf("caps: %d %s (want the caps, allow as an empty list)", code, body)
	}
	starting := fakeCaps{err: NewError(http.StatusServiceUnavailable, "provider_starting", "not yet")}
	if code, _ := serve(t, ServiceCapsRoutes(starting, nil), http.MethodGet, "/service/caps", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("starting provider: %d", code)
	}
}

type fakeStopper struct {
	stopped int
	err     error
}

func (f *fakeStopper) StopService(context.Context) error {
	if f.err != nil {
		return f.err
	}
	f.stopped++
	return nil
}

func TestServiceStopRoute(t *testing.T) {
	f := &fakeStopper{}
	if code, body := serve(t, ServiceStopRoutes(f, nil), http.MethodDelete, "/service", ""); code != http.StatusNoContent || body != "" || f.stopped != 1 {
		t.Fatalf("DELETE /service: %d %q, %d stops", code, body, f.stopped)
	}
	f.err = NewError(http.StatusNotFound, CodeNotFound, "no provider")
	if code, body := serve(t, ServiceStopRoutes(f, nil), http.MethodDelete, "/service", ""); code != http.StatusNotFound || !strings.Contains(body, CodeNotFound) {
		t.Fatalf("DELETE /service without a provider: %d %s", code, body)
	}
}

func TestServiceStartRequestOptions(t *testing.T) {
	for body, ok := range map[string]bool{
		`{}`: true, `{"options":{"Serve":{}}}`: true, `{"options":[1]}`: false, `{"options":"x"}`: false, `{"options":null}`: false,
		`{"identity":"0x0000000000000000000000000000000000000000"}`: false,
	} {
		var r ServiceStartRequest
		err := DecodeBytes([]byte(body), &r)
		if (err == nil) != ok {
			t.Errorf("PUT /service %s: %v, want accepted %t", body, err, ok)
		}
	}
}

// TestProviderOptionsValidate: PUT /service {"provider": ...} names every
// bad option in words, and accepts the start form's defaults.
func TestProviderOptionsValidate(t *testing.T) {
	for body, bad := range map[string][]string{
		`{"provider":{"exit_mode":"userspace","price_per_hour":"0.1","price_per_gib":"0.5"}}`:                                                 nil,
		`{"provider":{"price_per_hour":"0.1","price_per_gib":"0.5","allow":["0x00000000000000000000000000000000000000bb"],"max_sessions":2}}`: nil,
		`{"provider":{"exit_mode":"root","price_per_hour":"","price_per_gib":"-1"}}`:                                                          {"exit_mode", "price_per_hour", "price_per_gib"},
		`{"provider":{"price_per_hour":"1","price_per_gib":"1","max_sessions":-1,"allow":["nobody"]}}`:                                        {"max_sessions", "allow"},
		`{"provider":{"price_per_hour":"1","price_per_gib":"1","bandwidth":"` + strings.Repeat("9", 40) + `"}}`:                               {"bandwidth"},
		`{"provider":{"price_per_hour":"1","price_per_gib":"1"},"options":{"Serve":{}}}`:                                                      {"provider"},
		`{"provider":{"price_per_hour":"1","price_per_gib":"1","country":"XX"}}`:                                                              {"country"},
		`{"provider":{"price_per_hour":"1","price_per_gib":"1","country":"de"}}`:                                                              nil,
	} {
		var r ServiceStartRequest
		err := DecodeBytes([]byte(body), &r)
		if bad == nil {
			if err != nil {
				t.Errorf("%s: %v", body, err)
			} else if r.Provider.ExitMode != ExitUserspace {
				t.Errorf("%s: exit mode %q, want the default userspace", body, r.Provider.ExitMode)
			}
			continue
		}
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Body.Code != CodeValidation {
			t.Errorf("%s: %v, want %s", body, err, CodeValidation)
			continue
		}
		for _, f := range bad {
			if apiErr.Body.Fields[f] == "" || !strings.Contains(apiErr.Body.Message, f+": ") {
				t.Errorf("%s: %q does not name %s", body, apiErr.Error(), f)
			}
		}
		if len(apiErr.Body.Fields) != len(bad) {
			t.Errorf("%s: fields %v, want %v", body, apiErr.Body.Fields, bad)
		}
	}
	allow := make([]string, market.MaxAllow+1)
	for i := range allow {
		allow[i] = "0x00000000000000000000000000000000000000bb"
	}
	o := ProviderOptionsDTO{PricePerHour: "1", PricePerGiB: "1", Allow: allow}
	if err := o.Validate(); err == nil {
		t.Fatal("an allow-list above market.MaxAllow was accepted")
	}
}
