package market

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Decimals is the number of decimals of the MYST token: 1 MYST = 10^18 wei.
const Decimals = 18

// maxAmount is 2^256-1, the largest amount the chain can represent.
var maxAmount = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

var weiPerMYST = new(big.Int).Exp(big.NewInt(10), big.NewInt(Decimals), nil)

// Amount is a non-negative token amount in wei that encodes as a JSON
// decimal string ("1500000000000000000"). The zero value is "unset": it
// reads as 0 but a Proposal carrying it fails validation, so a missing JSON
// field is never taken for a free price.
type Amount struct{ v *big.Int }

// NewAmount returns an Amount for wei; it panics if wei is negative or
// larger than 2^256-1, which is a programming error.
func NewAmount(wei *big.Int) Amount {
	if wei.Sign() < 0 || wei.Cmp(maxAmount) > 0 {
		panic(fmt.Sprintf("market: amount %s out of range", wei))
	}
	return Amount{v: new(big.Int).Set(wei)}
}

// Int returns a copy of the amount in wei.
func (a Amount) Int() *big.Int {
	if a.v == nil {
		return new(big.Int)
	}
	return new(big.Int).Set(a.v)
}

// IsSet reports whether the amount was set (by NewAmount or decoding).
func (a Amount) IsSet() bool { return a.v != nil }

// Cmp compares a and b like big.Int.Cmp.
func (a Amount) Cmp(b Amount) int { return a.Int().Cmp(b.Int()) }

// String returns the decimal wei amount.
func (a Amount) String() string { return a.Int().String() }

// MYST formats the amount in MYST with up to 18 decimals and no trailing
// zeros ("0.15").
func (a Amount) MYST() string {
	q, r := new(big.Int).QuoRem(a.Int(), weiPerMYST, new(big.Int))
	if r.Sign() == 0 {
		return q.String()
	}
	frac := fmt.Sprintf("%018s", r.String())
	return q.String() + "." + strings.TrimRight(frac, "0")
}

// MarshalJSON encodes the amount as a decimal string of wei.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON accepts only a JSON string of decimal digits without sign,
// leading zeros or exponent, in [0, 2^256-1].
func (a *Amount) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("market: amount must be a decimal string: %w", err)
	}
	v, err := ParseWei(s)
	if err != nil {
		return err
	}
	a.v = v
	return nil
}

// ParseWei parses a canonical decimal wei string.
func ParseWei(s string) (*big.Int, error) {
	if s == "" {
		return nil, errors.New("market: amount: empty")
	}
	if len(s) > 78 {
		return nil, fmt.Errorf("market: amount: %d digits, max 78", len(s))
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("market: amount %q: not a decimal integer", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return nil, fmt.Errorf("market: amount %q: leading zero", s)
	}
	v, _ := new(big.Int).SetString(s, 10)
	if v.Cmp(maxAmount) > 0 {
		return nil, fmt.Errorf("market: amount %q: larger than 2^256-1", s)
	}
	return v, nil
}

// ParseMYST parses a decimal MYST amount such as "0.2" or "15" (at most 18
// fractional digits, no sign or exponent) into wei.
func ParseMYST(s string) (*big.Int, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") {
		return nil, fmt.Errorf("market: MYST amount %q: want digits[.digits]", s)
	}
	if len(frac) > Decimals {
		return nil, fmt.Errorf("market: MYST amount %q: more than %d decimals", s, Decimals)
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("market: MYST amount %q: not a decimal number", s)
		}
	}
	if len(whole) > 60 {
		return nil, fmt.Errorf("market: MYST amount %q: too large", s)
	}
	digits := strings.TrimLeft(whole+frac+strings.Repeat("0", Decimals-len(frac)), "0")
	if digits == "" {
		return new(big.Int), nil
	}
	v, _ := new(big.Int).SetString(digits, 10)
	if v.Cmp(maxAmount) > 0 {
		return nil, fmt.Errorf("market: MYST amount %q: too large", s)
	}
	return v, nil
}

// Price is what a provider charges, set by the provider.
type Price struct {
	// PerHour is charged per hour of session time, in wei.
	PerHour Amount `json:"per_hour"`
	// PerGiB is charged per GiB (2^30 bytes) transferred, in wei.
	PerGiB Amount `json:"per_gib"`
}
