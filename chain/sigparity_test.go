package chain

import (
	"context"
	"crypto/rand"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/identity/sigtest"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// signatureParity checks one (digest, signature) pair with the Go verifier
// (identity.Recover) and with the deployed contracts' Sig.recover (through
// Registry.recoverSigner, which Sig.check builds on: check reverts with
// BadSignature when recover returns zero or another signer). Go must
// refuse exactly what the contract refuses and otherwise recover the same
// signer.
func signatureParity(t testing.TB, e *env, name string, d [32]byte, sig []byte) (common.Address, bool) {
	t.Helper()
	onChain, err := e.client.registry.RecoverSigner(call(context.Background()), d, sig)
	if err != nil {
		t.Fatalf("%s: contract call: %v", name, err)
	}
	got, goErr := identity.Recover(d[:], sig)
	switch {
	case goErr != nil && onChain != (common.Address{}):
		t.Fatalf("%s: Go refuses %x (%v), the contract accepts it as %s", name, sig, goErr, onChain.Hex())
	case goErr == nil && onChain == (common.Address{}):
		t.Fatalf("%s: Go accepts %x as %s, the contract refuses it", name, sig, got.Hex())
	case goErr == nil && got != onChain:
		t.Fatalf("%s: Go recovers %s, the contract %s (%x)", name, got.Hex(), onChain.Hex(), sig)
	case goErr != nil && !errors.Is(goErr, identity.ErrBadSignature):
		t.Fatalf("%s: Go error %v does not wrap ErrBadSignature", name, goErr)
	}
	return got, goErr == nil
}

// TestSignatureParity runs every malleation of real signatures, and random
// signatures, through the Go verifier and the contracts.
func TestSignatureParity(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	args := [][]byte{nil, {0}, {1}, {26}, {27}, {28}, {29}, {64}, {66}, {0xff}, []byte("some random bytes"), make([]byte, 65)}
	accepted, refused := 0, 0
	for k := 0; k < 4; k++ {
		s := keytest.Signer(t)
		var d [32]byte
		if _, err := rand.Read(d[:]); err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(d[:])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sigtest.Mutations {
			for _, arg := range args {
				got, ok := signatureParity(t, e, m.Name, d, m.Apply(sig, arg))
				if ok {
					accepted++
				} else {
					refused++
				}
				if m.Name == "unchanged" && got != s.Address() {
					t.Fatalf("the signer's own signature recovers to %s (ok %v)", got.Hex(), ok)
				}
			}
		}
		// Random r and s with a valid v: about half of the r values are
		// not the x coordinate of a curve point.
		for i := 0; i < 64; i++ {
			rs := make([]byte, 65)
			if _, err := rand.Read(rs[:64]); err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				rs[32] &= 0x7f // mostly low s
			}
			rs[64] = 27 + byte(i%2)
			if _, ok := signatureParity(t, e, "random r, s", d, rs); ok {
				accepted++
			} else {
				refused++
			}
		}
	}
	// Both verdicts must have been exercised for the comparison to mean anything.
	if accepted == 0 || refused == 0 {
		t.Fatalf("accepted %d, refused %d: the cases exercise only one verdict", accepted, refused)
	}
	t.Logf("%d signatures accepted and %d refused by both", accepted, refused)
}

// FuzzSignatureParity: for a random digest, key, malleation and argument,
// the Go verifier and the contracts agree. The seed corpus covers every
// malleation and runs in the normal test run.
func FuzzSignatureParity(f *testing.F) {
	for i := range sigtest.Mutations {
		f.Add([]byte("digest"), []byte("key"), uint8(i), []byte{28})
		f.Add(bytesOf(0xff, 32), []byte{byte(i)}, uint8(i), bytesOf(0xff, 70))
	}
	e := newEnv(f, hermesOpts{})
	f.Fuzz(func(t *testing.T, digest, keySeed []byte, mutation uint8, arg []byte) {
		var d [32]byte
		copy(d[:], digest)
		key, err := crypto.ToECDSA(crypto.Keccak256(keySeed))
		if err != nil {
			t.Skip("seed is not a valid key")
		}
		sig, err := identity.NewKeySigner(key).Sign(d[:])
		if err != nil {
			t.Fatal(err)
		}
		m := sigtest.Mutations[int(mutation)%len(sigtest.Mutations)]
		signatureParity(t, e, m.Name, d, m.Apply(sig, arg))
	})
}

// TestMalleatedPromisesRefusedByGoAndChain: consumer promises whose
// signature is malleated are refused by the Go verifier exactly when the
// consumer channel's settlePromise (called through the binding, without
// the client's own checks) reverts with BadSignature; the client's
// SettleConsumerPromise refuses them before sending anything; the
// unchanged promise settles.
func TestMalleatedPromisesRefusedByGoAndChain(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	consumer, ch := e.registered(money.MYST(10))
	pre, lock := secret(3)
	p := signedPromise(t, consumer, e.client.ChainID(), payments.ConsumerChannelID(ch), money.MYST(2), new(big.Int), lock)
	d, err := p.Digest()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := bindings.NewConsumerChannel(ch, e.backend)
	if err != nil {
		t.Fatal(err)
	}
	// "unchanged" last: it settles.
	muts := append(append([]sigtest.Mutation(nil), sigtest.Mutations[1:]...), sigtest.Mutations[0])
	for _, m := range muts {
		q := p
		q.Signature = m.Apply(p.Signature, []byte{29})
		goErr := identity.Verify(consumer.Address(), d[:], q.Signature)
		if goErr != nil {
			if _, err := e.client.SettleConsumerPromise(e.ctx, ch, q, pre); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("%s: client settle = %v, want ErrBadSignature before sending", m.Name, err)
			}
		}
		_, chainErr := e.client.send(e.ctx, "settle "+m.Name, func(o *bind.TransactOpts) (*types.Transaction, error) {
			return cb.SettlePromise(o, q.Amount, q.Fee, q.Hashlock, pre, q.Signature)
		})
		if (goErr == nil) != (chainErr == nil) {
			t.Fatalf("%s: Go says %v, settlePromise says %v", m.Name, goErr, chainErr)
		}
		if chainErr != nil && !errors.Is(chainErr, ErrBadSignature) {
			t.Fatalf("%s: settlePromise error %v, want ErrBadSignature", m.Name, chainErr)
		}
	}
	wantBalance(t, e, ch, money.MYST(8), "channel after the one valid promise")
}
