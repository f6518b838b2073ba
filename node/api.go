package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/tequilapi"
)

// HistoryAPI serves GET /sessions from a session history.
type HistoryAPI struct {
	// History returns the node's history (nil: none yet).
	History func() *session.History
}

// Sessions implements tequilapi.SessionService.
func (h HistoryAPI) Sessions(ctx context.Context) ([]tequilapi.SessionDTO, error) {
	hist := h.History()
	if hist == nil {
		return nil, nil
	}
	rs, err := hist.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]tequilapi.SessionDTO, 0, len(rs))
	for _, r := range rs {
		d := tequilapi.SessionDTO{
			ID: r.ID, Role: string(r.Role), Provider: r.Provider.Hex(), Consumer: r.Consumer.Hex(),
			Start: r.Start.UTC().Format(time.RFC3339), Bytes: r.Bytes, Paid: r.Paid, Reason: r.Reason, Path: r.Path,
		}
		if !r.End.IsZero() {
			d.End = r.End.UTC().Format(time.RFC3339)
		}
		out = append(out, d)
	}
	return out, nil
}

// EarningsAPI serves GET /earnings and POST /settle from a provider.
type EarningsAPI struct {
	// Provider is the provider node.
	Provider *Provider
}

// Earnings implements tequilapi.EarningsService.
func (e EarningsAPI) Earnings(ctx context.Context) (tequilapi.EarningsDTO, error) {
	v, err := e.Provider.Earnings(ctx)
	if err != nil {
		return tequilapi.EarningsDTO{}, err
	}
	out := tequilapi.EarningsDTO{Earned: v.Earned.String(), Settled: v.Settled.String(), Unsettled: v.Unsettled.String(),
		Identity: e.Provider.Address().Hex()}
	// The fee estimate is a convenience: without it the earnings stand.
	if err := e.Provider.settlePreview(ctx, &out); err != nil {
		e.Provider.log.Debug("provider: settlement fee estimate", "err", err)
	}
	return out, nil
}

// Settle implements tequilapi.EarningsService.
func (e EarningsAPI) Settle(ctx context.Context) (tequilapi.SettleDTO, error) {
	s, err := e.Provider.Settle(ctx)
	if errors.Is(err, ErrNothingToSettle) {
		return tequilapi.SettleDTO{}, fmt.Errorf("%w: %w", tequilapi.ErrNothingToSettle, err)
	}
	if err != nil {
		return tequilapi.SettleDTO{}, err
	}
	return tequilapi.SettleDTO{Tx: s.Tx.Hex(), Amount: s.Amount.String()}, nil
}
