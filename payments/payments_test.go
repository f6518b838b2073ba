package payments

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
)

func TestPromiseDigestLayout(t *testing.T) {
	p := Promise{ChainID: big.NewInt(1337), ChannelID: ConsumerChannelID(common.HexToAddress("0x01")), Amount: big.NewInt(7), Fee: big.NewInt(3), Hashlock: Hashlock([]byte("r"))}
	// abi.encodePacked(uint256, bytes32, uint256, uint256, bytes32), built by hand.
	want := crypto.Keccak256(
		math.U256Bytes(big.NewInt(1337)),
		common.LeftPadBytes([]byte{1}, 32),
		math.U256Bytes(big.NewInt(7)),
		math.U256Bytes(big.NewInt(3)),
		crypto.Keccak256([]byte("r")),
	)
	got, err := p.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if string(got[:]) != string(want) {
		t.Fatalf("digest %x, want %x", got, want)
	}
}

func TestPromiseSignVerify(t *testing.T) {
	s := identity.NewKeySigner(testKey(t, "consumer"))
	other := identity.NewKeySigner(testKey(t, "other"))
	p := Promise{ChainID: big.NewInt(1), Amount: big.NewInt(10), Fee: big.NewInt(0)}
	if err := p.Sign(s); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(s.Address()); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(other.Address()); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("verify with wrong signer: %v", err)
	}
	q := p
	q.Amount = big.NewInt(11)
	if err := q.Verify(s.Address()); err == nil {
		t.Fatal("tampered amount verified")
	}
	q = p
	q.ChainID = big.NewInt(2)
	if err := q.Verify(s.Address()); err == nil {
		t.Fatal("promise verified on another chain")
	}
	neg := p
	neg.Amount = big.NewInt(-1)
	if _, err := neg.Digest(); !errors.Is(err, ErrDecode) {
		t.Fatalf("negative amount: %v", err)
	}
}

func validMessage(t testing.TB) (*ExchangeMessage, identity.Signer) {
	t.Helper()
	s := identity.NewKeySigner(testKey(t, "consumer"))
	m := &ExchangeMessage{
		Promise:     Promise{ChainID: big.NewInt(1337), ChannelID: ConsumerChannelID(common.HexToAddress("0xabc")), Amount: big.NewInt(100), Fee: big.NewInt(1), Hashlock: Hashlock([]byte("x"))},
		AgreementID: big.NewInt(9), AgreementTotal: big.NewInt(100), Provider: common.HexToAddress("0x1234"), HermesID: common.HexToAddress("0x5678"), ChainID: big.NewInt(1337),
	}
	if err := m.Sign(s); err != nil {
		t.Fatal(err)
	}
	return m, s
}

func TestExchangeMessageRoundTripAndBinding(t *testing.T) {
	m, s := validMessage(t)
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeExchangeMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	c, err := got.RecoverConsumer()
	if err != nil || c != s.Address() {
		t.Fatalf("consumer %s err %v", c.Hex(), err)
	}
	// Every bound field changes the signer.
	mut := []func(m *ExchangeMessage){
		func(m *ExchangeMessage) { m.AgreementID = big.NewInt(10) },
		func(m *ExchangeMessage) { m.AgreementTotal = big.NewInt(101) },
		func(m *ExchangeMessage) { m.Provider = common.HexToAddress("0x9999") },
		func(m *ExchangeMessage) { m.HermesID = common.HexToAddress("0x9999") },
		func(m *ExchangeMessage) { m.Promise.Amount = big.NewInt(1) },
		func(m *ExchangeMessage) { m.Promise.Hashlock[0] ^= 1 },
	}
	for i, f := range mut {
		cp := *got
		f(&cp)
		if c, err := cp.RecoverConsumer(); err == nil && c == s.Address() {
			t.Fatalf("mutation %d still recovers the consumer", i)
		}
	}
	// A promise signed by someone else inside a consumer-signed message is rejected.
	cp := *got
	other := identity.NewKeySigner(testKey(t, "other"))
	if err := cp.Promise.Sign(other); err != nil {
		t.Fatal(err)
	}
	d, _ := cp.Digest()
	cp.Signature, _ = s.Sign(d[:])
	if _, err := cp.RecoverConsumer(); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("foreign promise signature: %v", err)
	}
}

// signOverWire signs iv with p and returns it as decoded from its JSON,
// and that JSON.
func signOverWire(t *testing.T, iv *Invoice, p identity.Signer) (*Invoice, []byte) {
	t.Helper()
	if err := iv.Sign(p); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(iv)
	got, err := DecodeInvoice(raw)
	if err != nil {
		t.Fatal(err)
	}
	return got, raw
}

func TestInvoiceSignVerify(t *testing.T) {
	p := identity.NewKeySigner(testKey(t, "provider"))
	iv := Invoice{ChainID: big.NewInt(1), AgreementID: big.NewInt(1), AgreementTotal: big.NewInt(5), TransactorFee: big.NewInt(0), Provider: p.Address()}
	if err := iv.Sign(identity.NewKeySigner(testKey(t, "x"))); err == nil {
		t.Fatal("signed invoice for another provider")
	}
	got, _ := signOverWire(t, &iv, p)
	if err := got.Verify(); err != nil {
		t.Fatal(err)
	}
	got.AgreementTotal = big.NewInt(6)
	if err := got.Verify(); err == nil {
		t.Fatal("tampered invoice verified")
	}
}

func promiseJSONWith(t *testing.T, edit func(m map[string]any)) []byte {
	m, _ := validMessage(t)
	raw, _ := json.Marshal(m.Promise)
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	edit(obj)
	out, _ := json.Marshal(obj)
	return out
}

func TestDecodePromiseRejects(t *testing.T) {
	big78 := strings.Repeat("9", 78)
	cases := map[string]struct {
		edit   func(m map[string]any)
		reason string
	}{
		"unknown field":     {func(m map[string]any) { m["extra"] = "1" }, "unknown field"},
		"missing field":     {func(m map[string]any) { delete(m, "fee") }, "missing field \"fee\""},
		"null field":        {func(m map[string]any) { m["fee"] = nil }, "null"},
		"number not string": {func(m map[string]any) { m["amount"] = 5 }, "must be a string"},
		"negative":          {func(m map[string]any) { m["amount"] = "-5" }, "negative"},
		"oversized":         {func(m map[string]any) { m["amount"] = big78 }, "exceeds 2^256-1"},
		"too many digits":   {func(m map[string]any) { m["amount"] = "1" + big78 }, "digits"},
		"leading zero":      {func(m map[string]any) { m["amount"] = "007" }, "leading zeros"},
		"empty number":      {func(m map[string]any) { m["amount"] = "" }, "empty"},
		"hex number":        {func(m map[string]any) { m["amount"] = "0x10" }, "not a decimal"},
		"short hashlock":    {func(m map[string]any) { m["hashlock"] = "0x1234" }, "must be 32 bytes"},
		"no 0x":             {func(m map[string]any) { m["channel_id"] = strings.Repeat("00", 32) }, "must start with 0x"},
		"bad hex":           {func(m map[string]any) { m["channel_id"] = "0x" + strings.Repeat("zz", 32) }, "not hex"},
		"short signature":   {func(m map[string]any) { m["signature"] = "0x" + strings.Repeat("11", 64) }, "must be 65 bytes"},
		"bad v":             {func(m map[string]any) { m["signature"] = "0x" + strings.Repeat("11", 64) + "01" }, "recovery id"},
	}
	for name, c := range cases {
		_, err := DecodePromise(promiseJSONWith(t, c.edit))
		if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%s: err %v, want reason %q", name, err, c.reason)
		}
	}
	good := promiseJSONWith(t, func(map[string]any) {})
	for name, raw := range map[string]string{
		"trailing":  string(good) + "{}",
		"array":     "[]",
		"duplicate": strings.Replace(string(good), `{"amount"`, `{"amount":"1","amount"`, 1),
		"too big":   `{"a":"` + strings.Repeat("x", MaxMessageSize) + `"}`,
	} {
		if _, err := DecodePromise([]byte(raw)); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
	if _, err := DecodePromise(good); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeExchangeMessageRejectsChainMismatch(t *testing.T) {
	m, _ := validMessage(t)
	m.ChainID = big.NewInt(1)
	if _, err := json.Marshal(m); err == nil {
		t.Fatal("marshalled a message whose chain differs from its promise")
	}
	// The wire form with the message's chain id changed (the promise
	// keeps its own): the encoder refuses to write it.
	raw, _ := json.Marshal(exchangeJSON{Promise: reflectPromise(&m.Promise), AgreementID: "1", AgreementTotal: "1",
		Provider: hex0x(m.Provider[:]), HermesID: hex0x(m.HermesID[:]), ChainID: "1", Signature: hex0x(m.Signature)})
	if _, err := DecodeExchangeMessage(raw); !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("chain mismatch: %v", err)
	}
}

// TestInvoiceV2Usage checks that a v2 invoice signs its Usage (changing
// any of it breaks the signature), round-trips, and that v1 and v2 digests
// of the same invoice differ (the tag separates them).
func TestInvoiceV2Usage(t *testing.T) {
	p := identity.NewKeySigner(testKey(t, "provider"))
	iv := Invoice{ChainID: big.NewInt(1), AgreementID: big.NewInt(1), AgreementTotal: big.NewInt(5), TransactorFee: big.NewInt(0), Provider: p.Address(),
		Usage: &Usage{ProposalSeq: 3, ElapsedMs: 1500, Bytes: 4096}}
	got, raw := signOverWire(t, &iv, p)
	if got.Usage == nil || *got.Usage != *iv.Usage {
		t.Fatalf("usage %+v after round trip, want %+v", got.Usage, iv.Usage)
	}
	if err := got.Verify(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(u *Usage){
		"seq": func(u *Usage) { u.ProposalSeq++ }, "elapsed": func(u *Usage) { u.ElapsedMs-- }, "bytes": func(u *Usage) { u.Bytes++ },
	} {
		c := *got
		u := *got.Usage
		edit(&u)
		c.Usage = &u
		if err := c.Verify(); err == nil {
			t.Fatalf("invoice with edited %s verified", name)
		}
	}
	v1 := *got
	v1.Usage = nil
	d1, _ := v1.Digest()
	d2, _ := got.Digest()
	if d1 == d2 {
		t.Fatal("v1 and v2 digests are equal")
	}
	if err := v1.Verify(); err == nil {
		t.Fatal("a v2 signature verified as v1 (usage stripped)")
	}
	for _, bad := range []string{
		strings.Replace(string(raw), `"proposal_seq":"3"`, `"proposal_seq":"0"`, 1),
		strings.Replace(string(raw), `,"bytes":"4096"`, ``, 1),
		strings.Replace(string(raw), `"elapsed_ms":"1500"`, `"elapsed_ms":"18446744073709551616"`, 1),
		strings.Replace(string(raw), `"elapsed_ms":"1500"`, `"elapsed_ms":1500`, 1),
	} {
		if _, err := DecodeInvoice([]byte(bad)); !errors.Is(err, ErrDecode) {
			t.Fatalf("decoded %s: %v", bad, err)
		}
	}
}
