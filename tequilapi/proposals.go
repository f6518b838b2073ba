package tequilapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

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
	log = cmp.Or(log, slog.Default())
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
			b, err := MarshalProposals(Listed(src.Query(f), scores))
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

// Listed pairs each proposal with its provider's score (none when scores
// is nil).
func Listed(ps []market.Proposal, scores ProposalScores) []ListedProposal {
	out := make([]ListedProposal, len(ps))
	for i := range ps {
		out[i].Proposal = ps[i]
		if scores != nil {
			sc := scores.Score(ps[i].ProviderID)
			out[i].Quality = &sc
		}
	}
	return out
}

// MarshalProposals is the stable JSON form of GET /proposals (and `myst
// proposals --json`): market.MarshalList with each score, when known, added
// as the last field "quality".
func MarshalProposals(ls []ListedProposal) ([]byte, error) {
	raws := make([]json.RawMessage, 0, len(ls))
	for i := range ls {
		b, err := ls[i].Proposal.CanonicalJSON()
		if err != nil {
			return nil, err
		}
		if ls[i].Quality != nil {
			sc, err := json.Marshal(ls[i].Quality)
			if err != nil {
				return nil, fmt.Errorf("tequilapi: encode quality score: %w", err)
			}
			// b is a JSON object: replace its closing brace.
			b = append(append(append(b[:len(b)-1:len(b)-1], `,"quality":`...), sc...), '}')
		}
		raws = append(raws, b)
	}
	out, err := json.MarshalIndent(raws, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("tequilapi: encode proposal list: %w", err)
	}
	return out, nil
}

// WriteProposalTable prints ls as `myst proposals` shows it: one row per
// proposal, prices in MYST, the quality score as "value (reports)" or "-"
// when unknown to the lister.
func WriteProposalTable(w io.Writer, ls []ListedProposal) error {
	if len(ls) == 0 {
		_, err := fmt.Fprintln(w, "no proposals found")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tCOUNTRY\tCITY\tIP TYPE\tMYST/GiB\tMYST/HOUR\tACCESS\tQUALITY\tEXPIRES")
	for _, l := range ls {
		p, city, q := l.Proposal, l.Location.City, "-"
		if city == "" {
			city = "-"
		}
		if l.Quality != nil {
			q = fmt.Sprintf("%.2f (%d)", l.Quality.Value, l.Quality.Reports)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			p.ProviderID.Hex(), p.Location.Country, city, p.Location.IPType,
			p.Price.PerGiB.MYST(), p.Price.PerHour.MYST(), p.Access.Kind, q,
			p.Expiry().UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d proposal%s\n", len(ls), strings.Repeat("s", min(1, len(ls)-1)))
	return err
}
