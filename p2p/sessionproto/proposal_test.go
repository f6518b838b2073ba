package sessionproto

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
)

func testProposal(provider common.Address, hermes common.Address, now time.Time) *market.Proposal {
	return &market.Proposal{
		Version: market.ProposalVersion, ChainID: 1337, ProviderID: provider, ServiceType: market.ServiceWireGuard,
		Price:  market.Price{PerHour: money.MustAmount(big.NewInt(1e17)), PerGiB: money.MustAmount(big.NewInt(3e17))},
		Hermes: []common.Address{hermes}, Access: market.AccessPolicy{Kind: market.AccessPublic},
		Seq: 4, IssuedAt: now.Unix() - 10, ExpiresAt: now.Unix() + 600,
	}
}

func TestRequestForAndCheckAgainst(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	provider := testSigner(t, 0x51).Address()
	hermes := common.HexToAddress("0x4e")
	consumer := testSigner(t, 0x52)
	p := testProposal(provider, hermes, now)

	if _, err := RequestFor(p, common.HexToAddress("0x99"), Key{1}, now); err == nil {
		t.Fatal("request through a hermes the proposal does not accept")
	}
	req, err := RequestFor(p, hermes, Key{1}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	// It survives the wire and matches the proposal.
	payload, err := Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	got := m.(*SessionRequest)
	if err := got.VerifySignature(); err != nil {
		t.Fatal(err)
	}
	if e := got.CheckAgainst(p, now); e != nil {
		t.Fatalf("matching request refused: %v", e)
	}

	cases := []struct {
		name string
		edit func(p *market.Proposal)
		want ErrorCode
	}{
		{"other chain", func(p *market.Proposal) { p.ChainID = 1 }, CodeBadRequest},
		{"other provider", func(p *market.Proposal) { p.ProviderID = common.HexToAddress("0x77") }, CodeBadRequest},
		{"new sequence", func(p *market.Proposal) { p.Seq = 5 }, CodeProposalExpired},
		{"withdrawn", func(p *market.Proposal) { p.Withdrawn = true }, CodeProposalExpired},
		{"expired", func(p *market.Proposal) { p.ExpiresAt = now.Unix() }, CodeProposalExpired},
		{"price raised", func(p *market.Proposal) { p.Price.PerGiB = money.MustAmount(big.NewInt(4e17)) }, CodePriceMismatch},
		{"hermes dropped", func(p *market.Proposal) { p.Hermes = []common.Address{common.HexToAddress("0x98")} }, CodeHermesNotAccepted},
		{"allow list", func(p *market.Proposal) {
			p.Access = market.AccessPolicy{Kind: market.AccessAllowList, Allow: []common.Address{common.HexToAddress("0x97")}}
		}, CodeBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := *p
			c.edit(&q)
			e := got.CheckAgainst(&q, now)
			if e == nil || e.Code != c.want {
				t.Fatalf("got %v, want code %s", e, c.want)
			}
			// The refusal is a valid protocol message.
			if _, err := Encode(e); err != nil {
				t.Fatalf("refusal does not encode: %v", err)
			}
			var se *Error
			if !errors.As(error(e), &se) {
				t.Fatal("refusal is not an error")
			}
		})
	}
}
