package sessionproto

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/payments"
)

// paymentFrames returns the framed sizes of a realistic invoice and its
// exchange message (18-decimal token amounts).
func paymentFrames(tb testing.TB) (invoice, exchange int) {
	tb.Helper()
	provider, consumer := testSigner(tb, 0x33), testSigner(tb, 0x44)
	_, lock, err := payments.NewSecret()
	if err != nil {
		tb.Fatal(err)
	}
	total, _ := new(big.Int).SetString("123456789012345678", 10)
	iv := &payments.Invoice{ChainID: big.NewInt(1337), AgreementID: new(big.Int).Lsh(big.NewInt(1), 127),
		AgreementTotal: total, TransactorFee: big.NewInt(0), Hashlock: lock, Provider: provider.Address()}
	if err := iv.Sign(provider); err != nil {
		tb.Fatal(err)
	}
	em := &payments.ExchangeMessage{
		Promise: payments.Promise{ChainID: big.NewInt(1337), ChannelID: payments.ConsumerChannelID(common.HexToAddress("0x1234")),
			Amount: new(big.Int).Mul(total, big.NewInt(10)), Fee: big.NewInt(0), Hashlock: lock},
		AgreementID: iv.AgreementID, AgreementTotal: total, Provider: provider.Address(),
		HermesID: common.HexToAddress("0x5678"), ChainID: big.NewInt(1337),
	}
	if err := em.Sign(consumer); err != nil {
		tb.Fatal(err)
	}
	im, err := NewInvoice(iv)
	if err != nil {
		tb.Fatal(err)
	}
	xm, err := NewExchangeMessage(em)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := Encode(im)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := Encode(xm)
	if err != nil {
		tb.Fatal(err)
	}
	return 4 + len(a), 4 + len(b)
}

// TestPaymentControlTraffic records the payment control traffic per
// session-minute for the invoice intervals the docs discuss, and checks
// the frames stay far under the protocol's size limit.
func TestPaymentControlTraffic(t *testing.T) {
	inv, ex := paymentFrames(t)
	if inv > 2048 || ex > 2048 {
		t.Fatalf("invoice frame %d B, exchange frame %d B: payment frames grew unexpectedly", inv, ex)
	}
	ka, err := Encode(&Keepalive{Seq: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, intervalS := range []int{10, 15, 20, 30, 60} {
		perMin := 60 / intervalS * (inv + ex)
		t.Logf("invoice every %2ds: %d B invoice + %d B exchange -> %d B/session-minute (keepalive frame %d B, sent only when idle)",
			intervalS, inv, ex, perMin, 4+len(ka))
	}
}
