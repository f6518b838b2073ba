package tequilapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
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
