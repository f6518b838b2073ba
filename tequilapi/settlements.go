package tequilapi

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
)

// MaxSettlementsListed is how many settlement records GET /settlements
// returns at most (the newest).
const MaxSettlementsListed = 1000

// SettlementDTO is one provider settlement attempt. Amounts are decimal wei.
type SettlementDTO struct {
	// ID orders the records (increasing).
	ID uint64 `json:"id"`
	// Time is when the attempt started (RFC 3339).
	Time string `json:"time"`
	// Trigger is manual, auto or shutdown.
	Trigger string `json:"trigger"`
	// Status is pending, settled or failed.
	Status string `json:"status"`
	// Attempt counts the attempts at this amount, this one included.
	Attempt int `json:"attempt"`
	// Tx is the settlement transaction (settled only).
	Tx string `json:"tx,omitempty"`
	// Amount is the cumulative hermes promise being settled.
	Amount string `json:"amount"`
	// Unsettled is what the settlement pays before fees.
	Unsettled string `json:"unsettled"`
	// HermesFee and TransactorFee are the fees quoted for it.
	HermesFee     string `json:"hermes_fee"`
	TransactorFee string `json:"transactor_fee"`
	// Beneficiary receives the payout.
	Beneficiary string `json:"beneficiary"`
	// Error is why the attempt failed.
	Error string `json:"error,omitempty"`
}

// SettlementsDTO is the body of GET /settlements.
type SettlementsDTO struct {
	// Settlements are the newest attempts first.
	Settlements []SettlementDTO `json:"settlements"`
}

// SettlementHistory is the provider side behind GET /settlements.
type SettlementHistory interface {
	// Settlements returns up to limit records, newest first.
	Settlements(ctx context.Context, limit int) ([]SettlementDTO, error)
}

// SettlementRoutes is GET /settlements.
func SettlementRoutes(h SettlementHistory, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodGet, Path: "/settlements",
		Op: Operation{Summary: "The provider's settlement attempts (manual, automatic, at shutdown), newest first", Tags: []string{"earnings"}, Response: SettlementsDTO{}},
		Handler: callRoute(log, nil, h, func(h SettlementHistory, ctx context.Context) (SettlementsDTO, error) {
			list, err := h.Settlements(ctx, MaxSettlementsListed)
			return SettlementsDTO{Settlements: nonNil(list)}, err
		}),
	}}
}
