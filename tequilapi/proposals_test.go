package tequilapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/market"
)

type fakeProposals struct{ got market.Filter }

func (f *fakeProposals) Query(q market.Filter) []market.Proposal {
	f.got = q
	return []market.Proposal{}
}

// TestProposalRoutes: the query becomes the filter; a bad filter is a 400
// bad_filter.
func TestProposalRoutes(t *testing.T) {
	src := &fakeProposals{}
	routes := ProposalRoutes(src, nil)
	code, body := serve(t, routes, http.MethodGet, "/proposals?country=DE&max_price_gib=0.2", "")
	if code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Fatalf("GET /proposals = %d %q", code, body)
	}
	if src.got.Country != "DE" {
		t.Fatalf("filter = %+v", src.got)
	}
	code, body = serve(t, routes, http.MethodGet, "/proposals?max_price_gib=cheap", "")
	if code != http.StatusBadRequest || !strings.Contains(body, "bad_filter") {
		t.Fatalf("bad filter = %d %q", code, body)
	}
}
