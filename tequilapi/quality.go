package tequilapi

import (
	"cmp"
	"log/slog"
	"net/http"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/quality"
)

// QualitySource answers GET /quality/{id}; *quality.Service implements
// it.
type QualitySource interface {
	// Score returns provider's quality score from the reports this node
	// has counted.
	Score(provider common.Address) quality.Score
	// Blocked reports whether a verified fraud proof blacklists provider.
	Blocked(provider common.Address) bool
}

// QualityDTO is the answer of GET /quality/{id}.
type QualityDTO struct {
	// Score is the provider's score from the payment-backed quality
	// reports this node has counted (docs/quality.md); a provider without
	// reports scores as unknown (reports 0, value 0.25).
	Score quality.Score `json:"score"`
	// Blacklisted is true when this node holds a verified fraud proof
	// against the provider: it is never listed nor connected to.
	Blacklisted bool `json:"blacklisted"`
}

// QualityRoutes returns GET /quality/{id}: one provider identity's
// quality score and blacklist state as this node sees them. Every node
// scores from the same gossiped reports, so a provider reading its own
// identity sees about what the consumers that rank it see.
func QualityRoutes(src QualitySource, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodGet, Path: "/quality/{id}",
		Op: Operation{Summary: "Quality score (payment-backed reports, docs/quality.md) and blacklist state of a provider identity, as this node sees them",
			Tags: []string{"proposals"}, Response: QualityDTO{}, Errors: []int{http.StatusBadRequest}},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			id, err := pathIdentity(r)
			if err != nil {
				WriteError(w, log, err)
				return
			}
			WriteJSON(w, http.StatusOK, QualityDTO{Score: src.Score(id), Blacklisted: src.Blocked(id)})
		},
	}}
}
