package tequilapi

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
)

// ServiceCapsDTO is the body of GET /service/caps: the served provider's
// operator caps and this month's traffic against its quota.
type ServiceCapsDTO struct {
	// Provider is the served provider identity.
	Provider string `json:"provider"`
	// SessionBandwidth caps each session in bytes per second in each
	// direction (0: unlimited).
	SessionBandwidth uint64 `json:"session_bandwidth"`
	// MaxSessions caps concurrent sessions; Sessions are running now.
	MaxSessions int `json:"max_sessions"`
	Sessions    int `json:"sessions"`
	// Access is the proposal's access policy, public or allowlist; Allow
	// lists the admitted consumer identities (allowlist only).
	Access string   `json:"access"`
	Allow  []string `json:"allow"`
	// Quota is the monthly traffic quota.
	Quota QuotaDTO `json:"quota"`
}

// QuotaDTO is a provider's monthly traffic quota and its use.
type QuotaDTO struct {
	// Month is the calendar month counted (UTC, "2006-01").
	Month string `json:"month"`
	// Limit is the quota in bytes (0: unlimited, traffic still counted).
	Limit uint64 `json:"limit"`
	// Used is this month's traffic of every session, up plus down, bytes.
	Used uint64 `json:"used"`
	// Resets is when the next month's count starts (RFC 3339).
	Resets string `json:"resets"`
	// Exhausted is whether Limit is reached: sessions are refused with
	// the session protocol code quota_exhausted.
	Exhausted bool `json:"exhausted"`
}

// ServiceCaps is the provider side behind GET /service/caps.
type ServiceCaps interface {
	// Caps returns the caps and the quota's use.
	Caps(ctx context.Context) (ServiceCapsDTO, error)
}

// ServiceCapsRoutes is GET /service/caps.
func ServiceCapsRoutes(svc ServiceCaps, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodGet, Path: "/service/caps",
		Op: Operation{Summary: "The served provider's caps (per-session bandwidth, concurrent sessions, access) and this month's traffic quota use", Tags: []string{"earnings"}, Response: ServiceCapsDTO{}},
		Handler: callRoute(log, nil, svc, func(svc ServiceCaps, ctx context.Context) (ServiceCapsDTO, error) {
			return withAllowList(svc.Caps(ctx))
		}),
	}}
}

// ServiceStartRequest is the body of PUT /service: start a provider in a
// running daemon that serves none (`myst service` beside the daemon, or
// the dashboard turning a stopped provider on again).
type ServiceStartRequest struct {
	// Identity is the provider identity, unlocked in the daemon (default:
	// the default identity).
	Identity string `json:"identity,omitempty" doc:"0x address; default the default identity; unlock it first (PUT /identities/{id}/unlock)"`
	// Options are the provider's options as the node defines them; none
	// starts again the provider DELETE /service stopped (same identity,
	// same options).
	Options json.RawMessage `json:"options,omitempty" doc:"the provider's options (node.ServiceOptions: Serve and Location, as myst service gives them); omitted with provider: start again the provider this daemon last ran (after DELETE /service), with its identity and options"`
	// Provider are the options a node runner chooses (the dashboard's
	// start form); the daemon's flags give the rest. Not with Options.
	Provider *ProviderOptionsDTO `json:"provider,omitempty" doc:"the provider's chosen options (exit mode, prices, caps, access); the daemon's flags give the rest; not with options"`
}

// Validate implements Validator.
func (r *ServiceStartRequest) Validate() error {
	if r.Identity != "" {
		if _, err := parseNonZeroAddress(r.Identity); err != nil {
			return FieldError("identity", err.Error())
		}
	}
	if len(r.Options) > 0 && r.Options[0] != '{' {
		return FieldError("options", "want a JSON object")
	}
	if r.Provider == nil {
		return nil
	}
	if len(r.Options) > 0 {
		return FieldError("provider", "give options or provider, not both")
	}
	return r.Provider.Validate()
}

// ServiceStarter starts a provider behind PUT /service.
type ServiceStarter interface {
	// StartService starts the provider req describes and returns its caps.
	StartService(ctx context.Context, req ServiceStartRequest) (ServiceCapsDTO, error)
}

// ServiceStartRoutes is PUT /service.
func ServiceStartRoutes(svc ServiceStarter, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodPut, Path: "/service",
		Op: Operation{Summary: "Start a provider in this daemon (it serves none yet) and remember it across restarts; waits until it runs", Tags: []string{"earnings"},
			Request: ServiceStartRequest{}, Response: ServiceCapsDTO{}, Errors: []int{http.StatusBadRequest, http.StatusConflict, http.StatusBadGateway}},
		Handler: callBodyRoute(log, nil, svc, func(svc ServiceStarter, ctx context.Context, req ServiceStartRequest) (ServiceCapsDTO, error) {
			return withAllowList(svc.StartService(ctx, req))
		}),
	}}
}

// withAllowList is c with an empty (not null) allow-list, and err.
func withAllowList(c ServiceCapsDTO, err error) (ServiceCapsDTO, error) {
	c.Allow = nonNil(c.Allow)
	return c, err
}

// ServiceStopper stops the provider behind DELETE /service.
type ServiceStopper interface {
	// StopService stops the running (or starting) provider: its sessions
	// end, its proposal is withdrawn and its ports are freed. It fails
	// with 404 not_found when none runs.
	StopService(ctx context.Context) error
}

// ServiceStopRoutes is DELETE /service.
func ServiceStopRoutes(svc ServiceStopper, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodDelete, Path: "/service",
		Op: Operation{Summary: "Stop this daemon's provider: end its sessions (settled as at shutdown), withdraw its proposal, free its ports; it stays off across daemon restarts until PUT /service starts one again",
			Tags: []string{"earnings"}, Status: http.StatusNoContent, Errors: []int{http.StatusNotFound}},
		Handler: callNoContentRoute(log, nil, svc, ServiceStopper.StopService),
	}}
}
