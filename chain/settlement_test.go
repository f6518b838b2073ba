package chain

import (
	"crypto/ecdsa"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/identity/sigtest"
	"github.com/openmyst/openmyst/payments"
)

func sampleSettlement(t testing.TB, kind string) Settlement {
	t.Helper()
	key, err := crypto.ToECDSA(crypto.Keccak256([]byte("settlement test key")))
	if err != nil {
		t.Fatal(err)
	}
	pre, lock := secret(4)
	s := Settlement{Kind: kind, ChainID: 1337, Contract: common.HexToAddress("0xc0"), Preimage: pre}
	s.Promise = payments.Promise{ChainID: big.NewInt(1337), Amount: big.NewInt(1000), Fee: big.NewInt(10), Hashlock: lock}
	if kind == KindProvider {
		s.Provider = common.HexToAddress("0x01")
		s.Promise.ChannelID = payments.ProviderChannelID(s.Provider, s.Contract)
	} else {
		s.Promise.ChannelID = payments.ConsumerChannelID(s.Contract)
	}
	if err := s.Promise.Sign(identity.NewKeySigner(key)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSettlementRoundTrip(t *testing.T) {
	for _, kind := range []string{KindConsumer, KindProvider} {
		s := sampleSettlement(t, kind)
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSettlement(data)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if got.Promise.Amount.Cmp(s.Promise.Amount) != 0 || got.Promise.ChannelID != s.Promise.ChannelID || got.Preimage != s.Preimage || got.Provider != s.Provider {
			t.Fatalf("%s: round trip %+v, want %+v", kind, got, s)
		}
		signer, err := got.Signer()
		if err != nil || signer != crypto.PubkeyToAddress(mustSettlementKey(t).PublicKey) {
			t.Fatalf("signer %s (%v)", signer.Hex(), err)
		}
	}
}

func mustSettlementKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("settlement test key")))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestDecodeSettlementRejects(t *testing.T) {
	good, _ := json.Marshal(sampleSettlement(t, KindConsumer))
	prov, _ := json.Marshal(sampleSettlement(t, KindProvider))
	edit := func(src []byte, f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(src, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	for name, bad := range map[string][]byte{
		"unknown field":        edit(good, func(m map[string]any) { m["x"] = 1 }),
		"missing preimage":     edit(good, func(m map[string]any) { delete(m, "preimage") }),
		"bad kind":             edit(good, func(m map[string]any) { m["kind"] = "hermes" }),
		"zero chain":           edit(good, func(m map[string]any) { m["chainId"] = 0 }),
		"leading zero amount":  edit(good, func(m map[string]any) { m["amount"] = "01000" }),
		"negative amount":      edit(good, func(m map[string]any) { m["amount"] = "-1" }),
		"hex amount":           edit(good, func(m map[string]any) { m["amount"] = "0x10" }),
		"amount above uint256": edit(good, func(m map[string]any) { m["amount"] = strings.Repeat("9", 78) }),
		"fee above amount":     edit(good, func(m map[string]any) { m["fee"] = "1001" }),
		"wrong preimage":       edit(good, func(m map[string]any) { m["preimage"] = common.Hash{1}.Hex() }),
		"channel mismatch":     edit(good, func(m map[string]any) { m["contract"] = common.HexToAddress("0xc1").Hex() }),
		"consumer w/ provider": edit(good, func(m map[string]any) { m["provider"] = common.HexToAddress("0x1").Hex() }),
		"short signature":      edit(good, func(m map[string]any) { m["signature"] = "0x0102" }),
		"high-s signature": edit(good, func(m map[string]any) {
			m["signature"] = hexutil.Encode(sigtest.HighS(common.FromHex(m["signature"].(string))))
		}),
		"v = 1 signature": edit(good, func(m map[string]any) {
			sig := common.FromHex(m["signature"].(string))
			sig[64] = 1
			m["signature"] = hexutil.Encode(sig)
		}),
		"provider zero":    edit(prov, func(m map[string]any) { m["provider"] = common.Address{}.Hex() }),
		"provider channel": edit(prov, func(m map[string]any) { m["provider"] = common.HexToAddress("0x2").Hex() }),
		"trailing":         append(append([]byte{}, good...), []byte(" {}")...),
	} {
		if _, err := DecodeSettlement(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeSettlement(f *testing.F) {
	good, _ := json.Marshal(sampleSettlement(f, KindConsumer))
	prov, _ := json.Marshal(sampleSettlement(f, KindProvider))
	f.Add(good)
	f.Add(prov)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSettlement(data)
		if err != nil {
			return
		}
		if err := s.check(); err != nil {
			t.Fatalf("decoded an inconsistent settlement: %v", err)
		}
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeSettlement(again); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
	})
}
