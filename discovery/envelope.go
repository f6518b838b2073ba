package discovery

import (
	"encoding/json"
	"fmt"

	"github.com/openmyst/openmyst/internal/strictjson"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p"
)

// EnvelopeVersion is the announcement format this code reads and writes.
const EnvelopeVersion = 1

// MaxMessageSize bounds an encoded Announcement; larger messages are
// rejected before decoding.
const MaxMessageSize = 4096

// TopicName is the GossipSub topic carrying proposals for a chain.
func TopicName(chainID uint64) string {
	return fmt.Sprintf("/openmyst/proposals/1/%d", chainID)
}

// Announcement is one proposal message on the wire.
type Announcement struct {
	// Proposal is the provider's signed proposal (or withdrawal).
	Proposal market.SignedProposal
	// Binding ties Proposal.PeerID to Proposal.ProviderID.
	Binding p2p.Binding
}

// wireAnnouncement is the JSON form: {"v":1,"proposal":{...},"binding":{...}}.
type wireAnnouncement struct {
	V        *uint8          `json:"v"`
	Proposal json.RawMessage `json:"proposal"`
	Binding  json.RawMessage `json:"binding"`
}

// Encode returns the wire form of a.
func (a *Announcement) Encode() ([]byte, error) {
	prop, err := a.Proposal.Encode()
	if err != nil {
		return nil, err
	}
	bind, err := a.Binding.Encode()
	if err != nil {
		return nil, err
	}
	v := uint8(EnvelopeVersion)
	out, err := json.Marshal(wireAnnouncement{V: &v, Proposal: prop, Binding: bind})
	if err != nil {
		return nil, fmt.Errorf("discovery: encode announcement: %w", err)
	}
	return out, nil
}

// DecodeAnnouncement strictly decodes an announcement and verifies both
// signatures and that the binding names the proposal's provider, peer id
// and chain. It does not check clocks, sequence numbers or the sender: the
// Validator does. The returned Reason classifies a failure.
func DecodeAnnouncement(data []byte) (Announcement, Reason, error) {
	if len(data) > MaxMessageSize {
		return Announcement{}, ReasonOversized, fmt.Errorf("discovery: announcement is %d bytes, max %d", len(data), MaxMessageSize)
	}
	var w wireAnnouncement
	if err := strictjson.Unmarshal(data, &w); err != nil {
		return Announcement{}, ReasonMalformed, fmt.Errorf("discovery: decode announcement: %w", err)
	}
	if w.V == nil || w.Proposal == nil || w.Binding == nil {
		return Announcement{}, ReasonMalformed, fmt.Errorf("discovery: announcement: missing v, proposal or binding")
	}
	if *w.V != EnvelopeVersion {
		return Announcement{}, ReasonVersion, fmt.Errorf("discovery: announcement version %d, want %d", *w.V, EnvelopeVersion)
	}
	var peek struct {
		Proposal struct {
			Version *uint16 `json:"version"`
		} `json:"proposal"`
	}
	if err := json.Unmarshal(w.Proposal, &peek); err != nil || peek.Proposal.Version == nil {
		return Announcement{}, ReasonMalformed, fmt.Errorf("discovery: proposal without a version")
	}
	if !market.KnownVersion(*peek.Proposal.Version) {
		return Announcement{}, ReasonVersion, fmt.Errorf("discovery: proposal version %d, want %d or %d", *peek.Proposal.Version, market.ProposalVersion, market.ProposalVersionCaps)
	}
	sp, err := market.DecodeSignedProposal(w.Proposal)
	if err != nil {
		return Announcement{}, classify(err, ReasonSignature), err
	}
	b, err := p2p.DecodeBinding(w.Binding)
	if err != nil {
		return Announcement{}, classify(err, ReasonBinding), err
	}
	a := Announcement{Proposal: sp, Binding: b}
	if err := a.checkBinding(); err != nil {
		return Announcement{}, ReasonBinding, err
	}
	return a, ReasonAccepted, nil
}

// checkBinding checks that the binding speaks for the proposal.
func (a *Announcement) checkBinding() error {
	p := &a.Proposal.Proposal
	pid, err := p.Peer()
	if err != nil {
		return err
	}
	switch {
	case a.Binding.Identity != p.ProviderID:
		return fmt.Errorf("discovery: binding is for identity %s, proposal for %s", a.Binding.Identity.Hex(), p.ProviderID.Hex())
	case a.Binding.PeerID != pid:
		return fmt.Errorf("discovery: binding names peer %s, proposal %s", a.Binding.PeerID, pid)
	case a.Binding.ChainID != p.ChainID:
		return fmt.Errorf("discovery: binding is for chain %d, proposal for %d", a.Binding.ChainID, p.ChainID)
	}
	return nil
}
