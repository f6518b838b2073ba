package market

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/strictjson"
)

// ProposalVersion is the proposal format version without caps. A
// proposal with Caps is ProposalVersionCaps; this code reads and writes
// both (KnownVersion), and a proposal's version follows from its content
// (Proposal.FormatVersion), so a provider without caps stays readable by
// nodes that only know version 1.
const ProposalVersion = 1

// ProposalVersionCaps is the proposal format version with the caps field.
const ProposalVersionCaps = 2

// KnownVersion reports whether v is a proposal format version this code
// reads.
func KnownVersion(v uint16) bool { return v == ProposalVersion || v == ProposalVersionCaps }

// MinBandwidthCap is the lowest per-session bandwidth a proposal may
// announce, in bytes per second.
const MinBandwidthCap = 1 << 10

// Caps are the operator limits a consumer needs to know before it picks
// a provider (format version 2).
type Caps struct {
	// Bandwidth caps each session's traffic in bytes per second in each
	// direction (at least MinBandwidthCap).
	Bandwidth uint64 `json:"bandwidth"`
}

// Validate checks the caps' fields.
func (c *Caps) Validate() error {
	if c.Bandwidth < MinBandwidthCap {
		return fmt.Errorf("market: caps: bandwidth %d B/s, want at least %d", c.Bandwidth, MinBandwidthCap)
	}
	return nil
}

// Limits on a proposal's contents.
const (
	// MaxProposalSize bounds an encoded SignedProposal in bytes.
	MaxProposalSize = 3072
	// MaxAddrs bounds Proposal.Addrs.
	MaxAddrs = 8
	// MaxAddrLen bounds each entry of Proposal.Addrs in bytes.
	MaxAddrLen = 128
	// MaxHermes bounds Proposal.Hermes.
	MaxHermes = 8
	// MaxAllow bounds AccessPolicy.Allow.
	MaxAllow = 32
	// MaxTTL is the longest a proposal may be valid: ExpiresAt-IssuedAt.
	MaxTTL = 24 * time.Hour
)

// ServiceType names the service a proposal offers.
type ServiceType string

// ServiceWireGuard is the WireGuard VPN service, the only one so far.
const ServiceWireGuard ServiceType = "wireguard"

// ParseServiceType validates s as a known ServiceType.
func ParseServiceType(s string) (ServiceType, error) {
	if ServiceType(s) == ServiceWireGuard {
		return ServiceWireGuard, nil
	}
	return "", fmt.Errorf("market: service type %q: want wireguard", s)
}

// Access policy kinds.
const (
	// AccessPublic lets any registered consumer connect.
	AccessPublic = "public"
	// AccessAllowList lets only the identities in AccessPolicy.Allow connect.
	AccessAllowList = "allowlist"
)

// AccessPolicy says which consumers a provider serves.
type AccessPolicy struct {
	// Kind is AccessPublic or AccessAllowList.
	Kind string `json:"kind"`
	// Allow lists the consumer identities served when Kind is
	// AccessAllowList; it must be empty for AccessPublic.
	Allow []common.Address `json:"allow"`
}

// Allows reports whether consumer may connect under the policy.
func (a AccessPolicy) Allows(consumer common.Address) bool {
	if a.Kind == AccessPublic {
		return true
	}
	for _, c := range a.Allow {
		if c == consumer {
			return true
		}
	}
	return false
}

// Validate checks the policy's fields.
func (a AccessPolicy) Validate() error {
	switch a.Kind {
	case AccessPublic:
		if len(a.Allow) != 0 {
			return errors.New("market: access: public policy must have an empty allow list")
		}
	case AccessAllowList:
		if len(a.Allow) == 0 || len(a.Allow) > MaxAllow {
			return fmt.Errorf("market: access: allow list has %d entries, want 1..%d", len(a.Allow), MaxAllow)
		}
		if err := uniqueNonZero(a.Allow); err != nil {
			return fmt.Errorf("market: access: allow list: %w", err)
		}
	default:
		return fmt.Errorf("market: access: kind %q: want public or allowlist", a.Kind)
	}
	return nil
}

// Proposal is a provider's signed offer. Field order is the canonical
// encoding order (docs/discovery.md); do not reorder.
type Proposal struct {
	// Version is the format version, ProposalVersion.
	Version uint16 `json:"version"`
	// ChainID is the EVM chain the provider is paid on.
	ChainID uint64 `json:"chain_id"`
	// ProviderID is the provider identity that signs the proposal.
	ProviderID common.Address `json:"provider_id"`
	// PeerID is the provider's libp2p peer id (base58 or CID text form).
	PeerID string `json:"peer_id"`
	// Addrs are the provider's libp2p multiaddrs (may be empty behind NAT:
	// then the DHT or a relay is used).
	Addrs []string `json:"addrs"`
	// ServiceType is the offered service.
	ServiceType ServiceType `json:"service_type"`
	// Location is where traffic exits.
	Location Location `json:"location"`
	// Price is what the provider charges.
	Price Price `json:"price"`
	// Hermes lists the accepted hermes ids (payment hubs), at least one.
	Hermes []common.Address `json:"hermes"`
	// Access is who may connect.
	Access AccessPolicy `json:"access"`
	// Seq orders a provider's proposals: a higher one replaces a lower one.
	Seq uint64 `json:"seq"`
	// IssuedAt is when the proposal was signed, unix seconds.
	IssuedAt int64 `json:"issued_at"`
	// ExpiresAt is when the proposal stops being valid, unix seconds.
	ExpiresAt int64 `json:"expires_at"`
	// Withdrawn marks a signed withdrawal: the provider stopped offering
	// the service; it replaces any lower Seq and is never listed.
	Withdrawn bool `json:"withdrawn"`
	// Caps, present exactly in version 2, are the provider's limits
	// consumers should know (absent from a version 1 encoding).
	Caps *Caps `json:"caps,omitempty"`
}

// FormatVersion is the format version p's content needs:
// ProposalVersionCaps with Caps, else ProposalVersion.
func (p *Proposal) FormatVersion() uint16 {
	if p.Caps != nil {
		return ProposalVersionCaps
	}
	return ProposalVersion
}

// Validate checks every field of p except the expiry against a clock (see
// CheckTime) and the signature (see SignedProposal.Verify).
func (p *Proposal) Validate() error {
	if !KnownVersion(p.Version) {
		return fmt.Errorf("market: proposal: version %d, want %d or %d", p.Version, ProposalVersion, ProposalVersionCaps)
	}
	if want := p.FormatVersion(); p.Version != want {
		return fmt.Errorf("market: proposal: version %d with caps %t; caps are exactly in version %d", p.Version, p.Caps != nil, ProposalVersionCaps)
	}
	if p.ChainID == 0 {
		return errors.New("market: proposal: missing chain_id")
	}
	if p.ProviderID == (common.Address{}) {
		return errors.New("market: proposal: missing provider_id")
	}
	if _, err := p.Peer(); err != nil {
		return err
	}
	if len(p.Addrs) > MaxAddrs {
		return fmt.Errorf("market: proposal: %d addrs, max %d", len(p.Addrs), MaxAddrs)
	}
	for _, a := range p.Addrs {
		if len(a) > MaxAddrLen {
			return fmt.Errorf("market: proposal: addr is %d bytes, max %d", len(a), MaxAddrLen)
		}
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("market: proposal: addr %q: %w", a, err)
		}
	}
	if err := p.ValidateOffer(); err != nil {
		return err
	}
	if p.Seq == 0 {
		return errors.New("market: proposal: missing seq")
	}
	if p.IssuedAt <= 0 {
		return errors.New("market: proposal: missing issued_at")
	}
	if p.ExpiresAt <= p.IssuedAt {
		return fmt.Errorf("market: proposal: expires_at %d not after issued_at %d", p.ExpiresAt, p.IssuedAt)
	}
	if time.Duration(p.ExpiresAt-p.IssuedAt)*time.Second > MaxTTL {
		return fmt.Errorf("market: proposal: valid for %ds, max %s", p.ExpiresAt-p.IssuedAt, MaxTTL)
	}
	return nil
}

// ValidateOffer checks the fields a provider configures: service type,
// location, price, hermes ids and access policy. Validate includes it.
func (p *Proposal) ValidateOffer() error {
	if _, err := ParseServiceType(string(p.ServiceType)); err != nil {
		return fmt.Errorf("market: proposal: %w", err)
	}
	if err := p.Location.Validate(); err != nil {
		return fmt.Errorf("market: proposal: %w", err)
	}
	if !p.Price.PerHour.IsSet() || !p.Price.PerGiB.IsSet() {
		return errors.New("market: proposal: missing price.per_hour or price.per_gib")
	}
	if len(p.Hermes) == 0 || len(p.Hermes) > MaxHermes {
		return fmt.Errorf("market: proposal: %d hermes ids, want 1..%d", len(p.Hermes), MaxHermes)
	}
	if err := uniqueNonZero(p.Hermes); err != nil {
		return fmt.Errorf("market: proposal: hermes: %w", err)
	}
	if err := p.Access.Validate(); err != nil {
		return fmt.Errorf("market: proposal: %w", err)
	}
	if p.Caps != nil {
		if err := p.Caps.Validate(); err != nil {
			return fmt.Errorf("market: proposal: %w", err)
		}
	}
	return nil
}

// Peer returns the decoded libp2p peer id.
func (p *Proposal) Peer() (peer.ID, error) {
	if p.PeerID == "" {
		return "", errors.New("market: proposal: missing peer_id")
	}
	id, err := peer.Decode(p.PeerID)
	if err != nil {
		return "", fmt.Errorf("market: proposal: peer_id %q: %w", p.PeerID, err)
	}
	return id, nil
}

// ErrExpired is returned (wrapped) by CheckTime for a proposal past its
// expiry.
var ErrExpired = errors.New("expired")

// ErrFuture is returned (wrapped) by CheckTime for a proposal issued in the
// future beyond the allowed clock skew.
var ErrFuture = errors.New("issued in the future")

// CheckTime checks p against now: not expired, and not issued more than skew
// in the future.
func (p *Proposal) CheckTime(now time.Time, skew time.Duration) error {
	if now.Unix() >= p.ExpiresAt {
		return fmt.Errorf("market: proposal: %w at %d (now %d)", ErrExpired, p.ExpiresAt, now.Unix())
	}
	if time.Duration(p.IssuedAt-now.Unix())*time.Second > skew {
		return fmt.Errorf("market: proposal: %w: issued_at %d, now %d", ErrFuture, p.IssuedAt, now.Unix())
	}
	return nil
}

// Expiry returns ExpiresAt as a time.
func (p *Proposal) Expiry() time.Time { return time.Unix(p.ExpiresAt, 0) }

// CanonicalJSON is the canonical encoding of p: encoding/json of the struct
// (fixed field order, no insignificant whitespace, lowercase 0x addresses,
// decimal-string amounts, nil lists as []).
func (p *Proposal) CanonicalJSON() ([]byte, error) {
	c := *p
	if c.Addrs == nil {
		c.Addrs = []string{}
	}
	if c.Hermes == nil {
		c.Hermes = []common.Address{}
	}
	if c.Access.Allow == nil {
		c.Access.Allow = []common.Address{}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("market: encode proposal: %w", err)
	}
	return b, nil
}

// proposalDomain separates proposal digests from every other signed object.
const proposalDomain = "openmyst.proposal\x00"

// Digest is keccak256("openmyst.proposal\x00" || CanonicalJSON(p)); the
// provider signs it as an EIP-191 personal message.
func (p *Proposal) Digest() ([32]byte, error) {
	b, err := p.CanonicalJSON()
	if err != nil {
		return [32]byte{}, err
	}
	return crypto.Keccak256Hash([]byte(proposalDomain), b), nil
}

// SignedProposal is a Proposal with the provider identity's signature.
type SignedProposal struct {
	// Proposal is the signed content.
	Proposal Proposal `json:"proposal"`
	// Signature is the 65-byte EIP-191 signature over Proposal.Digest().
	Signature hexutil.Bytes `json:"signature"`
}

// Sign validates p and signs it with signer, which must be p.ProviderID.
func Sign(p Proposal, signer identity.Signer) (SignedProposal, error) {
	sig, err := identity.SignRecord(&p, p.ProviderID, signer)
	if err != nil {
		return SignedProposal{}, fmt.Errorf("market: sign proposal: %w", err)
	}
	return SignedProposal{Proposal: p, Signature: sig}, nil
}

// Verify validates the proposal's fields and checks that the signature was
// made by Proposal.ProviderID. It does not look at the clock.
func (s *SignedProposal) Verify() error {
	err := identity.VerifyRecord(&s.Proposal, s.Proposal.ProviderID, s.Signature)
	if errors.Is(err, identity.ErrBadSignature) {
		return fmt.Errorf("market: proposal signature: %w", err)
	}
	return err
}

// Encode returns the wire form of s: canonical JSON of
// {"proposal":...,"signature":"0x..."}.
func (s *SignedProposal) Encode() ([]byte, error) {
	body, err := s.Proposal.CanonicalJSON()
	if err != nil {
		return nil, err
	}
	sig, _ := json.Marshal(s.Signature)
	out := make([]byte, 0, len(body)+len(sig)+32)
	out = append(out, `{"proposal":`...)
	out = append(out, body...)
	out = append(out, `,"signature":`...)
	out = append(out, sig...)
	out = append(out, '}')
	return out, nil
}

// DecodeSignedProposal strictly decodes and verifies a SignedProposal: size
// limit, no unknown fields, no trailing data, every field present and in
// range, signature by the provider. It does not check the expiry.
func DecodeSignedProposal(b []byte) (SignedProposal, error) {
	return strictjson.Decode(b, MaxProposalSize, "market: decode proposal", (*SignedProposal).Verify)
}

func uniqueNonZero(addrs []common.Address) error {
	seen := make(map[common.Address]struct{}, len(addrs))
	for _, a := range addrs {
		if a == (common.Address{}) {
			return errors.New("zero address")
		}
		if _, dup := seen[a]; dup {
			return fmt.Errorf("duplicate %s", a.Hex())
		}
		seen[a] = struct{}{}
	}
	return nil
}
