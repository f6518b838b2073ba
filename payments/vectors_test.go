package payments

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity"
)

// vectorsFile is shared with the contract tests (contracts/ reads it).
const vectorsFile = "testdata/vectors.json"

type promiseVector struct {
	Name       string `json:"name"`
	ChainID    string `json:"chain_id"`
	ChannelID  string `json:"channel_id"`
	Amount     string `json:"amount"`
	Fee        string `json:"fee"`
	Hashlock   string `json:"hashlock"`
	Preimage   string `json:"preimage"`
	Digest     string `json:"digest"`
	PrivateKey string `json:"private_key"`
	Signer     string `json:"signer"`
	Signature  string `json:"signature"`
}

type channelVector struct {
	Provider  string `json:"provider"`
	Hermes    string `json:"hermes"`
	ChannelID string `json:"channel_id"`
}

type exchangeVector struct {
	Name          string          `json:"name"`
	Message       json.RawMessage `json:"message"`
	PromiseDigest string          `json:"promise_digest"`
	Digest        string          `json:"digest"`
	PrivateKey    string          `json:"private_key"`
	Signer        string          `json:"signer"`
}

type invoiceVector struct {
	Name       string          `json:"name"`
	Invoice    json.RawMessage `json:"invoice"`
	Digest     string          `json:"digest"`
	PrivateKey string          `json:"private_key"`
}

type vectors struct {
	Comment          string           `json:"comment"`
	Promises         []promiseVector  `json:"promises"`
	ProviderChannels []channelVector  `json:"provider_channel_ids"`
	ExchangeMessages []exchangeVector `json:"exchange_messages"`
	Invoices         []invoiceVector  `json:"invoices"`
}

// testKey derives a deterministic TEST-ONLY private key from a label.
func testKey(t testing.TB, label string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("openmyst test key: " + label)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyHex(k *ecdsa.PrivateKey) string { return "0x" + hex.EncodeToString(crypto.FromECDSA(k)) }

func preimage(label string) []byte {
	return crypto.Keccak256([]byte("openmyst test preimage: " + label))
}

func buildVectors(t testing.TB) vectors {
	consumerKey := testKey(t, "consumer")
	hermesKey := testKey(t, "hermes-operator")
	providerKey := testKey(t, "provider")
	consumer := identity.NewKeySigner(consumerKey)
	operator := identity.NewKeySigner(hermesKey)
	provider := identity.NewKeySigner(providerKey)
	channel := common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	hermesContract := common.HexToAddress("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
	maxU := new(big.Int).Set(math.MaxBig256)

	var v vectors
	v.Comment = "openmyst payment test vectors (docs/protocol.md). Private keys are deterministic TEST-ONLY keys: keccak256(\"openmyst test key: <label>\"). Regenerate with MYST_UPDATE_VECTORS=1 go test ./payments/ -run TestVectors."
	cases := []struct {
		name    string
		chain   int64
		channel [32]byte
		amount  *big.Int
		fee     *big.Int
		pre     string
		key     *ecdsa.PrivateKey
		signer  identity.Signer
	}{
		{"consumer channel, small amount", 1337, ConsumerChannelID(channel), big.NewInt(1000), big.NewInt(0), "a", consumerKey, consumer},
		{"consumer channel, 1 MYST with fee", 1337, ConsumerChannelID(channel), new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil), big.NewInt(12345), "b", consumerKey, consumer},
		{"consumer channel, zero amount, chain 1", 1, ConsumerChannelID(channel), big.NewInt(0), big.NewInt(0), "c", consumerKey, consumer},
		{"provider channel, hermes signs", 1337, ProviderChannelID(provider.Address(), hermesContract), big.NewInt(987654321), big.NewInt(1), "d", hermesKey, operator},
		{"max uint256 amount and fee", 1337, ConsumerChannelID(channel), maxU, maxU, "e", consumerKey, consumer},
	}
	for _, c := range cases {
		pre := preimage(c.pre)
		p := Promise{ChainID: big.NewInt(c.chain), ChannelID: c.channel, Amount: c.amount, Fee: c.fee, Hashlock: Hashlock(pre)}
		if err := p.Sign(c.signer); err != nil {
			t.Fatal(err)
		}
		d, _ := p.Digest()
		v.Promises = append(v.Promises, promiseVector{
			Name: c.name, ChainID: p.ChainID.String(), ChannelID: hex0x(p.ChannelID[:]), Amount: p.Amount.String(), Fee: p.Fee.String(),
			Hashlock: hex0x(p.Hashlock[:]), Preimage: hex0x(pre), Digest: hex0x(d[:]), PrivateKey: keyHex(c.key),
			Signer: c.signer.Address().Hex(), Signature: hex0x(p.Signature),
		})
	}
	v.ProviderChannels = append(v.ProviderChannels, channelVector{
		Provider: provider.Address().Hex(), Hermes: hermesContract.Hex(),
		ChannelID: hex0x(func() []byte { id := ProviderChannelID(provider.Address(), hermesContract); return id[:] }()),
	})

	pre := preimage("x")
	m := ExchangeMessage{
		Promise:     Promise{ChainID: big.NewInt(1337), ChannelID: ConsumerChannelID(channel), Amount: big.NewInt(5000), Fee: big.NewInt(10), Hashlock: Hashlock(pre)},
		AgreementID: big.NewInt(42), AgreementTotal: big.NewInt(5000), Provider: provider.Address(), HermesID: hermesContract, ChainID: big.NewInt(1337),
	}
	if err := m.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	pd, _ := m.Promise.Digest()
	md, _ := m.Digest()
	v.ExchangeMessages = append(v.ExchangeMessages, exchangeVector{Name: "exchange message for agreement 42", Message: raw,
		PromiseDigest: hex0x(pd[:]), Digest: hex0x(md[:]), PrivateKey: keyHex(consumerKey), Signer: consumer.Address().Hex()})

	iv := Invoice{ChainID: big.NewInt(1337), AgreementID: big.NewInt(42), AgreementTotal: big.NewInt(5000), TransactorFee: big.NewInt(10), Hashlock: Hashlock(pre), Provider: provider.Address()}
	if err := iv.Sign(provider); err != nil {
		t.Fatal(err)
	}
	raw, err = json.Marshal(iv)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := iv.Digest()
	v.Invoices = append(v.Invoices, invoiceVector{Name: "invoice for agreement 42", Invoice: raw, Digest: hex0x(id[:]), PrivateKey: keyHex(providerKey)})

	iv2 := iv
	iv2.Usage = &Usage{ProposalSeq: 1764763200000, ElapsedMs: 61500, Bytes: 3 << 30}
	if err := iv2.Sign(provider); err != nil {
		t.Fatal(err)
	}
	if raw, err = json.Marshal(iv2); err != nil {
		t.Fatal(err)
	}
	id, _ = iv2.Digest()
	v.Invoices = append(v.Invoices, invoiceVector{Name: "v2 invoice with usage for agreement 42", Invoice: raw, Digest: hex0x(id[:]), PrivateKey: keyHex(providerKey)})
	return v
}

// TestVectors checks the committed vectors against this implementation and
// independently re-verifies every vector from its own fields.
func TestVectors(t *testing.T) {
	want := buildVectors(t)
	enc, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	enc = append(enc, '\n')
	if os.Getenv("MYST_UPDATE_VECTORS") == "1" {
		if err := os.WriteFile(filepath.FromSlash(vectorsFile), enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(filepath.FromSlash(vectorsFile))
	if err != nil {
		t.Fatal(err)
	}
	var file vectors
	if err := json.Unmarshal(got, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Promises) == 0 || len(file.ExchangeMessages) == 0 || len(file.Invoices) == 0 {
		t.Fatal("vectors file has empty sections")
	}
	for _, pv := range file.Promises {
		raw, _ := json.Marshal(map[string]string{"chain_id": pv.ChainID, "channel_id": pv.ChannelID, "amount": pv.Amount, "fee": pv.Fee, "hashlock": pv.Hashlock, "signature": pv.Signature})
		p, err := DecodePromise(raw)
		if err != nil {
			t.Fatalf("%s: %v", pv.Name, err)
		}
		d, err := p.Digest()
		if err != nil || hex0x(d[:]) != pv.Digest {
			t.Fatalf("%s: digest %x, want %s (%v)", pv.Name, d, pv.Digest, err)
		}
		pre, _ := hex.DecodeString(pv.Preimage[2:])
		if h := Hashlock(pre); hex0x(h[:]) != pv.Hashlock {
			t.Fatalf("%s: hashlock mismatch", pv.Name)
		}
		if err := p.Verify(common.HexToAddress(pv.Signer)); err != nil {
			t.Fatalf("%s: %v", pv.Name, err)
		}
		kb, _ := hex.DecodeString(pv.PrivateKey[2:])
		k, _ := crypto.ToECDSA(kb)
		if crypto.PubkeyToAddress(k.PublicKey) != common.HexToAddress(pv.Signer) {
			t.Fatalf("%s: key does not match signer", pv.Name)
		}
	}
	for _, cv := range file.ProviderChannels {
		id := ProviderChannelID(common.HexToAddress(cv.Provider), common.HexToAddress(cv.Hermes))
		if hex0x(id[:]) != cv.ChannelID {
			t.Fatalf("provider channel id mismatch")
		}
	}
	for _, ev := range file.ExchangeMessages {
		m, err := DecodeExchangeMessage(ev.Message)
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.RecoverConsumer()
		if err != nil || c != common.HexToAddress(ev.Signer) {
			t.Fatalf("%s: consumer %s (%v)", ev.Name, c.Hex(), err)
		}
		d, _ := m.Digest()
		if hex0x(d[:]) != ev.Digest {
			t.Fatalf("%s: digest mismatch", ev.Name)
		}
	}
	for _, iv := range file.Invoices {
		inv, err := DecodeInvoice(iv.Invoice)
		if err != nil {
			t.Fatal(err)
		}
		if err := inv.Verify(); err != nil {
			t.Fatal(err)
		}
		d, _ := inv.Digest()
		if hex0x(d[:]) != iv.Digest {
			t.Fatalf("%s: digest mismatch", iv.Name)
		}
	}
	if string(got) != string(enc) {
		t.Fatalf("%s is stale; regenerate with MYST_UPDATE_VECTORS=1", vectorsFile)
	}
}
