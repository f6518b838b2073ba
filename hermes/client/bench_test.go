package client

import (
	"context"
	"log/slog"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/payments"
)

// BenchmarkVerifyPromise is the provider's check of one hermes promise
// with cached terms (signature, channel, fee, ledger); compare it with
// BenchmarkRecoverSigner, the signature recovery alone, in the same run.
func BenchmarkVerifyPromise(b *testing.B) {
	op := signer("operator")
	prov := signer("provider").Address()
	c, err := New("http://127.0.0.1:1", nil, Options{Log: slog.New(slog.DiscardHandler), HermesID: hermesID, Chain: &fakeTerms{t: Terms{ChainID: chainID, Operator: op.Address(), FeeBps: 100}}})
	if err != nil {
		b.Fatal(err)
	}
	c.led = ledger{loaded: true, totals: map[agreementKey]*big.Int{}, owed: map[common.Address]*big.Int{}, highest: map[common.Address]*big.Int{}}
	m := &payments.ExchangeMessage{Promise: payments.Promise{ChainID: chainID}, AgreementID: big.NewInt(1), AgreementTotal: big.NewInt(100), Provider: prov, HermesID: hermesID, ChainID: chainID}
	p := &payments.Promise{ChainID: chainID, ChannelID: payments.ProviderChannelID(prov, hermesID), Amount: big.NewInt(100), Fee: big.NewInt(0)}
	if err := p.Sign(op); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.verifyPromise(ctx, m, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecoverSigner is the baseline: recovering a promise's signer.
func BenchmarkRecoverSigner(b *testing.B) {
	op := signer("operator")
	p := &payments.Promise{ChainID: chainID, ChannelID: payments.ProviderChannelID(signer("provider").Address(), hermesID), Amount: big.NewInt(100), Fee: big.NewInt(0)}
	if err := p.Sign(op); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.RecoverSigner(); err != nil {
			b.Fatal(err)
		}
	}
}
