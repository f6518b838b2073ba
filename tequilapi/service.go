package tequilapi

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
)

// Exit modes of a provider (ProviderOptionsDTO.ExitMode).
const (
	ExitUserspace = "userspace"
	ExitKernel    = "kernel"
)

// maxOptionText bounds the free-text options (bandwidth, quota).
const maxOptionText = 32

// ProviderOptionsDTO are the options a node runner chooses for a provider
// started in a running daemon (PUT /service {"provider": ...}, the
// dashboard's start form); the rest (hermes, WireGuard port and address,
// ICE servers, settlement, location) are the daemon's own flags.
type ProviderOptionsDTO struct {
	// ExitMode is userspace (no privileges) or kernel (CAP_NET_ADMIN;
	// GET /capabilities says whether the daemon can).
	ExitMode string `json:"exit_mode" doc:"userspace or kernel (needs CAP_NET_ADMIN, see GET /capabilities)"`
	// PricePerHour and PricePerGiB are the prices in MYST.
	PricePerHour string `json:"price_per_hour" doc:"MYST, decimal"`
	PricePerGiB  string `json:"price_per_gib" doc:"MYST, decimal"`
	// Bandwidth caps each session in each direction ("" unlimited).
	Bandwidth string `json:"bandwidth,omitempty" doc:"per-session cap in each direction, e.g. 10Mbit or 2MiB (per second); empty: unlimited"`
	// MaxSessions caps concurrent sessions (0: the default, 1000).
	MaxSessions int `json:"max_sessions,omitempty" doc:"most concurrent sessions; 0: 1000"`
	// MonthlyQuota is the traffic of all sessions per calendar month
	// ("" unlimited).
	MonthlyQuota string `json:"monthly_quota,omitempty" doc:"e.g. 500GiB; empty: unlimited"`
	// Allow lists the only consumer identities served (empty: public).
	Allow []string `json:"allow,omitempty" doc:"access policy: the only consumer identities served (0x addresses, at most 32); empty: public"`
	// Country is the announced country (ISO 3166-1 alpha-2; empty: the
	// daemon's --location.* flags).
	Country string `json:"country,omitempty" doc:"ISO 3166-1 alpha-2, e.g. DE; empty: the daemon's --location.country or its GeoIP database"`
}

// Validate checks what can be checked without the node: the exit mode,
// the prices, the allow-list's addresses and the sizes of the text
// fields. Every bad field is named in the error (400 validation_failed).
// An empty exit mode becomes userspace, an empty allow-list nil, the
// country upper case.
func (o *ProviderOptionsDTO) Validate() error {
	if len(o.Allow) == 0 {
		o.Allow = nil
	}
	bad := map[string]string{}
	switch o.ExitMode {
	case ExitUserspace, ExitKernel:
	case "":
		o.ExitMode = ExitUserspace
	default:
		bad["exit_mode"] = "want userspace or kernel"
	}
	for field, v := range map[string]string{"price_per_hour": o.PricePerHour, "price_per_gib": o.PricePerGiB} {
		if strings.TrimSpace(v) == "" {
			bad[field] = "required (MYST, e.g. 0.1)"
		} else if _, err := money.ParseMYSTAmount(strings.TrimSpace(v)); err != nil {
			bad[field] = err.Error()
		}
	}
	for field, v := range map[string]string{"bandwidth": o.Bandwidth, "monthly_quota": o.MonthlyQuota} {
		if len(v) > maxOptionText {
			bad[field] = "too long"
		}
	}
	o.Country = strings.ToUpper(strings.TrimSpace(o.Country))
	if o.Country != "" && !market.ValidCountry(o.Country) {
		bad["country"] = "want an ISO 3166-1 alpha-2 code such as DE"
	}
	if o.MaxSessions < 0 {
		bad["max_sessions"] = "must not be negative"
	}
	if len(o.Allow) > market.MaxAllow {
		bad["allow"] = fmt.Sprintf("at most %d identities", market.MaxAllow)
	} else {
		for _, a := range o.Allow {
			if _, err := parseNonZeroAddress(strings.TrimSpace(a)); err != nil {
				bad["allow"] = a + ": " + err.Error()
				break
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return FieldErrors(bad)
}

// FieldErrors returns a 400 validation error naming every bad field.
func FieldErrors(bad map[string]string) *APIError {
	keys := slices.Sorted(maps.Keys(bad))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+bad[k])
	}
	return &APIError{Status: http.StatusBadRequest, Body: ErrorBody{
		Code: CodeValidation, Message: "invalid request: " + strings.Join(parts, "; "), Fields: bad,
	}}
}

// Provider states of ServiceOptionsDTO.State.
const (
	// ProviderOn: the provider runs (or is starting); the daemon starts
	// it again when it restarts.
	ProviderOn = "on"
	// ProviderOff: no provider runs, but one did (stopped with DELETE
	// /service, which a restart keeps, or its start failed).
	ProviderOff = "off"
	// ProviderNone: this daemon never ran a provider.
	ProviderNone = "none"
)

// ServiceOptionsDTO is the body of GET /service/options.
type ServiceOptionsDTO struct {
	// State is on, off or none (ProviderOn, ProviderOff, ProviderNone).
	State string `json:"state" doc:"on (serving or starting; started again after a daemon restart), off (not serving: stopped with DELETE /service, which a restart keeps, or its start failed) or none (never ran a provider)"`
	// Restartable says whether PUT /service without options starts a
	// provider (the one this daemon ran last).
	Restartable bool `json:"restartable"`
	// Options are the options of the provider that runs or ran last when
	// it was started with them, else the daemon's flags: what the
	// dashboard's start form is filled in with.
	Options ProviderOptionsDTO `json:"options"`
}

// ServiceOptionsService tells the provider's desired state and options.
type ServiceOptionsService interface {
	ServiceOptions(ctx context.Context) (ServiceOptionsDTO, error)
}

// ServiceOptionsRoutes is GET /service/options.
func ServiceOptionsRoutes(svc ServiceOptionsService, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodGet, Path: "/service/options",
		Op: Operation{Summary: "The provider's remembered state (on/off/none, kept across daemon restarts) and the options PUT /service {\"provider\": ...} would start it with",
			Tags: []string{"earnings"}, Response: ServiceOptionsDTO{}},
		Handler: callRoute(log, nil, svc, ServiceOptionsService.ServiceOptions),
	}}
}

// CapabilityDTO says whether the daemon can do something, and why not.
type CapabilityDTO struct {
	// Available is whether it can.
	Available bool `json:"available"`
	// Reason says why not (empty when available).
	Reason string `json:"reason,omitempty"`
}

// CapabilitiesDTO is the body of GET /capabilities.
type CapabilitiesDTO struct {
	// TunMode is whether PUT /connection {"mode": "tun"} can work: the
	// daemon has CAP_NET_ADMIN and the ip and nft commands.
	TunMode CapabilityDTO `json:"tun_mode"`
	// KernelExit is whether a provider can use the kernel exit mode (the
	// same needs).
	KernelExit CapabilityDTO `json:"kernel_exit"`
}

// CapabilitiesService tells what the daemon's privileges allow.
type CapabilitiesService interface {
	Capabilities(ctx context.Context) CapabilitiesDTO
}

// CapabilitiesRoutes is GET /capabilities.
func CapabilitiesRoutes(svc CapabilitiesService, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodGet, Path: "/capabilities",
		Op: Operation{Summary: "What the daemon's privileges allow: tun-mode connections and the kernel exit mode (both need CAP_NET_ADMIN, ip and nft)",
			Tags: []string{"node"}, Response: CapabilitiesDTO{}},
		Handler: callRoute(log, nil, svc, func(svc CapabilitiesService, ctx context.Context) (CapabilitiesDTO, error) {
			return svc.Capabilities(ctx), nil
		}),
	}}
}
