package quality

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

func TestValidProofsVerifyAndRoundTrip(t *testing.T) {
	s := keytest.Signer(t)
	for name, p := range map[string]Proof{"conflict": conflictProof(t, s), "overcharge": overchargeProof(t, s)} {
		t.Run(name, func(t *testing.T) {
			raw, err := p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, provider, err := DecodeProof(raw)
			if err != nil {
				t.Fatal(err)
			}
			if provider != s.Address() {
				t.Fatalf("convicts %s, want %s", provider.Hex(), s.Address().Hex())
			}
			again, err := got.Encode()
			if err != nil || !bytes.Equal(again, raw) {
				t.Fatalf("re-encoding differs (%v)", err)
			}
		})
	}
}

// TestFalseAccusationsDoNotVerify is the negative side: every way a
// reporter could try to convict a provider without the provider having
// signed a lie fails.
func TestFalseAccusationsDoNotVerify(t *testing.T) {
	prov, reporter := keytest.Signer(t), keytest.Signer(t)
	pid := keytest.PeerID(t)
	honest := signProposal(t, prov, proposal(t, prov, pid, 7, nil))
	u := payments.Usage{ProposalSeq: 7, ElapsedMs: 3_600_000, Bytes: 5 << 30}
	over := new(big.Int).Add(fair(u), big.NewInt(1))

	cases := map[string]Proof{
		// Conflicts.
		"same proposal twice": {Kind: KindConflict, Proposals: []market.SignedProposal{honest, honest}},
		"same proposal signed twice": {Kind: KindConflict, Proposals: []market.SignedProposal{honest,
			signProposal(t, prov, honest.Proposal)}},
		"different seq": {Kind: KindConflict, Proposals: ordered(t, honest,
			signProposal(t, prov, proposal(t, prov, pid, 8, func(p *market.Proposal) { p.Location.Country = "DE" })))},
		"second forged by reporter": {Kind: KindConflict, Proposals: ordered(t, honest,
			signProposal(t, reporter, proposal(t, prov, pid, 7, func(p *market.Proposal) { p.Location.Country = "DE" })))},
		"two providers": {Kind: KindConflict, Proposals: ordered(t, honest,
			signProposal(t, reporter, proposal(t, reporter, pid, 7, nil)))},
		"other chain": {Kind: KindConflict, Proposals: ordered(t, honest,
			signProposal(t, prov, proposal(t, prov, pid, 7, func(p *market.Proposal) { p.ChainID = 1 })))},
		"one proposal": {Kind: KindConflict, Proposals: []market.SignedProposal{honest}},
		// Overcharges.
		"honest invoice": {Kind: KindOvercharge, Proposals: []market.SignedProposal{honest},
			Invoice: invoice(t, prov, prov.Address(), fair(u), &u)},
		"below price": {Kind: KindOvercharge, Proposals: []market.SignedProposal{honest},
			Invoice: invoice(t, prov, prov.Address(), big.NewInt(1), &u)},
		"v1 invoice": {Kind: KindOvercharge, Proposals: []market.SignedProposal{honest},
			Invoice: invoice(t, prov, prov.Address(), over, nil)},
		"invoice forged by reporter": {Kind: KindOvercharge, Proposals: []market.SignedProposal{honest},
			Invoice: invoice(t, reporter, prov.Address(), over, &u)},
		"reporter's own invoice": {Kind: KindOvercharge, Proposals: []market.SignedProposal{honest},
			Invoice: invoice(t, reporter, reporter.Address(), over, &u)},
		"invoice for another proposal": {Kind: KindOvercharge, Proposals: []market.SignedProposal{honest},
			Invoice: invoice(t, prov, prov.Address(), over, &payments.Usage{ProposalSeq: 8, ElapsedMs: u.ElapsedMs, Bytes: u.Bytes})},
		"proposal forged at a lower price": {Kind: KindOvercharge, Proposals: []market.SignedProposal{
			signProposal(t, reporter, proposal(t, prov, pid, 7, func(p *market.Proposal) { p.Price.PerGiB = money.MustAmount(big.NewInt(1)) }))},
			Invoice: invoice(t, prov, prov.Address(), fair(u), &u)},
		"no invoice":   {Kind: KindOvercharge, Proposals: []market.SignedProposal{honest}},
		"unknown kind": {Kind: "slander", Proposals: []market.SignedProposal{honest}},
	}
	tampered := invoice(t, prov, prov.Address(), fair(u), &u)
	tampered.AgreementTotal = over // raised after signing
	cases["total raised after signing"] = Proof{Kind: KindOvercharge, Proposals: []market.SignedProposal{honest}, Invoice: tampered}
	otherChain := invoice(t, prov, prov.Address(), over, &u)
	otherChain.ChainID = big.NewInt(1)
	d, _ := otherChain.Digest()
	otherChain.Signature, _ = prov.Sign(d[:])
	cases["invoice on another chain"] = Proof{Kind: KindOvercharge, Proposals: []market.SignedProposal{honest}, Invoice: otherChain}

	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			if got, err := p.Verify(); !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("verified (convicts %s, err %v)", got.Hex(), err)
			}
			if raw, err := p.Encode(); err == nil {
				if _, _, err := DecodeProof(raw); !errors.Is(err, ErrInvalidProof) {
					t.Fatalf("decoded: %v", err)
				}
			}
		})
	}
	// The same overcharge one wei above the price does convict.
	if _, err := NewOvercharge(honest, invoice(t, prov, prov.Address(), over, &u)); err != nil {
		t.Fatalf("one wei over the price: %v", err)
	}
}

func ordered(t *testing.T, a, b market.SignedProposal) []market.SignedProposal {
	da, _ := a.Proposal.Digest()
	db, _ := b.Proposal.Digest()
	if bytes.Compare(da[:], db[:]) > 0 {
		return []market.SignedProposal{b, a}
	}
	return []market.SignedProposal{a, b}
}

func TestDecodeProofRejectsMalformed(t *testing.T) {
	s := keytest.Signer(t)
	cp := conflictProof(t, s)
	raw, err := cp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	good := string(raw)
	swapped := func() string {
		p := conflictProof(t, s)
		p.Proposals[0], p.Proposals[1] = p.Proposals[1], p.Proposals[0]
		r, _ := p.Encode()
		return string(r)
	}()
	for name, bad := range map[string]string{
		"empty":           ``,
		"null":            `null`,
		"trailing":        good + `{}`,
		"unknown field":   strings.Replace(good, `{"v":1,`, `{"v":1,"x":1,`, 1),
		"version":         strings.Replace(good, `{"v":1,`, `{"v":2,`, 1),
		"no invoice key":  strings.Replace(good, `,"invoice":null`, ``, 1),
		"no proposals":    `{"v":1,"kind":"overcharge","proposals":[],"invoice":null}`,
		"three proposals": strings.Replace(good, `"proposals":[`, `"proposals":[{},`, 1),
		"swapped order":   swapped,
		"oversized":       good + strings.Repeat(" ", MaxProofSize),
	} {
		if _, _, err := DecodeProof([]byte(bad)); !errors.Is(err, ErrInvalidProof) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
