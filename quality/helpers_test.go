package quality

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

const testChain = 1337

var (
	testHermes = common.HexToAddress("0x00000000000000000000000000000000000000aa")
	t0         = time.Unix(1_800_000_000, 0)
	perHour    = big.NewInt(1e17) // 0.1 MYST/h
	perGiB     = big.NewInt(3e17) // 0.3 MYST/GiB
)

// proposal returns a valid proposal of s with seq, edited by mut.
func proposal(t testing.TB, s identity.Signer, pid peer.ID, seq uint64, mut func(p *market.Proposal)) market.Proposal {
	t.Helper()
	p := market.Proposal{
		Version: market.ProposalVersion, ChainID: testChain, ProviderID: s.Address(), PeerID: pid.String(),
		ServiceType: market.ServiceWireGuard,
		Location:    market.Location{Country: "NL", IPType: market.IPResidential},
		Price:       market.Price{PerHour: money.MustAmount(perHour), PerGiB: money.MustAmount(perGiB)},
		Hermes:      []common.Address{testHermes},
		Access:      market.AccessPolicy{Kind: market.AccessPublic},
		Seq:         seq, IssuedAt: t0.Unix(), ExpiresAt: t0.Add(10 * time.Minute).Unix(),
	}
	if mut != nil {
		mut(&p)
	}
	return p
}

// signProposal signs p with s without market.Sign's signer check, so a
// test can forge (sign another provider's proposal with its own key).
func signProposal(t testing.TB, s identity.Signer, p market.Proposal) market.SignedProposal {
	t.Helper()
	d, err := p.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(d[:])
	if err != nil {
		t.Fatal(err)
	}
	return market.SignedProposal{Proposal: p, Signature: sig}
}

// invoice returns a v2 invoice of provider for usage at total, signed by s.
func invoice(t testing.TB, s identity.Signer, provider common.Address, total *big.Int, u *payments.Usage) *payments.Invoice {
	t.Helper()
	iv := &payments.Invoice{
		ChainID: big.NewInt(testChain), AgreementID: big.NewInt(42), AgreementTotal: total, TransactorFee: big.NewInt(0),
		Provider: provider, Usage: u,
	}
	d, err := iv.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if iv.Signature, err = s.Sign(d[:]); err != nil {
		t.Fatal(err)
	}
	return iv
}

// fair is the honest total for u at the test price.
func fair(u payments.Usage) *big.Int {
	return payments.PriceTotal(perHour, perGiB, u.Elapsed(), u.Bytes)
}

// overchargeProof builds a valid overcharge proof against s.
func overchargeProof(t testing.TB, s identity.Signer) Proof {
	t.Helper()
	sp := signProposal(t, s, proposal(t, s, keytest.PeerID(t), 7, nil))
	u := payments.Usage{ProposalSeq: 7, ElapsedMs: 60_000, Bytes: 1 << 30}
	p, err := NewOvercharge(sp, invoice(t, s, s.Address(), new(big.Int).Mul(fair(u), big.NewInt(3)), &u))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// conflictProof builds a valid conflict proof against s.
func conflictProof(t testing.TB, s identity.Signer) Proof {
	t.Helper()
	pid := keytest.PeerID(t)
	a := signProposal(t, s, proposal(t, s, pid, 9, nil))
	b := signProposal(t, s, proposal(t, s, pid, 9, func(p *market.Proposal) { p.Location.Country = "DE" }))
	p, err := NewConflict(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
