package identity

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/identity/sigtest"
)

// laxRecover is signature recovery as go-ethereum does it for any s (and
// as identity.Recover did before it followed the contracts): the baseline
// the strict rules are measured against.
func laxRecover(message, sig []byte) (common.Address, error) {
	if len(sig) != SignatureLength || (sig[64] != 27 && sig[64] != 28) {
		return common.Address{}, errors.New("lax: bad length or v")
	}
	norm := append([]byte(nil), sig...)
	norm[64] -= 27
	pub, err := crypto.SigToPub(accounts.TextHash(message), norm)
	if err != nil {
		return common.Address{}, err
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// contractRules is Sig.sol + the ecrecover precompile's range checks,
// written with big integers, as a model for CheckSignature.
func contractRules(sig []byte) bool {
	if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		return false
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	return r.Sign() > 0 && r.Cmp(sigtest.N) < 0 && s.Sign() > 0 && s.Cmp(sigtest.HalfN) <= 0
}

func TestCurveConstantsMatchSecp256k1(t *testing.T) {
	if new(big.Int).SetBytes(curveN[:]).Cmp(sigtest.N) != 0 {
		t.Fatalf("curveN %x is not the secp256k1 order", curveN)
	}
	if new(big.Int).SetBytes(halfN[:]).Cmp(sigtest.HalfN) != 0 {
		t.Fatalf("halfN %x is not N/2", halfN)
	}
	// contracts/src/Sig.sol HALF_N.
	if h := common.HexToHash("0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"); h != common.Hash(halfN) {
		t.Fatalf("halfN %x differs from Sig.sol's HALF_N %x", halfN, h)
	}
}

// TestRecoverRefusesHighS: the malleated twin of a valid signature recovers
// to the same signer with go-ethereum's plain recovery, and the contracts
// refuse it; Recover and Verify must refuse it too.
func TestRecoverRefusesHighS(t *testing.T) {
	s := NewKeySigner(mustKey(t))
	msg := crypto.Keccak256([]byte("promise digest"))
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	twin := sigtest.HighS(sig)
	if got, err := laxRecover(msg, twin); err != nil || got != s.Address() {
		t.Fatalf("the high-s twin should recover to the signer with plain ecrecover: %s, %v", got.Hex(), err)
	}
	if _, err := Recover(msg, twin); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "upper half") {
		t.Fatalf("Recover(high s) = %v, want ErrBadSignature (upper half)", err)
	}
	if err := Verify(s.Address(), msg, twin); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify(high s) = %v, want ErrBadSignature", err)
	}
	if err := Verify(s.Address(), msg, sig); err != nil {
		t.Fatalf("the original low-s signature: %v", err)
	}
}

// TestCheckSignatureFollowsContractRules applies every mutation to real
// signatures and compares CheckSignature with the big-integer model of
// Sig.sol, and Recover with plain recovery where the model accepts.
func TestCheckSignatureFollowsContractRules(t *testing.T) {
	for k := 0; k < 8; k++ {
		s := NewKeySigner(mustKey(t))
		msg := crypto.Keccak256([]byte{byte(k)})
		sig, err := s.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sigtest.Mutations {
			for _, arg := range [][]byte{nil, {0}, {1}, {27}, {28}, {29}, {64}, {65}, {66}, {0xff}, bytes.Repeat([]byte{0xff}, 65)} {
				checkAgainstModel(t, m.Name, msg, m.Apply(sig, arg))
			}
		}
	}
}

func checkAgainstModel(t *testing.T, name string, msg, sig []byte) {
	t.Helper()
	want := contractRules(sig)
	if err := CheckSignature(sig); (err == nil) != want {
		t.Fatalf("%s: CheckSignature(%x) = %v, contract rules accept: %v", name, sig, err, want)
	} else if err != nil && !errors.Is(err, ErrBadSignature) {
		t.Fatalf("%s: error %v does not wrap ErrBadSignature", name, err)
	}
	got, err := Recover(msg, sig)
	if !want {
		if err == nil {
			t.Fatalf("%s: Recover accepted %x (signer %s)", name, sig, got.Hex())
		}
		return
	}
	lax, laxErr := laxRecover(msg, sig)
	if (err == nil) != (laxErr == nil) || got != lax {
		t.Fatalf("%s: Recover = %s, %v; plain recovery = %s, %v", name, got.Hex(), err, lax.Hex(), laxErr)
	}
}

// FuzzRecover: Recover accepts exactly the signatures the contract rules
// accept and that recover at all, and then agrees with plain recovery.
func FuzzRecover(f *testing.F) {
	key, err := crypto.ToECDSA(crypto.Keccak256([]byte("fuzz key")))
	if err != nil {
		f.Fatal(err)
	}
	s := NewKeySigner(key)
	msg := crypto.Keccak256([]byte("fuzz message"))
	sig, err := s.Sign(msg)
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range sigtest.Mutations {
		f.Add(msg, m.Apply(sig, []byte{28}))
	}
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, msg, sig []byte) {
		checkAgainstModel(t, "fuzz", msg, sig)
	})
}

// TestKeySignerProducesLowS: every signature the signer makes passes
// CheckSignature and recovers to the signer.
func TestKeySignerProducesLowS(t *testing.T) {
	s := NewKeySigner(mustKey(t))
	for i := 0; i < 300; i++ {
		msg := crypto.Keccak256(big.NewInt(int64(i)).Bytes())
		sig, err := s.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if new(big.Int).SetBytes(sig[32:64]).Cmp(sigtest.HalfN) > 0 {
			t.Fatalf("signature %d has a high s: %x", i, sig)
		}
		if err := Verify(s.Address(), msg, sig); err != nil {
			t.Fatalf("signature %d: %v", i, err)
		}
	}
}

// TestFinishSignatureRefusesHighS: the signer's last check refuses a
// signature the contracts would refuse, should the library ever produce one.
func TestFinishSignatureRefusesHighS(t *testing.T) {
	key := mustKey(t)
	msg := accounts.TextHash([]byte("x"))
	raw, err := crypto.Sign(msg, key)
	if err != nil {
		t.Fatal(err)
	}
	high := sigtest.HighS(append(raw[:64:64], raw[64]+27))
	high[64] -= 27 // back to a raw recovery id, as crypto.Sign returns it
	if _, err := finishSignature(high, common.Address{}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("finishSignature(high s) = %v, want ErrBadSignature", err)
	}
	if sig, err := finishSignature(raw, common.Address{}); err != nil || sig[64] < 27 {
		t.Fatalf("finishSignature(low s) = %x, %v", sig, err)
	}
}

// BenchmarkRecover compares the strict verifier with plain go-ethereum
// recovery (the previous implementation) in the same run.
func BenchmarkRecover(b *testing.B) {
	key, err := crypto.ToECDSA(crypto.Keccak256([]byte("bench key")))
	if err != nil {
		b.Fatal(err)
	}
	msg := crypto.Keccak256([]byte("bench"))
	sig, err := NewKeySigner(key).Sign(msg)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("lax-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := laxRecover(msg, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Recover(msg, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Interleaved, so machine noise hits both alike: the ratio of the
	// strict verifier's time to the baseline's, per call pair.
	b.Run("strict-vs-lax-interleaved", func(b *testing.B) {
		var lax, strict time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := laxRecover(msg, sig); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := Recover(msg, sig); err != nil {
				b.Fatal(err)
			}
			lax += t1.Sub(t0)
			strict += time.Since(t1)
		}
		b.ReportMetric(float64(strict)/float64(lax), "strict/lax")
	})
	high := sigtest.HighS(sig)
	b.Run("strict-reject-high-s", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Recover(msg, high); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestVerifyHex: a 0x-hex signature by the address verifies; one by
// another key, and text that is no 0x-hex, are refused.
func TestVerifyHex(t *testing.T) {
	s, other := NewKeySigner(mustKey(t)), NewKeySigner(mustKey(t))
	sig, err := s.Sign([]byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyHex(s.Address(), []byte("hi"), hexutil.Encode(sig)); err != nil {
		t.Fatal(err)
	}
	if err := VerifyHex(other.Address(), []byte("hi"), hexutil.Encode(sig)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("another address: %v", err)
	}
	if err := VerifyHex(s.Address(), []byte("hi"), "abcd"); err == nil || !strings.Contains(err.Error(), "0x-prefixed hex") {
		t.Fatalf("no 0x: %v", err)
	}
}

// testRecord is a Record whose fields are valid unless bad is set.
type testRecord struct {
	body string
	bad  bool
}

func (r *testRecord) Validate() error {
	if r.bad {
		return errors.New("test record: bad field")
	}
	return nil
}

func (r *testRecord) Digest() ([32]byte, error) { return crypto.Keccak256Hash([]byte(r.body)), nil }

func TestSignRecordAndVerifyRecord(t *testing.T) {
	key, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	s, o := NewKeySigner(key), NewKeySigner(other)
	r := &testRecord{body: "hello"}
	if _, err := SignRecord(r, s.Address(), o); err == nil || !strings.Contains(err.Error(), "is not") {
		t.Fatalf("SignRecord by another identity: %v, want a signer mismatch", err)
	}
	if _, err := SignRecord(&testRecord{bad: true}, s.Address(), s); err == nil || err.Error() != "test record: bad field" {
		t.Fatalf("SignRecord of an invalid record: %v, want its Validate error as it is", err)
	}
	sig, err := SignRecord(r, s.Address(), s)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyRecord(r, s.Address(), sig); err != nil {
		t.Fatalf("VerifyRecord of a good signature: %v", err)
	}
	if err := VerifyRecord(r, o.Address(), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("VerifyRecord against another identity: %v, want ErrBadSignature", err)
	}
	if err := VerifyRecord(&testRecord{body: "changed"}, s.Address(), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("VerifyRecord of a changed record: %v, want ErrBadSignature", err)
	}
	if err := VerifyRecord(&testRecord{body: "hello", bad: true}, s.Address(), sig); err == nil || errors.Is(err, ErrBadSignature) {
		t.Fatalf("VerifyRecord of an invalid record: %v, want its Validate error", err)
	}
}
