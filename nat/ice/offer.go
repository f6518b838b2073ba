package ice

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/openmyst/openmyst/nat/addrs"
	"github.com/openmyst/openmyst/nat/punch"

	pion "github.com/pion/ice/v4"

	"github.com/openmyst/openmyst/internal/strictjson"
)

// Limits of an Offer, so that a peer's candidates cost bounded work.
const (
	MaxCandidates    = 16
	maxCandidateLen  = 256
	minUfrag, maxUfr = 4, 64  // RFC 8445 §5.3: at least 4 characters
	minPwd, maxPwd   = 22, 64 // RFC 8445 §5.3: at least 22 characters
	// MaxOfferSize bounds an encoded Offer.
	MaxOfferSize = 8 << 10
)

// Offer is one side's ICE parameters, carried on the signed session
// stream: credentials for the connectivity checks and the candidates
// (RFC 8839 candidate attributes without the "candidate:" prefix).
type Offer struct {
	Ufrag      string   `json:"ufrag"`
	Pwd        string   `json:"pwd"`
	Candidates []string `json:"candidates"`
	// Punch, when present, is the side's punch socket's public address
	// and mapping (Config.Punch, nat/punch).
	Punch *punch.Info `json:"punch,omitempty"`
}

// Errors of Offer validation.
var (
	ErrBadOffer     = errors.New("ice: bad offer")
	ErrBadCandidate = errors.New("ice: bad candidate")
)

// CandidatePolicy says which remote candidate addresses are acceptable.
type CandidatePolicy struct {
	// AllowPrivate accepts loopback and private (RFC 1918, ULA)
	// addresses: for devnets and hosts on one LAN.
	AllowPrivate bool
}

// Allowed reports whether a connectivity check may be sent to a (see
// addrs.Remote).
func (p CandidatePolicy) Allowed(a netip.Addr) bool { return addrs.Remote(a, p.AllowPrivate) }

// Validate checks the offer's sizes and every candidate's syntax, and
// drops nothing: an offer with a candidate the policy refuses is refused
// whole, so a peer cannot hide probes of the other side's network among
// good candidates. It returns the parsed candidates.
func (o Offer) Validate(p CandidatePolicy) ([]pion.Candidate, error) {
	if n := len(o.Ufrag); n < minUfrag || n > maxUfr || !iceChars(o.Ufrag) {
		return nil, fmt.Errorf("%w: ufrag of %d characters", ErrBadOffer, n)
	}
	if n := len(o.Pwd); n < minPwd || n > maxPwd || !iceChars(o.Pwd) {
		return nil, fmt.Errorf("%w: password of %d characters", ErrBadOffer, n)
	}
	if len(o.Candidates) == 0 || len(o.Candidates) > MaxCandidates {
		return nil, fmt.Errorf("%w: %d candidates (1 to %d)", ErrBadOffer, len(o.Candidates), MaxCandidates)
	}
	out := make([]pion.Candidate, 0, len(o.Candidates))
	for i, raw := range o.Candidates {
		if len(raw) > maxCandidateLen {
			return nil, fmt.Errorf("%w %d: %d bytes", ErrBadCandidate, i, len(raw))
		}
		c, err := pion.UnmarshalCandidate(raw)
		if err != nil {
			return nil, fmt.Errorf("%w %d: %w", ErrBadCandidate, i, err)
		}
		switch c.NetworkType() {
		case pion.NetworkTypeUDP4, pion.NetworkTypeUDP6:
		default:
			return nil, fmt.Errorf("%w %d: network %s (only UDP)", ErrBadCandidate, i, c.NetworkType())
		}
		addr, err := netip.ParseAddr(c.Address())
		if err != nil {
			return nil, fmt.Errorf("%w %d: address %q is not an IP address", ErrBadCandidate, i, c.Address())
		}
		if !p.Allowed(addr) {
			return nil, fmt.Errorf("%w %d: address %s is not allowed", ErrBadCandidate, i, addr)
		}
		if c.Port() <= 0 || c.Port() > 65535 {
			return nil, fmt.Errorf("%w %d: port %d", ErrBadCandidate, i, c.Port())
		}
		out = append(out, c)
	}
	if o.Punch != nil {
		if _, err := o.Punch.Validate(p.Allowed); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadOffer, err)
		}
	}
	return out, nil
}

// CandidateAddrs returns the addresses (IP and UDP port) of validated
// candidates, without duplicates: where this side's connectivity checks
// go (a kill switch admits them while the checks run).
func CandidateAddrs(cands []pion.Candidate) []netip.AddrPort {
	seen := map[netip.AddrPort]bool{}
	var out []netip.AddrPort
	for _, c := range cands {
		a, err := netip.ParseAddr(c.Address())
		if err != nil || c.Port() <= 0 || c.Port() > 65535 {
			continue
		}
		ap := netip.AddrPortFrom(a.Unmap(), uint16(c.Port()))
		if !seen[ap] {
			seen[ap] = true
			out = append(out, ap)
		}
	}
	return out
}

// iceChars reports whether s has only ICE characters (ALPHA / DIGIT / "+" / "/").
func iceChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// DecodeOffer decodes an Offer strictly (unknown fields, trailing data
// and oversize input are errors) and validates it under p.
func DecodeOffer(b []byte, p CandidatePolicy) (Offer, []pion.Candidate, error) {
	if len(b) > MaxOfferSize {
		return Offer{}, nil, fmt.Errorf("%w: %d bytes (max %d)", ErrBadOffer, len(b), MaxOfferSize)
	}
	var o Offer
	if err := strictjson.Unmarshal(b, &o); err != nil {
		return Offer{}, nil, fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	cands, err := o.Validate(p)
	if err != nil {
		return Offer{}, nil, err
	}
	return o, cands, nil
}
