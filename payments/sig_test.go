package payments

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/identity/sigtest"
)

// TestHighSSignaturesRefused: the malleated (high-s) twin of a valid
// promise, exchange message or invoice signature recovers to the same
// signer with plain ecrecover, but the contracts refuse it; the payments
// package refuses it both in memory and at decode.
func TestHighSSignaturesRefused(t *testing.T) {
	consumer := identity.NewKeySigner(testKey(t, "consumer"))
	provider := identity.NewKeySigner(testKey(t, "provider"))
	m := ExchangeMessage{
		Promise:     Promise{ChainID: big.NewInt(1337), ChannelID: ConsumerChannelID(common.HexToAddress("0xc1")), Amount: big.NewInt(100), Fee: big.NewInt(1), Hashlock: Hashlock([]byte("r"))},
		AgreementID: big.NewInt(7), AgreementTotal: big.NewInt(100), Provider: provider.Address(), HermesID: common.HexToAddress("0x4e"), ChainID: big.NewInt(1337),
	}
	if err := m.Sign(consumer); err != nil {
		t.Fatal(err)
	}

	p := m.Promise
	p.Signature = sigtest.HighS(p.Signature)
	if err := p.Verify(consumer.Address()); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("high-s promise: Verify = %v, want ErrBadSignature", err)
	}
	if _, err := p.RecoverSigner(); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("high-s promise: RecoverSigner = %v", err)
	}

	for name, mutate := range map[string]func(*ExchangeMessage){
		"promise":          func(x *ExchangeMessage) { x.Promise.Signature = sigtest.HighS(x.Promise.Signature) },
		"exchange message": func(x *ExchangeMessage) { x.Signature = sigtest.HighS(x.Signature) },
	} {
		x := m
		mutate(&x)
		if _, err := x.RecoverConsumer(); !errors.Is(err, identity.ErrBadSignature) {
			t.Fatalf("high-s %s: RecoverConsumer = %v, want ErrBadSignature", name, err)
		}
		raw, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeExchangeMessage(raw); !errors.Is(err, ErrDecode) || !errors.Is(err, identity.ErrBadSignature) || !strings.Contains(err.Error(), "upper half") {
			t.Fatalf("high-s %s: decode = %v, want ErrDecode and ErrBadSignature", name, err)
		}
	}

	iv := Invoice{ChainID: big.NewInt(1337), AgreementID: big.NewInt(7), AgreementTotal: big.NewInt(100), TransactorFee: big.NewInt(1), Provider: provider.Address()}
	if err := iv.Sign(provider); err != nil {
		t.Fatal(err)
	}
	iv.Signature = sigtest.HighS(iv.Signature)
	if err := iv.Verify(); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("high-s invoice: Verify = %v, want ErrBadSignature", err)
	}
	raw, err := json.Marshal(iv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeInvoice(raw); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("high-s invoice: decode = %v, want ErrBadSignature", err)
	}
}
