package tequilapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/quality"
)

// ProposalSource is what GET /proposals reads: the proposals a node has
// seen. *discovery.Cache implements it.
type ProposalSource interface {
	// Query returns the proposals matching f, in f's order.
	Query(f market.Filter) []market.Proposal
}

// ProposalScores scores the providers GET /proposals lists;
// *quality.Service implements it.
type ProposalScores interface {
	// Score returns provider's quality score from the reports this node
	// has counted.
	Score(provider common.Address) quality.Score
}

// ListedProposal is one item of GET /proposals: the proposal's fields (as
// in market.MarshalList) and, when the node scores providers, the
// provider's quality score.
type ListedProposal struct {
	market.Proposal
	// Quality is the provider's score from payment-backed quality reports
	// (docs/quality.md); absent when the node keeps no scores.
	Quality *quality.Score `json:"quality,omitempty"`
}

// ProposalRoutes returns GET /proposals: the proposals of src matching the
// query (market.ParseFilter names), in the stable JSON list form, each with
// its provider's quality score when scores is not nil.
func ProposalRoutes(src ProposalSource, scores ProposalScores, log *slog.Logger) []Route {
	if log == nil {
		log = slog.Default()
	}
	return []Route{{
		Method: http.MethodGet,
		Path:   "/proposals",
		Op: Operation{
			Summary:  "Provider proposals seen on the p2p network; filters: service_type, country, ip_type, max_price_hour, max_price_gib (MYST), provider_id, hermes_id, sort",
			Tags:     []string{"proposals"},
			Response: []ListedProposal{},
			Errors:   []int{http.StatusBadRequest},
		},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			f, err := market.ParseFilter(r.URL.Query())
			if err != nil {
				WriteError(w, log, NewError(http.StatusBadRequest, "bad_filter", err.Error()))
				return
			}
			b, err := marshalListed(src.Query(f), scores)
			if err != nil {
				log.Error("encode proposals", "err", err)
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(append(b, '\n'))
		},
	}}
}

// marshalListed is market.MarshalList with each proposal's quality score
// added as the last field "quality" (when scores is not nil).
func marshalListed(ps []market.Proposal, scores ProposalScores) ([]byte, error) {
	if scores == nil {
		return market.MarshalList(ps)
	}
	raws := make([]json.RawMessage, 0, len(ps))
	for i := range ps {
		b, err := ps[i].CanonicalJSON()
		if err != nil {
			return nil, err
		}
		sc, err := json.Marshal(scores.Score(ps[i].ProviderID))
		if err != nil {
			return nil, fmt.Errorf("tequilapi: encode quality score: %w", err)
		}
		// b is a JSON object: replace its closing brace.
		item := append(append(append(b[:len(b)-1:len(b)-1], `,"quality":`...), sc...), '}')
		raws = append(raws, item)
	}
	out, err := json.MarshalIndent(raws, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("tequilapi: encode proposal list: %w", err)
	}
	return out, nil
}
