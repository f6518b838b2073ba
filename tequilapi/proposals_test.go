package tequilapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/quality"
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
	routes := ProposalRoutes(src, nil, nil)
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

type fakeScores map[common.Address]quality.Score

func (f fakeScores) Score(p common.Address) quality.Score { return f[p] }

type listOf []market.Proposal

func (l listOf) Query(market.Filter) []market.Proposal { return l }

// TestProposalRoutesQuality: with scores, every listed proposal carries its
// provider's quality score and still decodes as a proposal.
func TestProposalRoutesQuality(t *testing.T) {
	a, b := common.HexToAddress("0xa1"), common.HexToAddress("0xb2")
	src := listOf{{ProviderID: a, Seq: 1, Location: market.Location{Country: "DE"}}, {ProviderID: b, Seq: 2}}
	scores := fakeScores{a: {Provider: a, Reports: 3, SuccessRate: 1, Value: 0.9}, b: {Provider: b, Value: 0.5}}
	code, body := serve(t, ProposalRoutes(src, scores, nil), http.MethodGet, "/proposals", "")
	if code != http.StatusOK {
		t.Fatalf("GET /proposals = %d %q", code, body)
	}
	var got []ListedProposal
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if len(got) != 2 || got[0].ProviderID != a || got[0].Location.Country != "DE" || got[0].Quality == nil ||
		got[0].Quality.Value != 0.9 || got[0].Quality.Reports != 3 || got[1].Quality == nil || got[1].Quality.Value != 0.5 {
		t.Fatalf("listed = %+v", got)
	}
	var plain []market.Proposal // old clients still decode it
	if err := json.Unmarshal([]byte(body), &plain); err != nil || len(plain) != 2 || plain[1].Seq != 2 {
		t.Fatalf("as proposals: %v %+v", err, plain)
	}
	// The OpenAPI schema documents both the proposal and the score.
	if it := SchemaOf([]ListedProposal{}).Items; it == nil || it.Properties["provider_id"] == nil || it.Properties["quality"] == nil ||
		it.Properties["quality"].Properties["success_rate"] == nil {
		t.Fatalf("schema %+v", it)
	}
	// Without scores the list is exactly market.MarshalList.
	_, body = serve(t, ProposalRoutes(src, nil, nil), http.MethodGet, "/proposals", "")
	want, _ := market.MarshalList(src)
	if strings.TrimSpace(body) != string(want) || strings.Contains(body, "quality") {
		t.Fatalf("without scores: %s", body)
	}
}

type fakeQuality struct {
	fakeScores
	blocked common.Address
}

func (f fakeQuality) Blocked(p common.Address) bool { return p == f.blocked }

// TestQualityRoutes: GET /quality/{id} answers the identity's score and
// blacklist state; a malformed identity is a 400 naming the field.
func TestQualityRoutes(t *testing.T) {
	a, b := common.HexToAddress("0xa1"), common.HexToAddress("0xb2")
	src := fakeQuality{fakeScores: fakeScores{a: {Provider: a, Reports: 4, SuccessRate: 0.75, MedianThroughput: 1 << 20, Value: 0.6}}, blocked: b}
	routes := QualityRoutes(src, nil)
	code, body := serve(t, routes, http.MethodGet, "/quality/"+a.Hex(), "")
	var got QualityDTO
	if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("GET /quality = %d %q", code, body)
	}
	if got.Score.Reports != 4 || got.Score.Value != 0.6 || got.Score.MedianThroughput != 1<<20 || got.Blacklisted {
		t.Fatalf("quality of a = %+v", got)
	}
	code, body = serve(t, routes, http.MethodGet, "/quality/"+b.Hex(), "")
	if code != http.StatusOK || !strings.Contains(body, `"blacklisted":true`) {
		t.Fatalf("quality of the blacklisted b = %d %q", code, body)
	}
	code, body = serve(t, routes, http.MethodGet, "/quality/0x12", "")
	if code != http.StatusBadRequest || !strings.Contains(body, `"id"`) {
		t.Fatalf("bad identity = %d %q", code, body)
	}
}
