package tequilapi

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// Access summaries in NATStatusDTO.Access.
const (
	// AccessDirect: AutoNAT found the node public; peers dial it directly.
	AccessDirect = "direct"
	// AccessRelayOnly: the node is private and reachable through its
	// circuit relay reservations only.
	AccessRelayOnly = "relay-only"
	// AccessUnreachable: the node is private and holds no relay
	// reservation (yet).
	AccessUnreachable = "unreachable"
	// AccessUnknown: AutoNAT has not decided (yet, or NAT traversal off).
	AccessUnknown = "unknown"
)

// NATStatusDTO is the body of GET /nat: how other peers reach this node.
type NATStatusDTO struct {
	// Reachability is AutoNAT's verdict: public, private or unknown.
	Reachability string `json:"reachability" doc:"public, private or unknown"`
	// ReachabilitySince is when it last changed (RFC 3339; empty: never).
	ReachabilitySince string `json:"reachability_since,omitempty"`
	// Access sums it up: direct, relay-only, unreachable or unknown.
	Access string `json:"access" doc:"direct, relay-only, unreachable or unknown"`
	// NATTypeTCP and NATTypeUDP are libp2p's NAT device type per
	// transport, from the addresses peers observe (endpoint-independent,
	// endpoint-dependent or unknown; meaningful only when private).
	NATTypeTCP string `json:"nat_type_tcp"`
	NATTypeUDP string `json:"nat_type_udp"`
	// DirectAddrs and RelayAddrs are the advertised libp2p addresses:
	// direct ones, and circuit addresses through relays holding a
	// reservation for this node.
	DirectAddrs []string `json:"direct_addrs"`
	RelayAddrs  []string `json:"relay_addrs"`
	// Mapping is the STUN check of the NAT's UDP mapping (absent without
	// STUN servers).
	Mapping *NATMappingDTO `json:"mapping,omitempty"`
	// PortMappings are the ports the home router forwards to this node
	// (UPnP IGD, NAT-PMP).
	PortMappings []PortMappingDTO `json:"port_mappings"`
	// PeerCheck is the latest "reachable from N of M peers" check
	// (absent before the first).
	PeerCheck *PeerCheckDTO `json:"peer_check,omitempty"`
}

// Mapping behaviours in NATMappingDTO.Behavior.
const (
	// MappingNone: the public address is the local one (no NAT).
	MappingNone = "none"
	// MappingEndpointIndependent: one public address and port for every
	// destination (hole punching works).
	MappingEndpointIndependent = "endpoint-independent"
	// MappingEndpointDependent: a new public port per destination
	// ("symmetric", hard NAT: sessions need the TURN relay unless the
	// other side is easy).
	MappingEndpointDependent = "endpoint-dependent"
	// MappingUDPBlocked: no STUN server answered over UDP.
	MappingUDPBlocked = "udp-blocked"
	// MappingUnknown: fewer than two servers answered.
	MappingUnknown = "unknown"
)

// NATMappingDTO is a STUN check of the NAT's UDP mapping: one socket asks
// every STUN server for its public address; the same address from two
// servers means endpoint-independent mapping.
type NATMappingDTO struct {
	// Behavior is none, endpoint-independent, endpoint-dependent,
	// udp-blocked or unknown.
	Behavior string `json:"behavior" doc:"none, endpoint-independent, endpoint-dependent, udp-blocked or unknown"`
	// PublicAddr is the public ip:port the first server saw.
	PublicAddr string `json:"public_addr,omitempty"`
	// Servers are the STUN servers asked.
	Servers []string `json:"servers"`
	// CheckedAt is when the check ran (RFC 3339).
	CheckedAt string `json:"checked_at"`
	// Error says what failed, if anything.
	Error string `json:"error,omitempty"`
}

// PortMappingDTO is one port the home router forwards to this node.
type PortMappingDTO struct {
	// Protocol is udp or tcp.
	Protocol string `json:"protocol"`
	// Method is natpmp or upnp.
	Method string `json:"method"`
	// External is the public address:port.
	External string `json:"external"`
	// InternalPort is the local port.
	InternalPort int `json:"internal_port"`
	// LifetimeSeconds is the lease the router granted (renewed at half).
	LifetimeSeconds int64 `json:"lifetime_seconds"`
}

// PeerCheckDTO is a peer reachability check: a few random peers dialled
// this node on fresh connections (probe protocol).
type PeerCheckDTO struct {
	// CheckedAt is when the check ended (RFC 3339).
	CheckedAt string `json:"checked_at"`
	// Asked is M, the number of peers asked.
	Asked int `json:"asked"`
	// Reachable is N, the number that reached this node.
	Reachable int `json:"reachable"`
	// Results has one entry per peer asked.
	Results []PeerCheckResultDTO `json:"results"`
}

// PeerCheckResultDTO is one peer's check.
type PeerCheckResultDTO struct {
	// Peer is the checker's peer id.
	Peer string `json:"peer"`
	// Reachable is whether it reached this node (and the echo arrived).
	Reachable bool `json:"reachable"`
	// Path is direct or relay when reachable.
	Path string `json:"path,omitempty"`
	// Addr is this node's address it connected to.
	Addr string `json:"addr,omitempty"`
	// RTTMillis is the echo round trip.
	RTTMillis int64 `json:"rtt_ms"`
	// Error says why not reachable.
	Error string `json:"error,omitempty"`
}

// NATService is the node side of GET /nat and POST /nat/check.
type NATService interface {
	// NATStatus returns what the node knows about its reachability.
	NATStatus(ctx context.Context) (NATStatusDTO, error)
	// CheckReachability asks a few random peers to reach this node now.
	CheckReachability(ctx context.Context) (PeerCheckDTO, error)
}

// ErrCheckTooSoon answers POST /nat/check within the minimum interval of
// the previous check.
var ErrCheckTooSoon = NewError(http.StatusTooManyRequests, CodeTooManyRequests, "a reachability check ran moments ago; try again in a minute")

// ErrNoCheckers answers POST /nat/check when no peer serves the probe
// protocol.
var ErrNoCheckers = NewError(http.StatusServiceUnavailable, "no_checkers", "no connected peer can check this node yet")

// NATRoutes is GET /nat and POST /nat/check.
func NATRoutes(svc NATService, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodGet, Path: "/nat",
		Op: Operation{Summary: "Reachability and NAT status: AutoNAT verdict, direct/relay addresses, NAT mapping (STUN), port mappings, the latest peer reachability check",
			Tags: []string{"node"}, Response: NATStatusDTO{}},
		Handler: callRoute(log, nil, svc, NATService.NATStatus),
	}, {
		Method: http.MethodPost, Path: "/nat/check",
		Op: Operation{Summary: "Ask a few random peers to reach this node on fresh connections now (\"reachable from N of M peers\")",
			Tags: []string{"node"}, Response: PeerCheckDTO{}, Errors: []int{http.StatusTooManyRequests, http.StatusServiceUnavailable}},
		Handler: callRoute(log, nil, svc, NATService.CheckReachability),
	}}
}

// Print writes the status as a table (`myst status`).
func (s NATStatusDTO) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "reachability\t%s\n", s.Summary())
	if s.NATTypeTCP != "" && s.NATTypeTCP != "unknown" || s.NATTypeUDP != "" && s.NATTypeUDP != "unknown" {
		fmt.Fprintf(tw, "nat type (libp2p)\ttcp %s, udp %s\n", s.NATTypeTCP, s.NATTypeUDP)
	}
	if m := s.Mapping; m != nil {
		line := m.Behavior
		if m.PublicAddr != "" {
			line += ", public " + m.PublicAddr
		}
		if m.Error != "" {
			line += " (" + m.Error + ")"
		}
		fmt.Fprintf(tw, "nat mapping (stun)\t%s\n", line)
	}
	for _, a := range s.DirectAddrs {
		fmt.Fprintf(tw, "direct addr\t%s\n", a)
	}
	for _, a := range s.RelayAddrs {
		fmt.Fprintf(tw, "relay addr\t%s\n", a)
	}
	if len(s.PortMappings) == 0 {
		fmt.Fprintf(tw, "port mappings\tnone\n")
	}
	for _, m := range s.PortMappings {
		fmt.Fprintf(tw, "port mapping\t%s %s -> :%d (%s)\n", m.Protocol, m.External, m.InternalPort, m.Method)
	}
	if c := s.PeerCheck; c != nil {
		fmt.Fprintf(tw, "peer check\t%s\n", c.Summary())
		for _, r := range c.Results {
			rtt := "< 1ms"
			if r.RTTMillis > 0 {
				rtt = (time.Duration(r.RTTMillis) * time.Millisecond).String()
			}
			res := "reached over the " + r.Path + " path, " + rtt
			if !r.Reachable {
				res = "failed: " + r.Error
			}
			fmt.Fprintf(tw, "  %s\t%s\n", shortPeer(r.Peer), res)
		}
	}
	return tw.Flush()
}

// Summary is one line: the access and, when known, the peer check, e.g.
// "relay-only (AutoNAT: private since 12:00:00Z), reachable from 3 of 3 peers".
func (s NATStatusDTO) Summary() string {
	var b strings.Builder
	b.WriteString(s.Access)
	b.WriteString(" (AutoNAT: " + s.Reachability)
	if s.ReachabilitySince != "" {
		b.WriteString(" since " + s.ReachabilitySince)
	}
	b.WriteString(")")
	if m := s.Mapping; m != nil {
		b.WriteString(", NAT mapping " + m.Behavior)
	}
	if n := len(s.PortMappings); n > 0 {
		fmt.Fprintf(&b, ", %d port mapping(s)", n)
	}
	if c := s.PeerCheck; c != nil {
		b.WriteString(", " + c.Summary())
	}
	return b.String()
}

// Summary is "reachable from N of M peers (at TIME)".
func (c PeerCheckDTO) Summary() string {
	return fmt.Sprintf("reachable from %d of %d peers (checked %s)", c.Reachable, c.Asked, c.CheckedAt)
}

func shortPeer(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}
