package tequilapi

import (
	"context"
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
	if log == nil {
		log = slog.Default()
	}
	return []Route{{
		Method: http.MethodGet, Path: "/service/caps",
		Op: Operation{Summary: "The served provider's caps (per-session bandwidth, concurrent sessions, access) and this month's traffic quota use", Tags: []string{"earnings"}, Response: ServiceCapsDTO{}},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			c, err := svc.Caps(r.Context())
			if err != nil {
				WriteError(w, log, err)
				return
			}
			if c.Allow == nil {
				c.Allow = []string{}
			}
			WriteJSON(w, http.StatusOK, c)
		},
	}}
}
