// Package sigtest builds malformed and malleated signatures for tests: the
// cases the contracts refuse (contracts/src/Sig.sol) and that the Go
// verifier (identity.Recover) must refuse too. Tests only; no production
// code imports it.
package sigtest

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
)

// N is the secp256k1 group order.
var N = crypto.S256().Params().N

// HalfN is N / 2, the largest s the contracts accept.
var HalfN = new(big.Int).Rsh(N, 1)

// HighS returns the malleated twin of a 65-byte r || s || v signature:
// s' = N - s and v flipped between 27 and 28. It recovers to the same
// signer over the same message, and ecrecover accepts it, but its s is in
// the upper half of the curve order, so Sig.sol refuses it.
func HighS(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	s := new(big.Int).SetBytes(sig[32:64])
	new(big.Int).Sub(N, s).FillBytes(out[32:64])
	out[64] = flipV(out[64])
	return out
}

// flipV swaps 27 and 28 (and 0 and 1); other values are left alone.
func flipV(v byte) byte {
	switch v {
	case 27, 28:
		return 55 - v
	case 0, 1:
		return 1 - v
	}
	return v
}

// Mutation is one way of damaging a valid 65-byte signature.
type Mutation struct {
	// Name says what it does.
	Name string
	// Apply returns a damaged copy of sig; arg is extra fuzz input some
	// mutations use (random bytes, a value for v, a length).
	Apply func(sig, arg []byte) []byte
}

func setWord(sig []byte, off int, v *big.Int) []byte {
	out := append([]byte(nil), sig...)
	v.FillBytes(out[off : off+32])
	return out
}

func argByte(arg []byte) byte {
	if len(arg) == 0 {
		return 0
	}
	return arg[0]
}

// Mutations lists every damage the differential tests apply. Mutations[0]
// leaves the signature as it is.
var Mutations = []Mutation{
	{"unchanged", func(sig, _ []byte) []byte { return append([]byte(nil), sig...) }},
	{"high s (N-s, v flipped)", func(sig, _ []byte) []byte { return HighS(sig) }},
	{"high s, v kept", func(sig, _ []byte) []byte {
		out := HighS(sig)
		out[64] = sig[64]
		return out
	}},
	{"v flipped", func(sig, _ []byte) []byte {
		out := append([]byte(nil), sig...)
		out[64] = flipV(out[64])
		return out
	}},
	{"v = 0/1 (raw recovery id)", func(sig, _ []byte) []byte {
		out := append([]byte(nil), sig...)
		out[64] -= 27
		return out
	}},
	{"v = arg", func(sig, arg []byte) []byte {
		out := append([]byte(nil), sig...)
		out[64] = argByte(arg)
		return out
	}},
	{"length = arg", func(sig, arg []byte) []byte {
		n := int(argByte(arg)) % 130
		out := make([]byte, n)
		copy(out, sig)
		return out
	}},
	{"one byte short", func(sig, _ []byte) []byte { return append([]byte(nil), sig[:len(sig)-1]...) }},
	{"one byte long", func(sig, _ []byte) []byte { return append(append([]byte(nil), sig...), 0) }},
	{"r = 0", func(sig, _ []byte) []byte { return setWord(sig, 0, new(big.Int)) }},
	{"s = 0", func(sig, _ []byte) []byte { return setWord(sig, 32, new(big.Int)) }},
	{"r = N", func(sig, _ []byte) []byte { return setWord(sig, 0, N) }},
	{"s = N", func(sig, _ []byte) []byte { return setWord(sig, 32, N) }},
	{"r = r + N (same point mod N)", func(sig, _ []byte) []byte {
		r := new(big.Int).Add(new(big.Int).SetBytes(sig[:32]), N)
		if r.BitLen() > 256 {
			r = new(big.Int).Set(math.MaxBig256)
		}
		return setWord(sig, 0, r)
	}},
	{"s = s + N", func(sig, _ []byte) []byte {
		s := new(big.Int).Add(new(big.Int).SetBytes(sig[32:64]), N)
		if s.BitLen() > 256 {
			s = new(big.Int).Set(math.MaxBig256)
		}
		return setWord(sig, 32, s)
	}},
	{"s = N/2", func(sig, _ []byte) []byte { return setWord(sig, 32, HalfN) }},
	{"s = N/2 + 1", func(sig, _ []byte) []byte { return setWord(sig, 32, new(big.Int).Add(HalfN, big.NewInt(1))) }},
	{"r = 2^256-1", func(sig, _ []byte) []byte {
		return setWord(sig, 0, new(big.Int).Set(math.MaxBig256))
	}},
	{"r = arg (often not a curve x)", func(sig, arg []byte) []byte {
		return setWord(sig, 0, new(big.Int).SetBytes(crypto.Keccak256(arg)))
	}},
	{"s = arg", func(sig, arg []byte) []byte {
		return setWord(sig, 32, new(big.Int).SetBytes(crypto.Keccak256(arg)))
	}},
	{"random bytes = arg", func(_, arg []byte) []byte { return append([]byte(nil), arg...) }},
	{"bit flip at arg", func(sig, arg []byte) []byte {
		out := append([]byte(nil), sig...)
		i := int(argByte(arg)) % (len(out) * 8)
		out[i/8] ^= 1 << (i % 8)
		return out
	}},
}
