package chain

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/openmyst/openmyst/market"
)

// Decimals is the number of decimals of MYST: 1 MYST = 10^18 wei.
const Decimals = 18

var (
	weiPerMYST = new(big.Int).Exp(big.NewInt(10), big.NewInt(Decimals), nil)
	maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
)

// ErrBadAmount is returned (wrapped) by ParseMYST for malformed amounts.
var ErrBadAmount = errors.New("bad MYST amount")

// ParseMYST parses a non-negative decimal MYST amount ("1", "0.5",
// "12.000000000000000001") into wei, exactly. At most 18 fractional digits;
// no sign, exponent, spaces or thousands separators.
func ParseMYST(s string) (*big.Int, error) {
	v, err := market.ParseMYST(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAmount, err)
	}
	return v, nil
}

// FormatMYST formats wei as a MYST decimal without trailing zeros
// ("1.5", "0.000000000000000001", "3"). Negative values get a leading '-'.
func FormatMYST(wei *big.Int) string {
	if wei == nil {
		return "0"
	}
	neg := wei.Sign() < 0
	q, r := new(big.Int).QuoRem(new(big.Int).Abs(wei), weiPerMYST, new(big.Int))
	s := q.String()
	if r.Sign() != 0 {
		f := fmt.Sprintf("%0*s", Decimals, r.String())
		s += "." + strings.TrimRight(f, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

// MYST returns n whole MYST in wei.
func MYST(n int64) *big.Int {
	return new(big.Int).Mul(big.NewInt(n), weiPerMYST)
}
