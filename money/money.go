// Package money is the one home of MYST amounts: the Amount type that
// every wire format and API uses for a token amount, the one exact parser
// and formatter of decimal wei and decimal MYST strings, and the range
// check every amount passes (non-negative, at most 2^256-1, the largest
// value the contracts' uint256 holds).
//
// Arithmetic stays on *big.Int; an Amount is how an amount crosses a
// boundary (JSON, a proposal, a session request). Its JSON form is a string
// of canonical decimal wei: digits only, no sign, no leading zeros (except
// "0" itself), no exponent.
package money

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common/math"
)

// Decimals is the number of decimals of the MYST token: 1 MYST = 10^18 wei.
const Decimals = 18

// maxDigits is the decimal length of 2^256-1.
const maxDigits = 78

var weiPerMYST = new(big.Int).Exp(big.NewInt(10), big.NewInt(Decimals), nil)

// MaxSettleable is type(uint128).max, the largest promise amount the
// contracts settle (Hermes.settlePromise refuses larger ones with
// AmountTooLarge). Do not modify.
var MaxSettleable = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// ErrBadAmount is wrapped by every error of this package: a malformed
// amount string or a value outside [0, 2^256-1].
var ErrBadAmount = errors.New("bad MYST amount")

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadAmount, fmt.Sprintf(format, args...))
}

// CheckUint256 returns nil when v fits a uint256: not nil, not negative,
// at most 2^256-1 (math.MaxBig256). Its error is a predicate ("is
// negative") for the caller to prefix with the value's name.
func CheckUint256(v *big.Int) error {
	switch {
	case v == nil:
		return errors.New("is missing")
	case v.Sign() < 0:
		return errors.New("is negative")
	case v.Cmp(math.MaxBig256) > 0:
		return errors.New("exceeds 2^256-1 (does not fit in 256 bits)")
	}
	return nil
}

// ParseUint256 parses the canonical decimal form of a uint256 (an amount, a
// chain id): digits only, no sign, no leading zeros (except "0"), no
// exponent, at most 2^256-1. Its error is a predicate ("has leading
// zeros") for the caller to prefix with the field's name.
func ParseUint256(s string) (*big.Int, error) {
	if s == "" {
		return nil, errors.New("is empty")
	}
	if s[0] == '-' {
		return nil, errors.New("is negative")
	}
	if len(s) > maxDigits {
		return nil, fmt.Errorf("has %d digits, more than %d", len(s), maxDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, errors.New("is not a decimal integer")
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return nil, errors.New("has leading zeros")
	}
	v, _ := new(big.Int).SetString(s, 10)
	if err := CheckUint256(v); err != nil {
		return nil, err
	}
	return v, nil
}

// Check returns nil when wei is a valid amount (CheckUint256), or an error
// wrapping ErrBadAmount.
func Check(wei *big.Int) error {
	if err := CheckUint256(wei); err != nil {
		return bad("amount %v", err)
	}
	return nil
}

// ParseWei parses the canonical decimal form of a wei amount
// (ParseUint256); its errors wrap ErrBadAmount.
func ParseWei(s string) (*big.Int, error) {
	v, err := ParseUint256(s)
	if err != nil {
		if len(s) > maxDigits {
			return nil, bad("amount %v", err)
		}
		return nil, bad("amount %q %v", s, err)
	}
	return v, nil
}

// ParseMYST parses a non-negative decimal MYST amount ("1", "0.5",
// "12.000000000000000001", "007.5") into wei, exactly. At most 18
// fractional digits; no sign, exponent, spaces or thousands separators.
func ParseMYST(s string) (*big.Int, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") {
		return nil, bad("MYST amount %q: want digits[.digits]", s)
	}
	if len(frac) > Decimals {
		return nil, bad("MYST amount %q: more than %d decimals", s, Decimals)
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return nil, bad("MYST amount %q: not a decimal number", s)
		}
	}
	if len(whole) > 60 {
		return nil, bad("MYST amount %q: too large", s)
	}
	digits := strings.TrimLeft(whole+frac+strings.Repeat("0", Decimals-len(frac)), "0")
	if digits == "" {
		return new(big.Int), nil
	}
	v, _ := new(big.Int).SetString(digits, 10)
	if v.Cmp(math.MaxBig256) > 0 {
		return nil, bad("MYST amount %q: too large", s)
	}
	return v, nil
}

// ParseMYSTAmount is ParseMYST returning an Amount.
func ParseMYSTAmount(s string) (Amount, error) {
	wei, err := ParseMYST(s)
	if err != nil {
		return Amount{}, err
	}
	return Amount{v: wei}, nil
}

// FormatMYST formats wei as a MYST decimal without trailing zeros
// ("1.5", "0.000000000000000001", "3"). Negative values (differences of
// amounts) get a leading '-'; nil formats as "0".
func FormatMYST(wei *big.Int) string {
	if wei == nil {
		return "0"
	}
	q, r := new(big.Int).QuoRem(new(big.Int).Abs(wei), weiPerMYST, new(big.Int))
	s := q.String()
	if r.Sign() != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%0*s", Decimals, r.String()), "0")
	}
	if wei.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// MYST returns n whole MYST in wei.
func MYST(n int64) *big.Int {
	return new(big.Int).Mul(big.NewInt(n), weiPerMYST)
}

// Amount is a token amount in wei in [0, 2^256-1]. Its zero value is
// "unset": it reads as 0 (Int, String, JSON) but IsSet reports false, so a
// validator can tell a missing price from a free one.
type Amount struct{ v *big.Int }

// NewAmount returns an Amount holding a copy of wei, or an error wrapping
// ErrBadAmount when wei is nil, negative or above 2^256-1.
func NewAmount(wei *big.Int) (Amount, error) {
	if err := Check(wei); err != nil {
		return Amount{}, err
	}
	return Amount{v: new(big.Int).Set(wei)}, nil
}

// MustAmount is NewAmount for values known to be valid; it panics
// otherwise, which is a programming error.
func MustAmount(wei *big.Int) Amount {
	a, err := NewAmount(wei)
	if err != nil {
		panic(err)
	}
	return a
}

// Int returns a copy of the amount in wei (0 when unset).
func (a Amount) Int() *big.Int {
	if a.v == nil {
		return new(big.Int)
	}
	return new(big.Int).Set(a.v)
}

// IsSet reports whether the amount was set (by NewAmount or decoding).
func (a Amount) IsSet() bool { return a.v != nil }

// Cmp compares a and b like big.Int.Cmp (unset compares as 0).
func (a Amount) Cmp(b Amount) int { return a.Int().Cmp(b.Int()) }

// String returns the canonical decimal wei form.
func (a Amount) String() string { return a.Int().String() }

// MYST formats the amount in MYST (FormatMYST).
func (a Amount) MYST() string { return FormatMYST(a.v) }

// MarshalJSON encodes the amount as a JSON string of decimal wei.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON accepts only a JSON string holding the canonical decimal
// wei form of a value in [0, 2^256-1] (ParseWei); null is refused.
func (a *Amount) UnmarshalJSON(data []byte) error {
	if len(data) == 0 || data[0] != '"' {
		return bad("amount must be a decimal string, got %.20s", data)
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return bad("amount: %v", err)
	}
	v, err := ParseWei(s)
	if err != nil {
		return err
	}
	a.v = v
	return nil
}
