package sessionproto

import (
	"fmt"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/market"
)

// RequestFor returns an unsigned SessionRequest for proposal p at p's
// price, paying through hermes with the consumer's WireGuard key wgKey,
// issued at now. The caller signs it (Sign) before sending.
func RequestFor(p *market.Proposal, hermes common.Address, wgKey Key, now time.Time) (*SessionRequest, error) {
	if !slices.Contains(p.Hermes, hermes) {
		return nil, &Error{Code: CodeHermesNotAccepted, Message: fmt.Sprintf("proposal does not accept hermes %s", hermes.Hex())}
	}
	return &SessionRequest{
		ChainID:      p.ChainID,
		Provider:     p.ProviderID,
		ServiceType:  string(p.ServiceType),
		ProposalSeq:  p.Seq,
		Hermes:       hermes,
		PricePerHour: p.Price.PerHour,
		PricePerGiB:  p.Price.PerGiB,
		WGPublicKey:  wgKey,
		IssuedAt:     now.Unix(),
	}, nil
}

// CheckAgainst checks a (signature-verified) request against the
// provider's current proposal p at time now, and returns the Error to send
// back when it does not match: bad_request for another chain, provider or
// service, proposal_expired for another sequence number or an expired or
// withdrawn proposal, price_mismatch for another price,
// hermes_not_accepted for a hermes p does not list, and bad_request when
// p's access policy does not admit the consumer. Registration and channel
// funds need the chain and are checked by the session manager.
func (m *SessionRequest) CheckAgainst(p *market.Proposal, now time.Time) *Error {
	switch {
	case m.ChainID != p.ChainID:
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("chain %d, provider serves chain %d", m.ChainID, p.ChainID)}
	case m.Provider != p.ProviderID:
		return &Error{Code: CodeBadRequest, Message: "request is for another provider"}
	case m.ServiceType != string(p.ServiceType):
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("service %q is not offered", m.ServiceType)}
	case p.Withdrawn || m.ProposalSeq != p.Seq:
		return &Error{Code: CodeProposalExpired, Message: fmt.Sprintf("proposal %d is not current (current %d)", m.ProposalSeq, p.Seq)}
	case now.Unix() >= p.ExpiresAt:
		return &Error{Code: CodeProposalExpired, Message: "proposal has expired"}
	case m.PricePerHour.Cmp(p.Price.PerHour) != 0 || m.PricePerGiB.Cmp(p.Price.PerGiB) != 0:
		return &Error{Code: CodePriceMismatch, Message: fmt.Sprintf("price %s/h %s/GiB, proposal asks %s/h %s/GiB",
			m.PricePerHour, m.PricePerGiB, p.Price.PerHour, p.Price.PerGiB)}
	case !slices.Contains(p.Hermes, m.Hermes):
		return &Error{Code: CodeHermesNotAccepted, Message: fmt.Sprintf("hermes %s is not accepted", m.Hermes.Hex())}
	case !p.Access.Allows(m.Consumer):
		return &Error{Code: CodeBadRequest, Message: "consumer is not admitted by the access policy"}
	}
	return nil
}
