package tequilapi

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ProviderSessionDTO is one live provider session.
type ProviderSessionDTO struct {
	// ID is the session id.
	ID string `json:"id"`
	// Consumer is the paying identity.
	Consumer string `json:"consumer"`
	// Start is when the session was admitted (RFC 3339).
	Start string `json:"start"`
	// DurationSeconds is how long it has run.
	DurationSeconds float64 `json:"duration_seconds"`
	// Bytes is the tunnel traffic, up plus down.
	Bytes uint64 `json:"bytes"`
	// Invoices counts the invoices sent.
	Invoices int `json:"invoices"`
	// Invoiced is the total of the latest invoice, wei.
	Invoiced string `json:"invoiced"`
	// Earned is the total the consumer has paid (accepted exchange
	// messages), wei.
	Earned string `json:"earned"`
}

// ProviderSessionList is the body of GET /provider/sessions.
type ProviderSessionList struct {
	// Sessions are the running sessions, oldest first.
	Sessions []ProviderSessionDTO `json:"sessions"`
}

// ProviderSessionService lists a provider's running sessions.
type ProviderSessionService interface {
	LiveSessions(ctx context.Context) ([]ProviderSessionDTO, error)
}

// ProviderSessionRoutes is GET /provider/sessions.
func ProviderSessionRoutes(svc ProviderSessionService, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodGet, Path: "/provider/sessions",
		Op: Operation{Summary: "The provider's running sessions (live: also sent on GET /events)", Tags: []string{"provider"},
			Response: ProviderSessionList{}, Errors: []int{http.StatusServiceUnavailable}},
		Handler: callRoute(log, connectionError, svc, func(svc ProviderSessionService, ctx context.Context) (ProviderSessionList, error) {
			ss, err := svc.LiveSessions(ctx)
			return ProviderSessionList{Sessions: nonNil(ss)}, err
		}),
	}}
}

// MetricsRoutes is GET /metrics: g in the Prometheus text exposition
// format, behind the same auth as every other route (a scraper sends a
// bearer token).
func MetricsRoutes(g prometheus.Gatherer, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError), ErrorHandling: promhttp.ContinueOnError})
	return []Route{{
		Method: http.MethodGet, Path: "/metrics",
		Op:      Operation{Summary: "Prometheus metrics (text exposition format, text/plain; version=0.0.4): openmyst_* sessions, bytes, earnings, invoices, payment errors, peers", Tags: []string{"node"}, ContentType: "text/plain; version=0.0.4"},
		Handler: h.ServeHTTP,
	}}
}

// PriceRequest is the body of PUT /provider/price.
type PriceRequest struct {
	// PerHour and PerGiB are the new prices in MYST.
	PerHour string `json:"per_hour" doc:"MYST, decimal"`
	PerGiB  string `json:"per_gib" doc:"MYST, decimal"`
}

// Price parses the request.
func (r *PriceRequest) Price() (market.Price, error) {
	h, err := money.ParseMYSTAmount(r.PerHour)
	if err != nil {
		return market.Price{}, FieldError("per_hour", err.Error())
	}
	g, err := money.ParseMYSTAmount(r.PerGiB)
	if err != nil {
		return market.Price{}, FieldError("per_gib", err.Error())
	}
	return market.Price{PerHour: h, PerGiB: g}, nil
}

// Validate implements Validator.
func (r *PriceRequest) Validate() error {
	_, err := r.Price()
	return err
}

// PriceService changes the provider's announced price.
type PriceService interface {
	// SetPrice announces a new proposal with price (new sessions pay it;
	// running sessions keep the price they agreed to).
	SetPrice(ctx context.Context, price market.Price) (market.Price, error)
}

// PriceRoutes is PUT /provider/price.
func PriceRoutes(svc PriceService, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodPut, Path: "/provider/price",
		Op: Operation{Summary: "Change the provider's price and announce the new proposal at once (kept across daemon restarts for a provider started with PUT /service {\"provider\": ...}; otherwise a restart announces the configured price)",
			Tags: []string{"provider"}, Request: PriceRequest{}, Response: market.Price{}, Errors: []int{http.StatusServiceUnavailable}},
		Handler: callBodyRoute(log, connectionError, svc, func(svc PriceService, ctx context.Context, req PriceRequest) (market.Price, error) {
			p, _ := req.Price()
			return svc.SetPrice(ctx, p)
		}),
	}}
}

// ProviderStatusDTO is the body of GET /provider.
type ProviderStatusDTO struct {
	// Identity is the provider identity.
	Identity string `json:"identity"`
	// PeerID is the libp2p peer id sessions are opened to.
	PeerID string `json:"peer_id"`
	// ExitMode is userspace or kernel.
	ExitMode string `json:"exit_mode"`
	// WireGuard is the WireGuard endpoint consumers are told to use.
	WireGuard string `json:"wireguard"`
	// WireGuardSource is where it comes from: configured (--wg.advertise),
	// portmap, stun, interface, or none (no static endpoint works: the
	// NAT maps endpoint-dependently or blocks UDP; sessions need ICE).
	WireGuardSource string `json:"wireguard_source"`
	// Location is the announced location.
	Location market.Location `json:"location"`
	// Price is the announced price.
	Price market.Price `json:"price"`
	// Access is the announced access policy.
	Access market.AccessPolicy `json:"access"`
}

// ProviderStatusService describes the running provider.
type ProviderStatusService interface {
	ProviderStatus(ctx context.Context) (ProviderStatusDTO, error)
}

// ProviderStatusRoutes is GET /provider.
func ProviderStatusRoutes(svc ProviderStatusService, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodGet, Path: "/provider",
		Op: Operation{Summary: "The running provider: identity, peer, exit mode, WireGuard endpoint, announced location, price and access",
			Tags: []string{"provider"}, Response: ProviderStatusDTO{}, Errors: []int{http.StatusNotFound, http.StatusServiceUnavailable}},
		Handler: callRoute(log, connectionError, svc, ProviderStatusService.ProviderStatus),
	}}
}
