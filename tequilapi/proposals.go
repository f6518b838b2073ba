package tequilapi

import (
	"log/slog"
	"net/http"

	"github.com/openmyst/openmyst/market"
)

// ProposalSource is what GET /proposals reads: the proposals a node has
// seen. *discovery.Cache implements it.
type ProposalSource interface {
	// Query returns the proposals matching f, in f's order.
	Query(f market.Filter) []market.Proposal
}

// ProposalRoutes returns GET /proposals: the proposals of src matching the
// query (market.ParseFilter names), in the stable JSON list form.
func ProposalRoutes(src ProposalSource, log *slog.Logger) []Route {
	if log == nil {
		log = slog.Default()
	}
	return []Route{{
		Method: http.MethodGet,
		Path:   "/proposals",
		Op: Operation{
			Summary:  "Provider proposals seen on the p2p network; filters: service_type, country, ip_type, max_price_hour, max_price_gib (MYST), provider_id, hermes_id, sort",
			Tags:     []string{"proposals"},
			Response: []market.Proposal{},
			Errors:   []int{http.StatusBadRequest},
		},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			f, err := market.ParseFilter(r.URL.Query())
			if err != nil {
				WriteError(w, log, NewError(http.StatusBadRequest, "bad_filter", err.Error()))
				return
			}
			b, err := market.MarshalList(src.Query(f))
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
