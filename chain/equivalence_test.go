package chain

import (
	"context"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// TestPaymentsVectors checks that the payments package (the one
// implementation of the promise digest, hashlock and channel ids) and the
// contracts compute the digests and signers of the shared vectors
// (payments/testdata/vectors.json). The hashlock is also checked by every
// settlement test: the contracts accept the preimage of payments.Hashlock.
func TestPaymentsVectors(t *testing.T) {
	// The vectors are committed: a missing file fails, never skips.
	data, err := os.ReadFile(filepath.Join("..", "payments", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Promises []struct {
			Name      string         `json:"name"`
			ChainID   string         `json:"chain_id"`
			ChannelID common.Hash    `json:"channel_id"`
			Amount    string         `json:"amount"`
			Fee       string         `json:"fee"`
			Hashlock  common.Hash    `json:"hashlock"`
			Preimage  common.Hash    `json:"preimage"`
			Digest    common.Hash    `json:"digest"`
			Signer    common.Address `json:"signer"`
			Signature hexutil.Bytes  `json:"signature"`
		} `json:"promises"`
		ProviderChannelIDs []struct {
			Provider  common.Address `json:"provider"`
			Hermes    common.Address `json:"hermes"`
			ChannelID common.Hash    `json:"channel_id"`
		} `json:"provider_channel_ids"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Promises) == 0 {
		t.Fatal("no promise vectors")
	}
	e := newEnv(t, hermesOpts{})
	for _, p := range v.Promises {
		chainID, ok1 := new(big.Int).SetString(p.ChainID, 10)
		amount, ok2 := new(big.Int).SetString(p.Amount, 10)
		fee, ok3 := new(big.Int).SetString(p.Fee, 10)
		if !ok1 || !ok2 || !ok3 {
			t.Fatalf("%s: bad numbers", p.Name)
		}
		if payments.Hashlock(p.Preimage[:]) != p.Hashlock {
			t.Errorf("%s: hashlock is not keccak(preimage)", p.Name)
		}
		gp := payments.Promise{ChainID: chainID, ChannelID: p.ChannelID, Amount: amount, Fee: fee, Hashlock: p.Hashlock, Signature: p.Signature}
		if got, err := gp.Digest(); err != nil || common.Hash(got) != p.Digest {
			t.Errorf("%s: Go digest %x, vector %x (%v)", p.Name, got, p.Digest, err)
		}
		if signer, err := gp.RecoverSigner(); err != nil || signer != p.Signer {
			t.Errorf("%s: Go recovers %s, vector signer %s (%v)", p.Name, signer.Hex(), p.Signer.Hex(), err)
		}
		got, err := e.client.registry.PromiseDigest(call(e.ctx), chainID, p.ChannelID, amount, fee, p.Hashlock)
		if err != nil || common.Hash(got) != p.Digest {
			t.Errorf("%s: contract digest %x, vector %x (%v)", p.Name, got, p.Digest, err)
		}
		signer, err := e.client.registry.RecoverSigner(call(e.ctx), p.Digest, p.Signature)
		if err != nil || signer != p.Signer {
			t.Errorf("%s: contract recovers %s, vector signer %s (%v)", p.Name, signer.Hex(), p.Signer.Hex(), err)
		}
	}
	for _, pc := range v.ProviderChannelIDs {
		if got := payments.ProviderChannelID(pc.Provider, pc.Hermes); common.Hash(got) != pc.ChannelID {
			t.Errorf("provider channel id %x, vector %x", got, pc.ChannelID)
		}
	}
}

// TestSignedMessageDigestsMatchContracts checks every other Go digest
// against the contract view functions.
func TestSignedMessageDigestsMatchContracts(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	id := e.client.ChainID()
	a, b, h := common.HexToAddress("0xa1"), common.HexToAddress("0xb2"), e.hermes
	got, err := e.client.registry.RegisterDigest(call(e.ctx), a, h, money.MYST(3), b)
	if want := RegisterDigest(id, e.dep.Registry, a, h, money.MYST(3), b); err != nil || got != want {
		t.Fatalf("register digest: contract %x, Go %x (%v)", got, want, err)
	}
	got, err = e.client.registry.RegisterDeferredDigest(call(e.ctx), a, h, money.MYST(3), b)
	if want := RegisterDeferredDigest(id, e.dep.Registry, a, h, money.MYST(3), b); err != nil || got != want {
		t.Fatalf("deferred register digest: contract %x, Go %x (%v)", got, want, err)
	}
	hb, err := bindings.NewHermes(h, e.backend)
	if err != nil {
		t.Fatal(err)
	}
	got, err = hb.DecreaseStakeDigest(call(e.ctx), a, money.MYST(2), big.NewInt(9), big.NewInt(7))
	if want := DecreaseStakeDigest(id, h, a, money.MYST(2), big.NewInt(9), 7); err != nil || got != want {
		t.Fatalf("decrease stake digest: contract %x, Go %x (%v)", got, want, err)
	}
	ha, err := e.client.registry.HermesAddress(call(e.ctx), e.operator.Address())
	if err != nil || ha != h || HermesAddress(e.dep.Registry, e.dep.HermesImplementation, e.operator.Address()) != h {
		t.Fatalf("hermes address: contract %s, registered %s (%v)", ha.Hex(), h.Hex(), err)
	}
}

// FuzzPromiseDigestMatchesContract: for random promise fields and keys, the
// Go digest equals Registry.promiseDigest and a Go signature recovers on
// chain to the signer.
func FuzzPromiseDigestMatchesContract(f *testing.F) {
	f.Add([]byte{0x05, 0x39}, []byte{1, 2, 3}, []byte{0x0d, 0xe0, 0xb6, 0xb3, 0xa7, 0x64, 0x00, 0x00}, []byte{}, []byte{0xaa}, []byte("key one"))
	f.Add([]byte{1}, make([]byte, 32), []byte{}, []byte{}, []byte{}, []byte("key two"))
	f.Add(bytesOf(0xff, 32), bytesOf(0xff, 32), bytesOf(0xff, 32), bytesOf(0xff, 32), bytesOf(0xff, 32), []byte{0})
	e := newEnv(f, hermesOpts{})
	f.Fuzz(func(t *testing.T, chainID, channelID, amount, fee, hashlock, keySeed []byte) {
		c, am, fe := word(chainID), word(amount), word(fee)
		var cid, lock [32]byte
		copy(cid[:], channelID)
		copy(lock[:], hashlock)
		p := payments.Promise{ChainID: c, ChannelID: cid, Amount: am, Fee: fe, Hashlock: lock}
		want, err := p.Digest()
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.client.registry.PromiseDigest(call(context.Background()), c, cid, am, fe, lock)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("contract digest %x, Go %x", got, want)
		}
		key, err := crypto.ToECDSA(crypto.Keccak256(keySeed))
		if err != nil {
			t.Skip("seed is not a valid key")
		}
		s := identity.NewKeySigner(key)
		if err := p.Sign(s); err != nil {
			t.Fatal(err)
		}
		signer, err := e.client.registry.RecoverSigner(call(context.Background()), want, p.Signature)
		if err != nil {
			t.Fatal(err)
		}
		if signer != s.Address() {
			t.Fatalf("contract recovers %s, signer %s", signer.Hex(), s.Address().Hex())
		}
		if err := identity.Verify(s.Address(), want[:], p.Signature); err != nil {
			t.Fatal(err)
		}
	})
}

func word(b []byte) *big.Int {
	if len(b) > 32 {
		b = b[:32]
	}
	return new(big.Int).SetBytes(b)
}

func bytesOf(v byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v
	}
	return b
}

// FuzzIdentityDigestsMatchContracts: for random fields, every action-tagged
// digest computed in Go equals the contract's view function.
func FuzzIdentityDigestsMatchContracts(f *testing.F) {
	f.Add([]byte{1}, []byte{2}, []byte{3}, []byte{4}, uint64(1))
	f.Add(bytesOf(0xff, 20), bytesOf(0xff, 20), bytesOf(0xff, 32), bytesOf(0xff, 32), uint64(1<<63))
	f.Add([]byte{}, []byte{}, []byte{}, []byte{}, uint64(0))
	e := newEnv(f, hermesOpts{})
	_, ch := e.registered(nil)
	cb, err := bindings.NewConsumerChannel(ch, e.backend)
	if err != nil {
		f.Fatal(err)
	}
	hb, err := bindings.NewHermes(e.hermes, e.backend)
	if err != nil {
		f.Fatal(err)
	}
	// The consumer channel id: payments' implementation is the only one.
	if cid, err := cb.ChannelId(call(e.ctx)); err != nil || cid != payments.ConsumerChannelID(ch) {
		f.Fatalf("consumer channel id: contract %x, payments %x (%v)", cid, payments.ConsumerChannelID(ch), err)
	}
	id := e.client.ChainID()
	reg := e.dep.Registry
	f.Fuzz(func(t *testing.T, a1, a2, n1, n2 []byte, nonce uint64) {
		x, y := common.BytesToAddress(a1), common.BytesToAddress(a2)
		u, v := word(n1), word(n2)
		o := call(context.Background())
		check := func(name string, got [32]byte, err error, want [32]byte) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got != want {
				t.Fatalf("%s: contract %x, Go %x", name, got, want)
			}
		}
		bn := new(big.Int).SetUint64(nonce)
		got, err := e.client.registry.RegisterDigest(o, x, y, u, x)
		check("register", got, err, RegisterDigest(id, reg, x, y, u, x))
		got, err = e.client.registry.RegisterDeferredDigest(o, x, y, u, x)
		check("register deferred", got, err, RegisterDeferredDigest(id, reg, x, y, u, x))
		got, err = e.client.registry.OpenChannelDigest(o, x, y, u)
		check("open channel", got, err, OpenChannelDigest(id, reg, x, y, u))
		got, err = e.client.registry.BeneficiaryDigest(o, x, y, x, v, bn)
		check("beneficiary", got, err, BeneficiaryDigest(id, reg, x, y, x, v, nonce))
		got, err = cb.WithdrawDigest(o, u, y, v, bn)
		check("withdraw", got, err, WithdrawDigest(id, ch, u, y, v, nonce))
		got, err = cb.RequestExitDigest(o, u, bn)
		check("request exit", got, err, RequestExitDigest(id, ch, u, nonce))
		got, err = hb.DecreaseStakeDigest(o, x, u, v, bn)
		check("decrease stake", got, err, DecreaseStakeDigest(id, e.hermes, x, u, v, nonce))
		cid, err := hb.ChannelId(o, x)
		check("provider channel id", cid, err, payments.ProviderChannelID(x, e.hermes))
		ca, err := e.client.registry.ChannelAddress(o, x, y)
		if err != nil || ca != ChannelAddress(reg, e.dep.ChannelImplementation, x, y) {
			t.Fatalf("channel address: contract %s (%v)", ca.Hex(), err)
		}
	})
}
