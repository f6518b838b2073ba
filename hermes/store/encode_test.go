package store

import (
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
)

// TestEncodingsMatchTheirDefinitions keeps the allocation-lean encoders
// byte-identical to the forms stored since schema 1 (rows written by
// either must compare and look up the same).
func TestEncodingsMatchTheirDefinitions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	max256 := new(big.Int).Set(math.MaxBig256)
	amounts := []*big.Int{nil, big.NewInt(0), big.NewInt(1), big.NewInt(10), max256}
	for range 200 {
		b := make([]byte, 1+rng.IntN(32))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		amounts = append(amounts, new(big.Int).SetBytes(b))
	}
	for _, x := range amounts {
		s := "0"
		if x != nil {
			s = x.String()
		}
		want := strings.Repeat("0", amountWidth-len(s)) + s
		if got := encAmount(x); got != want {
			t.Fatalf("encAmount(%v) = %q, want %q", x, got, want)
		}
		if back, err := decAmount(encAmount(x)); err != nil || (x != nil && back.Cmp(x) != 0) {
			t.Fatalf("decAmount(encAmount(%v)) = %v, %v", x, back, err)
		}
	}
	for range 200 {
		var a common.Address
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		if got, want := encAddr(a), strings.ToLower(a.Hex()); got != want {
			t.Fatalf("encAddr(%x) = %q, want %q", a, got, want)
		}
	}
}
