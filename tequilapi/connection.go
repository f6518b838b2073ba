package tequilapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/openmyst/openmyst/market"
)

// ErrNotConnected is returned by a ConnectionService when there is no
// connection (answered 404).
var ErrNotConnected = errors.New("not connected")

// ErrAlreadyConnected is returned by Connect while a connection is up
// (answered 409).
var ErrAlreadyConnected = errors.New("already connected")

// ErrNoPrivileges is returned by Connect in tun mode when the daemon
// lacks CAP_NET_ADMIN (answered 403 no_privileges).
var ErrNoPrivileges = errors.New("the daemon lacks CAP_NET_ADMIN, which tun mode needs: run it as root or with the capability (systemd AmbientCapabilities=CAP_NET_ADMIN), or connect in proxy mode")

// CodeNoPrivileges is the error code of ErrNoPrivileges.
const CodeNoPrivileges = "no_privileges"

// Connection modes (ConnectRequest.Mode).
const (
	// ModeProxy opens a local SOCKS5 proxy (a userspace tunnel); only
	// applications pointed at it are protected. Unprivileged.
	ModeProxy = "proxy"
	// ModeTun routes the whole device through a kernel WireGuard tunnel
	// with a kill switch and DNS through the tunnel. Needs CAP_NET_ADMIN.
	ModeTun = "tun"
)

// Kill switch settings (ConnectRequest.KillSwitch, tun mode).
const (
	// KillSwitchConnection holds the kill switch from connect until
	// disconnect, through drops and reconnects; a restarted daemon
	// removes it (the connection is gone).
	KillSwitchConnection = "connection"
	// KillSwitchAlways also keeps it across daemon restarts (a restarted
	// daemon holds it and resumes the connection) until disconnect.
	KillSwitchAlways = "always"
	// KillSwitchOff runs the tunnel without a kill switch.
	KillSwitchOff = "off"
)

// DNS settings (ConnectRequest.DNS, tun mode).
const (
	// DNSProvider points resolv.conf at the provider's resolver through
	// the tunnel.
	DNSProvider = "provider"
	// DNSSystem leaves resolv.conf alone; the configured resolvers are
	// then reached through the tunnel (or refused by the kill switch).
	DNSSystem = "system"
	// DNSCustom points resolv.conf at DNSServers, reached through the
	// tunnel.
	DNSCustom = "custom"
)

// MaxDNSServers bounds ConnectRequest.DNSServers.
const MaxDNSServers = 3

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
	// Mode is proxy (default) or tun.
	Mode string `json:"mode,omitempty" doc:"proxy (default: local SOCKS5 proxy, unprivileged) or tun (whole device through a kernel tunnel; the daemon needs CAP_NET_ADMIN)"`
	// KillSwitch is connection (default), always or off; tun mode only.
	KillSwitch string `json:"kill_switch,omitempty" doc:"tun mode: connection (default; held until disconnect), always (also across daemon restarts) or off"`
	// DNS is provider (default), system or custom; tun mode only.
	DNS string `json:"dns,omitempty" doc:"tun mode: provider (default), system or custom (dns_servers), always through the tunnel"`
	// DNSServers are the resolvers of DNS custom.
	DNSServers []string `json:"dns_servers,omitempty" doc:"with dns custom: 1 to 3 IP addresses"`
}

// Validate checks the request and its filter (an empty dns_servers
// list becomes nil).
func (r *ConnectRequest) Validate() error {
	if len(r.DNSServers) == 0 {
		r.DNSServers = nil
	}
	if _, err := r.Filter(); err != nil {
		return FieldError("filter", err.Error())
	}
	if r.SOCKSListen != "" && !strings.HasPrefix(r.SOCKSListen, "127.0.0.1:") && !strings.HasPrefix(r.SOCKSListen, "[::1]:") {
		return FieldError("socks_listen", "must be a loopback address")
	}
	switch r.Mode {
	case "", ModeProxy:
		if r.KillSwitch != "" || r.DNS != "" || len(r.DNSServers) > 0 {
			return FieldError("mode", "kill_switch, dns and dns_servers need mode tun")
		}
		return nil
	case ModeTun:
	default:
		return FieldError("mode", "must be proxy or tun")
	}
	if r.SOCKSListen != "" {
		return FieldError("socks_listen", "tun mode opens no proxy")
	}
	switch r.KillSwitch {
	case "", KillSwitchConnection, KillSwitchAlways, KillSwitchOff:
	default:
		return FieldError("kill_switch", "must be connection, always or off")
	}
	switch r.DNS {
	case "", DNSProvider, DNSSystem:
		if len(r.DNSServers) > 0 {
			return FieldError("dns_servers", "only with dns custom")
		}
	case DNSCustom:
		if _, err := r.CustomDNS(); err != nil {
			return FieldError("dns_servers", err.Error())
		}
	default:
		return FieldError("dns", "must be provider, system or custom")
	}
	return nil
}

// CustomDNS parses DNSServers: 1 to MaxDNSServers unicast IP addresses.
func (r *ConnectRequest) CustomDNS() ([]netip.Addr, error) {
	if len(r.DNSServers) == 0 || len(r.DNSServers) > MaxDNSServers {
		return nil, fmt.Errorf("give 1 to %d resolver addresses", MaxDNSServers)
	}
	out := make([]netip.Addr, 0, len(r.DNSServers))
	for _, s := range r.DNSServers {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || !a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() {
			return nil, fmt.Errorf("%q is not a unicast IP address", s)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// Filter is the request's proposal filter.
func (r *ConnectRequest) Filter() (market.Filter, error) {
	return market.FilterOptions{ProviderID: r.ProviderID, Country: r.Country, IPType: r.IPType,
		MaxPriceGiB: r.MaxPriceGiB, MaxPriceHour: r.MaxPriceHour}.Filter()
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
	// Resumes counts the times the session's control stream was lost
	// (a circuit relay's limit, a dropped connection) and the session
	// resumed on a new one, the tunnel untouched.
	Resumes int `json:"resumes,omitempty" doc:"times the session's control stream was resumed on a new connection"`
	// Path is how the tunnel's datagrams travel: "static" (to the
	// provider's UDP endpoint), "direct" (an ICE pair, through NATs) or
	// "relay" (through the network's TURN relay).
	Path string `json:"path"`
	// Error is why the session ended, if it failed.
	Error string `json:"error,omitempty"`
	// Mode is proxy or tun.
	Mode string `json:"mode"`
	// State is connected, reconnecting (tun mode: the kill switch holds
	// the device while a new provider is dialled), held (tun mode: no
	// tunnel, the kill switch blocks everything but the exemptions until
	// disconnect), ended (proxy mode: reconnecting gave up) or
	// disconnecting (DELETE /connection is taking it down; the kill
	// switch goes last, and the connection is reported until it has).
	State string `json:"state"`
	// Interface is the TUN (tun mode).
	Interface string `json:"interface,omitempty"`
	// Endpoint is where the tunnel's datagrams go from this host (tun
	// mode): the provider's WireGuard endpoint, or over ICE the selected
	// pair's remote address; empty when our TURN server relays them.
	Endpoint string `json:"endpoint,omitempty"`
	// PublicIP is the address the internet sees through the tunnel, as
	// the provider's exit reports it in the session response (empty: not
	// known, e.g. an older provider).
	PublicIP string `json:"public_ip,omitempty" doc:"the exit's public address as the provider reports it"`
	// PublicIPCheck is how PublicIP compares with what the consumer
	// observes: once a STUN server answered through the tunnel, with
	// PublicIPSeen: confirmed_by_stun or differs_from_stun (unconfirmed:
	// a multi-homed provider whose egress is another address, or one
	// lying); before that, or without a STUN server, with the address
	// the tunnel's datagrams are exchanged with: matches_tunnel_peer,
	// differs_from_tunnel_peer (unconfirmed: a provider behind NAT or
	// with a separate egress, or one lying) or unchecked_relay (a
	// relayed path); empty without a PublicIP.
	PublicIPCheck string `json:"public_ip_check,omitempty" doc:"confirmed_by_stun, differs_from_stun (unconfirmed), matches_tunnel_peer, differs_from_tunnel_peer (unconfirmed) or unchecked_relay"`
	// PublicIPSeen is the exit's public address as an outside host sees
	// it: the address the network's STUN server saw a binding request
	// sent through the tunnel come from (proxy mode; empty: no STUN
	// server configured, no answer yet or none, or tun mode).
	PublicIPSeen string `json:"public_ip_seen,omitempty" doc:"the exit's public address as the network's STUN server saw a request sent through the tunnel"`
	// KillSwitch is the kill switch (tun mode).
	KillSwitch *KillSwitchStatus `json:"kill_switch,omitempty"`
	// DNS is the DNS setting (tun mode) and DNSServers the resolvers in
	// use (empty for system).
	DNS        string   `json:"dns,omitempty"`
	DNSServers []string `json:"dns_servers,omitempty"`
}

// KillSwitchStatus is the kill switch part of ConnectionStatus.
type KillSwitchStatus struct {
	// Setting is connection, always or off.
	Setting string `json:"setting"`
	// Active is whether the nftables table is loaded.
	Active bool `json:"active"`
	// Exemptions are the host:port destinations reached outside the
	// tunnel: the path of the tunnel's datagrams (udp: the provider's
	// WireGuard endpoint or the ICE pair's remote address) and the
	// provider's control connection, the bootstrap/relay peers, the chain
	// RPC and the STUN/TURN servers (tcp/udp); with port mapping,
	// "portmap <router>": the port-mapping client's own (marked) sockets
	// reach that router (SSDP, UPnP's HTTP).
	Exemptions []string `json:"exemptions"`
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
	case err == nil:
		return nil
	case errors.Is(err, ErrNotConnected):
		return NewError(http.StatusNotFound, CodeNotFound, "not connected")
	case errors.Is(err, ErrAlreadyConnected):
		return NewError(http.StatusConflict, CodeConflict, "already connected; disconnect first")
	case errors.Is(err, ErrNoPrivileges):
		return NewError(http.StatusForbidden, CodeNoPrivileges, ErrNoPrivileges.Error())
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
	log = cmp.Or(log, slog.Default())
	tags := []string{"connection"}
	return []Route{
		{
			Method: http.MethodPut, Path: "/connection",
			Op: Operation{Summary: "Connect to a provider (given, or the best match of the filters): mode proxy opens a local SOCKS5 proxy, mode tun routes the whole device through a kernel tunnel with kill switch and DNS (403 no_privileges without CAP_NET_ADMIN)", Tags: tags,
				Request: ConnectRequest{}, Response: ConnectionStatus{}, Errors: []int{http.StatusForbidden, http.StatusConflict, http.StatusBadGateway}},
			Handler: callBodyRoute(log, connectionError, svc, ConnectionService.Connect),
		},
		{
			Method: http.MethodGet, Path: "/connection",
			Op:      Operation{Summary: "Current connection: mode, state, provider, country, path, bytes, spent, rate; in tun mode the kill switch (state and exemptions) and DNS", Tags: tags, Response: ConnectionStatus{}, Errors: []int{http.StatusNotFound}},
			Handler: callRoute(log, connectionError, svc, ConnectionService.Status),
		},
		{
			Method: http.MethodDelete, Path: "/connection",
			Op:      Operation{Summary: "Disconnect cleanly; in tun mode routes, DNS and (last) the kill switch are restored exactly", Tags: tags, Status: http.StatusNoContent, Errors: []int{http.StatusNotFound}},
			Handler: callNoContentRoute(log, connectionError, svc, ConnectionService.Disconnect),
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
	log = cmp.Or(log, slog.Default())
	return Route{
		Method: http.MethodGet, Path: path,
		Op: Operation{Summary: summary, Tags: []string{"sessions"}, Response: SessionList{}},
		Handler: callRoute(log, nil, svc, func(svc SessionService, ctx context.Context) (SessionList, error) {
			ss, err := svc.Sessions(ctx)
			return SessionList{Sessions: nonNil(ss)}, err
		}),
	}
}

// EarningsRoutes are GET /earnings and POST /settle.
func EarningsRoutes(svc EarningsService, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	tags := []string{"earnings"}
	return []Route{
		{
			Method: http.MethodGet, Path: "/earnings",
			Op:      Operation{Summary: "Provider earnings: earned from the hermes, settled on chain", Tags: tags, Response: EarningsDTO{}, Errors: []int{http.StatusBadGateway}},
			Handler: callRoute(log, connectionError, svc, EarningsService.Earnings),
		},
		{
			Method: http.MethodPost, Path: "/settle",
			Op:      Operation{Summary: "Settle the latest hermes promise on chain", Tags: tags, Response: SettleDTO{}, Errors: []int{http.StatusConflict, http.StatusBadGateway}},
			Handler: callRoute(log, connectionError, svc, EarningsService.Settle),
		},
	}
}
