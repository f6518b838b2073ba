package payments

import (
	"bytes"
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	gmath "github.com/ethereum/go-ethereum/common/math"

	"github.com/openmyst/openmyst/identity"
)

// The reflection-based wire forms MarshalJSON produced before it appended
// the bytes itself; the hand-built encoding must match them byte for byte.
type promiseJSON struct {
	ChainID   string `json:"chain_id"`
	ChannelID string `json:"channel_id"`
	Amount    string `json:"amount"`
	Fee       string `json:"fee"`
	Hashlock  string `json:"hashlock"`
	Signature string `json:"signature"`
}

type exchangeJSON struct {
	Promise        promiseJSON `json:"promise"`
	AgreementID    string      `json:"agreement_id"`
	AgreementTotal string      `json:"agreement_total"`
	Provider       string      `json:"provider"`
	HermesID       string      `json:"hermes_id"`
	ChainID        string      `json:"chain_id"`
	Signature      string      `json:"signature"`
}

func reflectPromise(p *Promise) promiseJSON {
	return promiseJSON{ChainID: decString(p.ChainID), ChannelID: hex0x(p.ChannelID[:]), Amount: decString(p.Amount),
		Fee: decString(p.Fee), Hashlock: hex0x(p.Hashlock[:]), Signature: hex0x(p.Signature)}
}

func TestMarshalJSONMatchesReflection(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bytesN := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	num := func() *big.Int {
		switch rng.IntN(4) {
		case 0:
			return new(big.Int)
		case 1:
			return new(big.Int).Set(gmath.MaxBig256)
		default:
			return new(big.Int).SetBytes(bytesN(rng.IntN(33)))
		}
	}
	for i := 0; i < 300; i++ {
		chain := num()
		m := ExchangeMessage{
			Promise:     Promise{ChainID: chain, Amount: num(), Fee: num(), Signature: bytesN(rng.IntN(70))},
			AgreementID: num(), AgreementTotal: num(), ChainID: chain,
			Provider: common.BytesToAddress(bytesN(20)), HermesID: common.BytesToAddress(bytesN(20)), Signature: bytesN(rng.IntN(70)),
		}
		copy(m.Promise.ChannelID[:], bytesN(32))
		copy(m.Promise.Hashlock[:], bytesN(32))
		want, err := json.Marshal(reflectPromise(&m.Promise))
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Promise.MarshalJSON()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("promise %d: %v\n got %s\nwant %s", i, err, got, want)
		}
		want, err = json.Marshal(exchangeJSON{Promise: reflectPromise(&m.Promise), AgreementID: decString(m.AgreementID),
			AgreementTotal: decString(m.AgreementTotal), Provider: hex0x(m.Provider[:]), HermesID: hex0x(m.HermesID[:]),
			ChainID: decString(m.ChainID), Signature: hex0x(m.Signature)})
		if err != nil {
			t.Fatal(err)
		}
		got, err = m.MarshalJSON()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("exchange %d: %v\n got %s\nwant %s", i, err, got, want)
		}
	}
}

func TestRecoverConsumerDigest(t *testing.T) {
	m, s := validMessage(t)
	c, d, err := m.RecoverConsumerDigest()
	want, _ := m.Digest()
	if err != nil || c != s.Address() || d != want {
		t.Fatalf("got %s %x %v, want %s %x", c.Hex(), d, err, s.Address().Hex(), want)
	}
	other, _ := validMessage(t)
	other.Promise.Amount = big.NewInt(101) // the promise's signature no longer matches
	if err := other.Sign(identity.NewKeySigner(testKey(t, "other"))); err != nil {
		t.Fatal(err)
	}
	m.Promise = other.Promise // signed by another key than the message
	if _, _, err := m.RecoverConsumerDigest(); err == nil {
		t.Fatal("promise signed by another identity accepted")
	}
}

// FuzzRawString: the plain-string shortcut returns what json.Unmarshal
// returns, and errs exactly when it does.
func FuzzRawString(f *testing.F) {
	for _, s := range []string{`"0x12ab"`, `"123"`, `""`, `"a\"b"`, `"\u0041"`, "\"\xff\"", `"a`, `"`, `12`, `"a"b"`, "\"\t\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := rawString("f", raw)
		var want string
		werr := json.Unmarshal(raw, &want)
		if len(raw) == 0 || raw[0] != '"' {
			if err == nil {
				t.Fatalf("%q: accepted a non-string", raw)
			}
			return
		}
		if (err == nil) != (werr == nil) || got != want {
			t.Fatalf("%q: got %q, %v; json.Unmarshal %q, %v", raw, got, err, want, werr)
		}
	})
}
