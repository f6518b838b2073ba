package transactor

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/payments"
)

func sampleQuote(t testing.TB) Quote {
	q, err := SignQuote(keytest.Seeded(t, 1), Quote{ChainID: 1337, Fees: testFees, Expires: time.Unix(1_900_000_000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestQuoteVerify(t *testing.T) {
	q := sampleQuote(t)
	addr := keytest.Seeded(t, 1).Address()
	if err := q.Verify(1337, addr, time.Unix(1_800_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := q.Verify(1337, addr, q.Expires); err == nil {
		t.Fatal("a quote at its expiry verified")
	}
	if err := q.Verify(1, addr, time.Unix(0, 0)); err == nil {
		t.Fatal("a quote for another chain verified")
	}
	tampered := q
	tampered.Fees.Settle = big.NewInt(1)
	if err := tampered.Verify(1337, addr, time.Unix(0, 0)); err == nil {
		t.Fatal("a quote with a changed fee verified")
	}
	data, _ := json.Marshal(q)
	back, err := DecodeQuote(data)
	if err != nil || back.Verify(1337, addr, time.Unix(0, 0)) != nil {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{
		strings.Replace(string(data), `"settleFee":"20000000000000000"`, `"settleFee":"020000000000000000"`, 1),
		strings.Replace(string(data), `"chainId":1337,`, ``, 1),
		strings.Replace(string(data), `{`, `{"x":1,`, 1),
		strings.Replace(string(data), `"expires":1900000000`, `"expires":-1`, 1),
	} {
		if _, err := DecodeQuote([]byte(bad)); err == nil {
			t.Errorf("decoded %s", bad)
		}
	}
}

func TestVoucherCode(t *testing.T) {
	sp := keytest.Seeded(t, 2)
	v, err := NewVoucher(sp, 1337, keytest.Seeded(t, 1).Address(), big.NewInt(5e18), time.Hour, time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeVoucher(v.Code())
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != v.ID || back.Amount.Cmp(v.Amount) != 0 || !back.Expires.Equal(v.Expires) || back.Sponsor != sp.Address() {
		t.Fatalf("round trip %+v, want %+v", back, v)
	}
	// Any changed byte breaks the signature or the form.
	code := []byte(v.Code())
	for i := len(VoucherPrefix); i < len(code); i += 7 {
		c := append([]byte(nil), code...)
		c[i] ^= 1
		if _, err := DecodeVoucher(string(c)); err == nil {
			t.Fatalf("a code changed at %d decoded", i)
		}
	}
	if _, err := DecodeVoucher(v.Code() + "AA"); err == nil {
		t.Fatal("a long code decoded")
	}
}

func seedRequests(t testing.TB) (reg, ben, settle, redeem []byte) {
	q := sampleQuote(t)
	id := keytest.Seeded(t, 3)
	sig, _ := id.Sign(make([]byte, 32))
	reg, _ = json.Marshal(RegisterRequest{Quote: q, Identity: id.Address(), Hermes: common.Address{1}, Fee: big.NewInt(0), Beneficiary: id.Address(), Deferred: true, Signature: sig})
	ben, _ = json.Marshal(BeneficiaryRequest{Quote: q, Identity: id.Address(), Beneficiary: common.Address{2}, Hermes: common.Address{1}, Fee: big.NewInt(7), Nonce: 1, Signature: sig})
	r, lock, _ := payments.NewSecret()
	p := payments.Promise{ChainID: big.NewInt(1337), ChannelID: payments.ProviderChannelID(id.Address(), common.Address{1}), Amount: big.NewInt(100), Fee: big.NewInt(1), Hashlock: lock}
	if err := p.Sign(keytest.Seeded(t, 4)); err != nil {
		t.Fatal(err)
	}
	settle, _ = json.Marshal(SettleRequest{Quote: q, Settlement: chain.Settlement{Kind: chain.KindProvider, ChainID: 1337, Contract: common.Address{1}, Provider: id.Address(), Promise: p, Preimage: r}})
	v, _ := NewVoucher(keytest.Seeded(t, 2), 1337, common.Address{9}, big.NewInt(1), time.Hour, time.Unix(1_800_000_000, 0))
	redeem, _ = json.Marshal(RedeemRequest{Voucher: v.Code(), Identity: id.Address(), Hermes: common.Address{1}, Beneficiary: id.Address(), Signature: sig})
	return
}

func TestDecodeRequests(t *testing.T) {
	reg, ben, settle, redeem := seedRequests(t)
	if _, err := DecodeRegisterRequest(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeBeneficiaryRequest(ben); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeSettleRequest(settle); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRedeemRequest(redeem); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRegisterRequest(bytes.Replace(reg, []byte(`"fee":"0"`), []byte(`"fee":"-1"`), 1)); err == nil {
		t.Fatal("negative fee decoded")
	}
	if _, err := DecodeSettleRequest(bytes.Replace(settle, []byte(`"kind":"provider"`), []byte(`"kind":"consumer"`), 1)); err == nil {
		t.Fatal("consumer settlement decoded")
	}
	if _, err := DecodeBeneficiaryRequest(bytes.Replace(ben, []byte(`"nonce":1`), []byte(`"nonce":0`), 1)); err == nil {
		t.Fatal("nonce 0 decoded")
	}
}

// roundTrip re-encodes a decoded value and decodes it again to the same JSON.
func roundTrip[T any](t *testing.T, v T, dec func([]byte) (T, error)) {
	a, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	w, err := dec(a)
	if err != nil {
		t.Fatalf("re-decode %s: %v", a, err)
	}
	b, _ := json.Marshal(w)
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip changed %s to %s", a, b)
	}
}

// fuzzRoundTrip fuzzes decode from seeds: whatever it accepts must
// survive roundTrip.
func fuzzRoundTrip[T any](f *testing.F, decode func([]byte) (T, error), seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, err := decode(data); err == nil {
			roundTrip(t, v, decode)
		}
	})
}

func FuzzDecodeQuote(f *testing.F) {
	q, _ := json.Marshal(sampleQuote(f))
	fuzzRoundTrip(f, DecodeQuote, q, []byte(`{}`))
}

func FuzzDecodeRegisterRequest(f *testing.F) {
	reg, _, _, _ := seedRequests(f)
	fuzzRoundTrip(f, DecodeRegisterRequest, reg)
}

func FuzzDecodeBeneficiaryRequest(f *testing.F) {
	_, ben, _, _ := seedRequests(f)
	fuzzRoundTrip(f, DecodeBeneficiaryRequest, ben)
}

func FuzzDecodeSettleRequest(f *testing.F) {
	_, _, settle, _ := seedRequests(f)
	fuzzRoundTrip(f, DecodeSettleRequest, settle)
}

func FuzzDecodeRedeemRequest(f *testing.F) {
	_, _, _, redeem := seedRequests(f)
	fuzzRoundTrip(f, DecodeRedeemRequest, redeem)
}

func FuzzDecodeVoucher(f *testing.F) {
	v, _ := NewVoucher(keytest.Seeded(f, 2), 1337, common.Address{9}, big.NewInt(1), time.Hour, time.Unix(1_800_000_000, 0))
	f.Add(v.Code())
	f.Add(VoucherPrefix)
	f.Fuzz(func(t *testing.T, code string) {
		v, err := DecodeVoucher(code)
		if err != nil {
			return
		}
		back, err := DecodeVoucher(v.Code())
		if err != nil || back.Code() != v.Code() {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
