package tequilapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/openmyst/openmyst/market"
)

// ErrNotConnected is returned by a ConnectionService when there is no
// connection (answered 404).
var ErrNotConnected = errors.New("not connected")

// ErrAlreadyConnected is returned by Connect while a connection is up
// (answered 409).
var ErrAlreadyConnected = errors.New("already connected")

// ErrNothingToSettle is returned by Settle when nothing is unsettled
// (answered 409).
var ErrNothingToSettle = errors.New("nothing to settle")

// ConnectRequest is the body of PUT /connection.
type ConnectRequest struct {
	// ProviderID picks a provider (0x...); empty picks the best match.
	ProviderID string `json:"provider_id,omitempty" doc:"provider identity; empty: best proposal matching the filters"`
	// Country filters proposals (ISO 3166-1 alpha-2).
	Country string `json:"country,omitempty"`
	// IPType filters proposals: residential, hosting or mobile.
	IPType string `json:"ip_type,omitempty"`
	// MaxPriceGiB and MaxPriceHour are the highest prices in MYST.
	MaxPriceGiB  string `json:"max_price_gib,omitempty" doc:"MYST, decimal"`
	MaxPriceHour string `json:"max_price_hour,omitempty" doc:"MYST, decimal"`
	// SOCKSListen is the local SOCKS5 proxy address (default
	// 127.0.0.1:1080).
	SOCKSListen string `json:"socks_listen,omitempty" doc:"loopback host:port of the SOCKS5 proxy"`
}

// Validate checks the request and its filter.
func (r *ConnectRequest) Validate() error {
	if _, err := r.Filter(); err != nil {
		return FieldError("filter", err.Error())
	}
	if r.SOCKSListen != "" && !strings.HasPrefix(r.SOCKSListen, "127.0.0.1:") && !strings.HasPrefix(r.SOCKSListen, "[::1]:") {
		return FieldError("socks_listen", "must be a loopback address")
	}
	return nil
}

// Filter is the request's proposal filter.
func (r *ConnectRequest) Filter() (market.Filter, error) {
	q := map[string][]string{}
	set := func(k, v string) {
		if v != "" {
			q[k] = []string{v}
		}
	}
	set(market.QueryProviderID, r.ProviderID)
	set(market.QueryCountry, r.Country)
	set(market.QueryIPType, r.IPType)
	set(market.QueryMaxPriceGiB, r.MaxPriceGiB)
	set(market.QueryMaxPriceHr, r.MaxPriceHour)
	return market.ParseFilter(q)
}

// ConnectionStatus is the body of GET /connection.
type ConnectionStatus struct {
	// SessionID is the provider-chosen session id.
	SessionID string `json:"session_id"`
	// Provider is the provider identity.
	Provider string `json:"provider"`
	// Country is the provider's country.
	Country string `json:"country"`
	// SOCKS is the local SOCKS5 proxy address.
	SOCKS string `json:"socks"`
	// DurationSeconds is how long the tunnel has been up.
	DurationSeconds float64 `json:"duration_seconds"`
	// RxBytes and TxBytes are the tunnel counters.
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
	// Spent is the total promised for the session, wei.
	Spent string `json:"spent"`
	// RatePerHour is the spend rate, wei per hour.
	RatePerHour string `json:"rate_per_hour"`
	// Running is false once the session has ended (and reconnecting
	// gave up).
	Running bool `json:"running"`
	// Reconnects counts sessions re-established after a drop.
	Reconnects int `json:"reconnects"`
	// Path is how the tunnel's datagrams travel: "static" (to the
	// provider's UDP endpoint), "direct" (an ICE pair, through NATs) or
	// "relay" (through the network's TURN relay).
	Path string `json:"path"`
	// Error is why the session ended, if it failed.
	Error string `json:"error,omitempty"`
}

// SessionDTO is one session history record.
type SessionDTO struct {
	// ID is the session id.
	ID string `json:"id"`
	// Role is provider or consumer.
	Role string `json:"role"`
	// Provider and Consumer are the identities.
	Provider string `json:"provider"`
	Consumer string `json:"consumer"`
	// Start and End are RFC 3339 times (End empty while running).
	Start string `json:"start"`
	End   string `json:"end"`
	// Bytes is the tunnel traffic.
	Bytes uint64 `json:"bytes"`
	// Paid is the agreement total paid, wei.
	Paid string `json:"paid"`
	// Reason is why the session ended.
	Reason string `json:"reason"`
	// Path is how the tunnel's datagrams travelled: "static" (the
	// provider's UDP endpoint), "direct" or "relay" (through the
	// network's TURN relay); empty for older records.
	Path string `json:"path,omitempty"`
}

// SessionList is the body of GET /sessions.
type SessionList struct {
	// Sessions are newest first.
	Sessions []SessionDTO `json:"sessions"`
}

// EarningsDTO is the body of GET /earnings.
type EarningsDTO struct {
	// Earned is the cumulative hermes promise, wei.
	Earned string `json:"earned"`
	// Settled is what is settled on chain, wei.
	Settled string `json:"settled"`
	// Unsettled is Earned-Settled, wei.
	Unsettled string `json:"unsettled"`
	// Identity is the provider identity.
	Identity string `json:"identity,omitempty"`
	// HermesFeeBps is the hermes fee in basis points of what a settlement
	// pays out.
	HermesFeeBps uint16 `json:"hermes_fee_bps"`
	// SettleHermesFee, SettleTransactorFee and SettlePayout estimate a
	// settlement now (wei): the fees taken from Unsettled and what the
	// beneficiary receives (the chain may pay out less when the channel
	// limit or the hermes balance caps it).
	SettleHermesFee     string `json:"settle_hermes_fee,omitempty" doc:"wei, estimate"`
	SettleTransactorFee string `json:"settle_transactor_fee,omitempty" doc:"wei"`
	SettlePayout        string `json:"settle_payout,omitempty" doc:"wei, estimate"`
}

// SettleDTO is the body of POST /settle's answer.
type SettleDTO struct {
	// Tx is the settlement transaction hash.
	Tx string `json:"tx"`
	// Amount is the cumulative amount settled, wei.
	Amount string `json:"amount"`
}

// ConnectionService is the consumer side behind the connection routes.
type ConnectionService interface {
	Connect(ctx context.Context, req ConnectRequest) (ConnectionStatus, error)
	Status(ctx context.Context) (ConnectionStatus, error)
	Disconnect(ctx context.Context) error
}

// SessionService lists session history.
type SessionService interface {
	Sessions(ctx context.Context) ([]SessionDTO, error)
}

// EarningsService is the provider side behind GET /earnings and POST
// /settle.
type EarningsService interface {
	Earnings(ctx context.Context) (EarningsDTO, error)
	Settle(ctx context.Context) (SettleDTO, error)
}

func connectionError(err error) error {
	switch {
	case errors.Is(err, ErrNotConnected):
		return NewError(http.StatusNotFound, CodeNotFound, "not connected")
	case errors.Is(err, ErrAlreadyConnected):
		return NewError(http.StatusConflict, CodeConflict, "already connected; disconnect first")
	case errors.Is(err, ErrNothingToSettle):
		return NewError(http.StatusConflict, CodeConflict, "nothing to settle")
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	// Session failures (no proposal, provider refused, tunnel down) are
	// the caller's to see; they never carry secrets.
	return NewError(http.StatusBadGateway, "connect_failed", err.Error())
}

// ConnectionRoutes are PUT/GET/DELETE /connection.
func ConnectionRoutes(svc ConnectionService, log *slog.Logger) []Route {
	if log == nil {
		log = slog.Default()
	}
	fail := func(w http.ResponseWriter, err error) { WriteError(w, log, connectionError(err)) }
	tags := []string{"connection"}
	return []Route{
		{
			Method: http.MethodPut, Path: "/connection",
			Op: Operation{Summary: "Connect to a provider (given, or the best match of the filters) and open a local SOCKS5 proxy", Tags: tags,
				Request: ConnectRequest{}, Response: ConnectionStatus{}, Errors: []int{http.StatusConflict, http.StatusBadGateway}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				var req ConnectRequest
				if err := DecodeJSON(r, &req); err != nil {
					fail(w, err)
					return
				}
				st, err := svc.Connect(r.Context(), req)
				if err != nil {
					fail(w, err)
					return
				}
				WriteJSON(w, http.StatusOK, st)
			},
		},
		{
			Method: http.MethodGet, Path: "/connection",
			Op: Operation{Summary: "Current connection: provider, duration, bytes, spent, rate", Tags: tags, Response: ConnectionStatus{}, Errors: []int{http.StatusNotFound}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				st, err := svc.Status(r.Context())
				if err != nil {
					fail(w, err)
					return
				}
				WriteJSON(w, http.StatusOK, st)
			},
		},
		{
			Method: http.MethodDelete, Path: "/connection",
			Op: Operation{Summary: "Disconnect cleanly", Tags: tags, Status: http.StatusNoContent, Errors: []int{http.StatusNotFound}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				if err := svc.Disconnect(r.Context()); err != nil {
					fail(w, err)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			},
		},
	}
}

// SessionRoutes is GET /sessions.
func SessionRoutes(svc SessionService, log *slog.Logger) []Route {
	return []Route{historyRoute("/sessions", "Session history, newest first", svc, log)}
}

// ProviderHistoryRoutes is GET /provider/history: the provider's ended
// and running sessions, for earnings and traffic over time.
func ProviderHistoryRoutes(svc SessionService, log *slog.Logger) []Route {
	return []Route{historyRoute("/provider/history", "The provider's session history (bytes and amount paid per session), newest first", svc, log)}
}

func historyRoute(path, summary string, svc SessionService, log *slog.Logger) Route {
	if log == nil {
		log = slog.Default()
	}
	return Route{
		Method: http.MethodGet, Path: path,
		Op: Operation{Summary: summary, Tags: []string{"sessions"}, Response: SessionList{}},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			ss, err := svc.Sessions(r.Context())
			if err != nil {
				WriteError(w, log, err)
				return
			}
			if ss == nil {
				ss = []SessionDTO{}
			}
			WriteJSON(w, http.StatusOK, SessionList{Sessions: ss})
		},
	}
}

// EarningsRoutes are GET /earnings and POST /settle.
func EarningsRoutes(svc EarningsService, log *slog.Logger) []Route {
	if log == nil {
		log = slog.Default()
	}
	fail := func(w http.ResponseWriter, err error) { WriteError(w, log, connectionError(err)) }
	tags := []string{"earnings"}
	return []Route{
		{
			Method: http.MethodGet, Path: "/earnings",
			Op: Operation{Summary: "Provider earnings: earned from the hermes, settled on chain", Tags: tags, Response: EarningsDTO{}, Errors: []int{http.StatusBadGateway}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				e, err := svc.Earnings(r.Context())
				if err != nil {
					fail(w, err)
					return
				}
				WriteJSON(w, http.StatusOK, e)
			},
		},
		{
			Method: http.MethodPost, Path: "/settle",
			Op: Operation{Summary: "Settle the latest hermes promise on chain", Tags: tags, Response: SettleDTO{}, Errors: []int{http.StatusConflict, http.StatusBadGateway}},
			Handler: func(w http.ResponseWriter, r *http.Request) {
				s, err := svc.Settle(r.Context())
				if err != nil {
					fail(w, err)
					return
				}
				WriteJSON(w, http.StatusOK, s)
			},
		},
	}
}
