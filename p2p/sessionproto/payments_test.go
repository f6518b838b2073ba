package sessionproto

import (
	"errors"
	"math/big"
	"testing"

	"github.com/openmyst/openmyst/payments"
)

func TestPaymentsRoundTrip(t *testing.T) {
	provider := testSigner(t, 0x33)
	consumer := testSigner(t, 0x44)
	_, lock, err := payments.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	iv := &payments.Invoice{ChainID: big.NewInt(1337), AgreementID: big.NewInt(9), AgreementTotal: big.NewInt(1000),
		TransactorFee: big.NewInt(0), Hashlock: lock, Provider: provider.Address()}
	if err := iv.Sign(provider); err != nil {
		t.Fatal(err)
	}
	msg, err := NewInvoice(iv)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := Encode(msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	iv2, err := got.(*Invoice).Payment()
	if err != nil {
		t.Fatal(err)
	}
	if err := iv2.Verify(); err != nil || iv2.AgreementTotal.Cmp(iv.AgreementTotal) != 0 {
		t.Fatalf("invoice after round trip: %+v, %v", iv2, err)
	}

	em := &payments.ExchangeMessage{
		Promise:     payments.Promise{ChainID: big.NewInt(1337), Amount: big.NewInt(1000), Fee: big.NewInt(0), Hashlock: lock},
		AgreementID: big.NewInt(9), AgreementTotal: big.NewInt(1000), Provider: provider.Address(),
		HermesID: provider.Address(), ChainID: big.NewInt(1337),
	}
	if err := em.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	emsg, err := NewExchangeMessage(em)
	if err != nil {
		t.Fatal(err)
	}
	payload, err = Encode(emsg)
	if err != nil {
		t.Fatal(err)
	}
	got, err = Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	em2, err := got.(*ExchangeMessage).Payment()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := em2.RecoverConsumer(); err != nil || c != consumer.Address() {
		t.Fatalf("exchange after round trip: %v %v", c, err)
	}

	// The session layer's decode of an embedded object rejects what the
	// payments decoder rejects.
	bad := &Invoice{Invoice: []byte(`{"chain_id":"1"}`)}
	if _, err := bad.Payment(); !errors.Is(err, payments.ErrDecode) {
		t.Fatalf("bad invoice: %v", err)
	}
	badEM := &ExchangeMessage{ExchangeMessage: []byte(`{"promise":{}}`)}
	if _, err := badEM.Payment(); !errors.Is(err, payments.ErrDecode) {
		t.Fatalf("bad exchange message: %v", err)
	}
}
