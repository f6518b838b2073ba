package quality

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/internal/strictjson"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/payments"
)

// ProofVersion is the only proof format version this code reads and
// writes.
const ProofVersion = 1

// MaxProofSize bounds an encoded Proof in bytes: two proposals of at most
// market.MaxProposalSize or one and an invoice, plus the envelope.
const MaxProofSize = 2*market.MaxProposalSize + 1024

// Kind names what a proof proves.
type Kind string

// The kinds of proof.
const (
	// KindConflict is two different proposals signed by one provider with
	// the same sequence number (equivocation: peers would disagree on
	// which offer is current).
	KindConflict Kind = "conflicting_proposals"
	// KindOvercharge is a proposal and a v2 invoice of the same provider
	// for that proposal whose total exceeds the proposal's price for the
	// session time and bytes the invoice claims.
	KindOvercharge Kind = "overcharge"
)

// ErrInvalidProof is wrapped by every error of DecodeProof and Verify: the
// proof does not prove what it says (or is not well formed).
var ErrInvalidProof = errors.New("quality: invalid proof")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidProof, fmt.Sprintf(format, args...))
}

// Proof is evidence of a provider's misbehaviour made only of what the
// provider signed.
type Proof struct {
	// Kind says what is proved.
	Kind Kind
	// Proposals are two conflicting proposals (KindConflict, in ascending
	// digest order) or the one proposal the invoice is for
	// (KindOvercharge).
	Proposals []market.SignedProposal
	// Invoice is the overcharging v2 invoice (KindOvercharge only).
	Invoice *payments.Invoice
}

// NewConflict returns the proof that a and b, both signed by one
// provider with one sequence number, conflict, after verifying it.
func NewConflict(a, b market.SignedProposal) (Proof, error) {
	da, err := a.Proposal.Digest()
	if err != nil {
		return Proof{}, err
	}
	db, err := b.Proposal.Digest()
	if err != nil {
		return Proof{}, err
	}
	if bytes.Compare(da[:], db[:]) > 0 {
		a, b = b, a
	}
	p := Proof{Kind: KindConflict, Proposals: []market.SignedProposal{a, b}}
	if _, err := p.Verify(); err != nil {
		return Proof{}, err
	}
	return p, nil
}

// NewOvercharge returns the proof that inv overcharges for its own usage
// at sp's price, after verifying it.
func NewOvercharge(sp market.SignedProposal, inv *payments.Invoice) (Proof, error) {
	p := Proof{Kind: KindOvercharge, Proposals: []market.SignedProposal{sp}, Invoice: inv}
	if _, err := p.Verify(); err != nil {
		return Proof{}, err
	}
	return p, nil
}

// Verify checks the proof using nothing but its contents and returns the
// convicted provider identity. Signatures are checked, never assumed: a
// proof whose parts are not all signed by one provider, or that shows no
// misbehaviour (identical proposals, an invoice at or below the price of
// its usage, a v1 invoice without usage), fails with ErrInvalidProof.
// Expiry does not matter: a signed lie stays a lie.
func (p *Proof) Verify() (common.Address, error) {
	for i := range p.Proposals {
		if err := p.Proposals[i].Verify(); err != nil {
			return common.Address{}, invalid("proposal %d: %v", i, err)
		}
	}
	switch p.Kind {
	case KindConflict:
		return p.verifyConflict()
	case KindOvercharge:
		return p.verifyOvercharge()
	}
	return common.Address{}, invalid("unknown kind %q", p.Kind)
}

func (p *Proof) verifyConflict() (common.Address, error) {
	if len(p.Proposals) != 2 || p.Invoice != nil {
		return common.Address{}, invalid("a conflict needs exactly two proposals and no invoice")
	}
	a, b := &p.Proposals[0].Proposal, &p.Proposals[1].Proposal
	switch {
	case a.ProviderID != b.ProviderID:
		return common.Address{}, invalid("proposals of two providers %s and %s", a.ProviderID.Hex(), b.ProviderID.Hex())
	case a.ChainID != b.ChainID:
		return common.Address{}, invalid("proposals for chains %d and %d", a.ChainID, b.ChainID)
	case a.Seq != b.Seq:
		return common.Address{}, invalid("sequence numbers %d and %d differ", a.Seq, b.Seq)
	}
	da, _ := a.Digest() // Verify computed both already
	db, _ := b.Digest()
	if c := bytes.Compare(da[:], db[:]); c == 0 {
		return common.Address{}, invalid("the two proposals are the same")
	} else if c > 0 {
		return common.Address{}, invalid("proposals not in ascending digest order")
	}
	return a.ProviderID, nil
}

func (p *Proof) verifyOvercharge() (common.Address, error) {
	if len(p.Proposals) != 1 || p.Invoice == nil {
		return common.Address{}, invalid("an overcharge needs one proposal and one invoice")
	}
	sp, iv := &p.Proposals[0].Proposal, p.Invoice
	if err := iv.Validate(); err != nil {
		return common.Address{}, invalid("invoice: %v", err)
	}
	if iv.Provider != sp.ProviderID {
		return common.Address{}, invalid("invoice of %s, proposal of %s", iv.Provider.Hex(), sp.ProviderID.Hex())
	}
	if err := iv.Verify(); err != nil {
		return common.Address{}, invalid("invoice signature: %v", err)
	}
	u := iv.Usage
	switch {
	case u == nil:
		return common.Address{}, invalid("a v1 invoice claims no usage")
	case u.ProposalSeq != sp.Seq:
		return common.Address{}, invalid("invoice for proposal %d, proposal is %d", u.ProposalSeq, sp.Seq)
	case !iv.ChainID.IsUint64() || iv.ChainID.Uint64() != sp.ChainID:
		return common.Address{}, invalid("invoice for chain %s, proposal for %d", iv.ChainID, sp.ChainID)
	}
	fair := payments.PriceTotal(sp.Price.PerHour.Int(), sp.Price.PerGiB.Int(), u.Elapsed(), u.Bytes)
	if iv.AgreementTotal.Cmp(fair) <= 0 {
		return common.Address{}, invalid("invoice total %s is within the price %s of its usage", iv.AgreementTotal, fair)
	}
	return sp.ProviderID, nil
}

// wireProof is the JSON form: {"v":1,"kind":...,"proposals":[...],"invoice":{...}|null}.
type wireProof struct {
	V         *uint8            `json:"v"`
	Kind      *Kind             `json:"kind"`
	Proposals []json.RawMessage `json:"proposals"`
	Invoice   json.RawMessage   `json:"invoice"`
}

// Encode returns the canonical wire form of p.
func (p *Proof) Encode() ([]byte, error) {
	v, kind := uint8(ProofVersion), p.Kind
	w := wireProof{V: &v, Kind: &kind, Invoice: json.RawMessage("null")}
	for i := range p.Proposals {
		raw, err := p.Proposals[i].Encode()
		if err != nil {
			return nil, err
		}
		w.Proposals = append(w.Proposals, raw)
	}
	if p.Invoice != nil {
		raw, err := json.Marshal(p.Invoice)
		if err != nil {
			return nil, fmt.Errorf("quality: encode invoice: %w", err)
		}
		w.Invoice = raw
	}
	out, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("quality: encode proof: %w", err)
	}
	if len(out) > MaxProofSize {
		return nil, fmt.Errorf("quality: proof is %d bytes, max %d", len(out), MaxProofSize)
	}
	return out, nil
}

// DecodeProof strictly decodes and verifies a proof: size limit, no
// unknown fields or trailing data, every part well formed and signed, and
// the misbehaviour shown. It returns the proof and the convicted provider.
func DecodeProof(data []byte) (Proof, common.Address, error) {
	if len(data) > MaxProofSize {
		return Proof{}, common.Address{}, invalid("%d bytes, max %d", len(data), MaxProofSize)
	}
	var w wireProof
	if err := strictjson.Unmarshal(data, &w); err != nil {
		return Proof{}, common.Address{}, invalid("decode: %v", err)
	}
	switch {
	case w.V == nil || w.Kind == nil || w.Proposals == nil || w.Invoice == nil:
		return Proof{}, common.Address{}, invalid("missing v, kind, proposals or invoice")
	case *w.V != ProofVersion:
		return Proof{}, common.Address{}, invalid("version %d, want %d", *w.V, ProofVersion)
	case len(w.Proposals) == 0 || len(w.Proposals) > 2:
		return Proof{}, common.Address{}, invalid("%d proposals, want 1 or 2", len(w.Proposals))
	}
	p := Proof{Kind: *w.Kind}
	for i, raw := range w.Proposals {
		sp, err := market.DecodeSignedProposal(raw)
		if err != nil {
			return Proof{}, common.Address{}, invalid("proposal %d: %v", i, err)
		}
		p.Proposals = append(p.Proposals, sp)
	}
	if string(w.Invoice) != "null" {
		iv, err := payments.DecodeInvoice(w.Invoice)
		if err != nil {
			return Proof{}, common.Address{}, invalid("%v", err)
		}
		p.Invoice = iv
	}
	provider, err := p.Verify()
	if err != nil {
		return Proof{}, common.Address{}, err
	}
	return p, provider, nil
}

// ID is a digest naming the proof (keccak256 of its canonical encoding).
func (p *Proof) ID() ([32]byte, error) {
	raw, err := p.Encode()
	if err != nil {
		return [32]byte{}, err
	}
	return crypto.Keccak256Hash(raw), nil
}
