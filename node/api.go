package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tequilapi"
)

// ConnectionAPI serves Tequilapi's connection routes from a consumer node:
// one connection at a time.
type ConnectionAPI struct {
	// Consumer returns the consumer node, starting it on first use.
	Consumer func(ctx context.Context) (*Consumer, error)
	// DefaultSOCKS is the SOCKS5 address when a request names none.
	DefaultSOCKS string

	mu   sync.Mutex
	conn *consumer.Connection
}

var _ tequilapi.ConnectionService = (*ConnectionAPI)(nil)

// Connect implements tequilapi.ConnectionService.
func (a *ConnectionAPI) Connect(ctx context.Context, req tequilapi.ConnectRequest) (tequilapi.ConnectionStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn != nil {
		select {
		case <-a.conn.Done():
			a.conn = nil
		default:
			return tequilapi.ConnectionStatus{}, tequilapi.ErrAlreadyConnected
		}
	}
	c, err := a.Consumer(ctx)
	if err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	f, err := req.Filter()
	if err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	socks := req.SOCKSListen
	if socks == "" {
		socks = a.DefaultSOCKS
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	ps, _ := c.WaitProposals(wctx, f, 1)
	cancel()
	p, err := consumer.Pick(ps, f)
	if err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	conn, err := c.Sessions.Connect(ctx, p, consumer.Options{SOCKSListen: socks})
	if err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	a.conn = conn
	return statusDTO(conn), nil
}

// Status implements tequilapi.ConnectionService.
func (a *ConnectionAPI) Status(context.Context) (tequilapi.ConnectionStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn == nil {
		return tequilapi.ConnectionStatus{}, tequilapi.ErrNotConnected
	}
	return statusDTO(a.conn), nil
}

// Disconnect implements tequilapi.ConnectionService.
func (a *ConnectionAPI) Disconnect(ctx context.Context) error {
	a.mu.Lock()
	conn := a.conn
	a.conn = nil
	a.mu.Unlock()
	if conn == nil {
		return tequilapi.ErrNotConnected
	}
	return conn.Disconnect(ctx)
}

// Close disconnects a running connection.
func (a *ConnectionAPI) Close(ctx context.Context) error {
	if err := a.Disconnect(ctx); err != nil && !errors.Is(err, tequilapi.ErrNotConnected) {
		return err
	}
	return nil
}

func statusDTO(c *consumer.Connection) tequilapi.ConnectionStatus {
	s := c.Status()
	out := tequilapi.ConnectionStatus{
		SessionID: s.SessionID, Provider: s.Provider.Hex(), Country: s.Country, DurationSeconds: s.Duration.Seconds(),
		RxBytes: s.RxBytes, TxBytes: s.TxBytes, Spent: s.Spent.String(), RatePerHour: s.Rate.String(), Running: s.Running, Error: s.Err,
	}
	if a := c.SOCKSAddr(); a != nil {
		out.SOCKS = a.String()
	}
	return out
}

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
			Start: r.Start.UTC().Format(time.RFC3339), Bytes: r.Bytes, Paid: r.Paid, Reason: r.Reason,
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
	return tequilapi.EarningsDTO{Earned: v.Earned.String(), Settled: v.Settled.String(), Unsettled: v.Unsettled.String()}, nil
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
