package tequilapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
)

type fakeSettlements struct {
	list  []SettlementDTO
	limit int
	err   error
}

func (f *fakeSettlements) Settlements(_ context.Context, limit int) ([]SettlementDTO, error) {
	f.limit = limit
	return f.list, f.err
}

func TestSettlementRoutes(t *testing.T) {
	empty := &fakeSettlements{}
	code, body := serve(t, SettlementRoutes(empty, nil), http.MethodGet, "/settlements", "")
	var got SettlementsDTO
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || got.Settlements == nil || len(got.Settlements) != 0 {
		t.Fatalf("empty history: %d %s (want an empty list, not null)", code, body)
	}
	if empty.limit != MaxSettlementsListed {
		t.Fatalf("asked for %d records, want at most %d", empty.limit, MaxSettlementsListed)
	}
	h := &fakeSettlements{list: []SettlementDTO{{ID: 2, Trigger: "auto", Status: "failed", Attempt: 2, Amount: "10", Error: "boom"}, {ID: 1, Status: "settled", Tx: "0x01"}}}
	code, body = serve(t, SettlementRoutes(h, nil), http.MethodGet, "/settlements", "")
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || len(got.Settlements) != 2 || got.Settlements[0].Error != "boom" || got.Settlements[1].Tx != "0x01" {
		t.Fatalf("history: %d %s", code, body)
	}
	unavailable := &fakeSettlements{err: NewError(http.StatusServiceUnavailable, "provider_starting", "not yet")}
	if code, _ := serve(t, SettlementRoutes(unavailable, nil), http.MethodGet, "/settlements", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("starting provider: %d", code)
	}
}
