package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/tequilapi"
)

// ConnectionAPI serves Tequilapi's connection routes from a consumer node:
// one connection at a time, re-established when it drops per the
// reconnect policy (reconnect.go), with the same local SOCKS5 address.
type ConnectionAPI struct {
	// Consumer returns the consumer node, starting it on first use.
	Consumer func(ctx context.Context) (*Consumer, error)
	// DefaultSOCKS is the SOCKS5 address when a request names none.
	DefaultSOCKS string
	// Reconnect is how many attempts re-establish a dropped connection
	// (0: DefaultReconnectTries; negative: never).
	Reconnect int
	// Log receives reconnect events (default slog.Default()).
	Log *slog.Logger

	mu  sync.Mutex
	cur *managed
}

// managed is one user connection across reconnects.
type managed struct {
	filter     market.Filter
	socks      string
	conn       *consumer.Connection // guarded by ConnectionAPI.mu
	reconnects int                  // guarded by ConnectionAPI.mu
	ended      bool                 // guarded by ConnectionAPI.mu: gave up
	exclude    map[common.Address]bool
	cancel     context.CancelFunc
	done       chan struct{}
}

var _ tequilapi.ConnectionService = (*ConnectionAPI)(nil)

// Connect implements tequilapi.ConnectionService.
func (a *ConnectionAPI) Connect(ctx context.Context, req tequilapi.ConnectRequest) (tequilapi.ConnectionStatus, error) {
	a.mu.Lock()
	if a.cur != nil && !a.cur.ended {
		a.mu.Unlock()
		return tequilapi.ConnectionStatus{}, tequilapi.ErrAlreadyConnected
	}
	a.mu.Unlock()
	c, err := a.Consumer(ctx)
	if err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	f, err := req.Filter()
	if err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	m := &managed{filter: f, socks: req.SOCKSListen, exclude: map[common.Address]bool{}, done: make(chan struct{})}
	if m.socks == "" {
		m.socks = a.DefaultSOCKS
	}
	conn, _, err := a.dial(ctx, c, m, nil, 15*time.Second)
	if err != nil {
		return tequilapi.ConnectionStatus{}, err
	}
	m.conn = conn
	a.mu.Lock()
	if a.cur != nil && !a.cur.ended {
		a.mu.Unlock()
		_ = conn.Disconnect(ctx)
		return tequilapi.ConnectionStatus{}, tequilapi.ErrAlreadyConnected
	}
	a.cur = m
	a.mu.Unlock()
	wctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go a.watch(wctx, c, m)
	return a.status(m), nil
}

// dial opens a session on the best proposal for m, avoiding the
// providers in avoid when it can.
func (a *ConnectionAPI) dial(ctx context.Context, c *Consumer, m *managed, avoid map[common.Address]bool, wait time.Duration) (*consumer.Connection, common.Address, error) {
	p, err := c.pickProposal(ctx, m.filter, m.exclude, avoid, wait, false)
	if err != nil {
		return nil, common.Address{}, err
	}
	conn, err := c.Sessions.Connect(ctx, p, consumer.Options{SOCKSListen: m.socks})
	return conn, p.ProviderID, err
}

// watch re-establishes m's connection when it drops, per the policy.
func (a *ConnectionAPI) watch(ctx context.Context, c *Consumer, m *managed) {
	defer close(m.done)
	log := a.Log
	if log == nil {
		log = slog.Default()
	}
	attempts := a.Reconnect
	if attempts == 0 {
		attempts = DefaultReconnectTries
	}
	giveUp := func() {
		a.mu.Lock()
		m.ended = true
		a.mu.Unlock()
	}
	for {
		a.mu.Lock()
		conn := m.conn
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-conn.Done():
		}
		err := conn.Err()
		failed := conn.Proposal().ProviderID
		if ctx.Err() != nil {
			return
		}
		if !shouldRetry(err, failed, m.exclude) || attempts < 0 {
			log.Warn("consumer: connection ended; not reconnecting", "err", err)
			giveUp()
			return
		}
		next := redial(ctx, attempts, failed, func(ctx context.Context, avoid map[common.Address]bool) (*consumer.Connection, common.Address, error) {
			return a.dial(ctx, c, m, avoid, reconnectWait)
		}, func(i int, err error) { log.Info("consumer: reconnect failed", "attempt", i+1, "err", err) })
		if ctx.Err() != nil {
			return
		}
		if next == nil {
			log.Warn("consumer: connection lost; reconnecting failed", "err", err)
			giveUp()
			return
		}
		log.Info("consumer: reconnected", "provider", next.Proposal().ProviderID.Hex(), "after", err)
		a.mu.Lock()
		m.conn = next
		m.reconnects++
		a.mu.Unlock()
	}
}

// Status implements tequilapi.ConnectionService.
func (a *ConnectionAPI) Status(context.Context) (tequilapi.ConnectionStatus, error) {
	a.mu.Lock()
	m := a.cur
	a.mu.Unlock()
	if m == nil {
		return tequilapi.ConnectionStatus{}, tequilapi.ErrNotConnected
	}
	return a.status(m), nil
}

func (a *ConnectionAPI) status(m *managed) tequilapi.ConnectionStatus {
	a.mu.Lock()
	conn, n := m.conn, m.reconnects
	a.mu.Unlock()
	st := statusDTO(conn)
	st.Reconnects = n
	return st
}

// Disconnect implements tequilapi.ConnectionService.
func (a *ConnectionAPI) Disconnect(ctx context.Context) error {
	a.mu.Lock()
	m := a.cur
	a.cur = nil
	a.mu.Unlock()
	if m == nil {
		return tequilapi.ErrNotConnected
	}
	m.cancel()
	select {
	case <-m.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	conn := m.conn
	a.mu.Unlock()
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
		Path: s.Path,
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
