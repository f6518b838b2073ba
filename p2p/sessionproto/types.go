package sessionproto

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// maxAmountDigits bounds the decimal length of an Amount: 2^256-1 has 78
// digits.
const maxAmountDigits = 78

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// Amount is a non-negative token amount in wei (at most 2^256-1). On the
// wire it is a JSON string holding the canonical decimal form: digits only,
// no sign, no leading zeros (except "0" itself), no exponent.
type Amount struct {
	v big.Int
}

// NewAmount returns an Amount holding v. It returns an error when v is nil,
// negative or does not fit in 256 bits.
func NewAmount(v *big.Int) (Amount, error) {
	var a Amount
	if v == nil {
		return a, fmt.Errorf("amount is nil")
	}
	if v.Sign() < 0 {
		return a, fmt.Errorf("amount %s is negative", v)
	}
	if v.Cmp(maxUint256) > 0 {
		return a, fmt.Errorf("amount does not fit in 256 bits")
	}
	a.v.Set(v)
	return a, nil
}

// MustAmount is NewAmount for constants known to be valid; it panics
// otherwise.
func MustAmount(v *big.Int) Amount {
	a, err := NewAmount(v)
	if err != nil {
		panic(err)
	}
	return a
}

// Big returns a copy of the amount as a big.Int.
func (a Amount) Big() *big.Int { return new(big.Int).Set(&a.v) }

// String returns the canonical decimal form.
func (a Amount) String() string { return a.v.String() }

// MarshalJSON encodes the amount as a decimal JSON string.
func (a Amount) MarshalJSON() ([]byte, error) {
	return json.Marshal(a.v.String())
}

// UnmarshalJSON accepts only a JSON string with the canonical decimal form
// of a value in [0, 2^256-1].
func (a *Amount) UnmarshalJSON(data []byte) error {
	if len(data) == 0 || data[0] != '"' {
		return fmt.Errorf("amount must be a decimal string, got %.20s", data)
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("amount: %w", err)
	}
	if s == "" {
		return fmt.Errorf("amount is empty")
	}
	if s[0] == '-' {
		return fmt.Errorf("amount %q is negative", s)
	}
	if len(s) > maxAmountDigits {
		return fmt.Errorf("amount has %d digits, more than %d", len(s), maxAmountDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("amount %q is not a decimal integer", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return fmt.Errorf("amount %q has a leading zero", s)
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return fmt.Errorf("amount %q is not a decimal integer", s)
	}
	if v.Cmp(maxUint256) > 0 {
		return fmt.Errorf("amount %q does not fit in 256 bits", s)
	}
	a.v.Set(v)
	return nil
}

// Key is a WireGuard (Curve25519) public key. On the wire it is standard
// padded base64 of exactly 32 bytes, as `wg` prints keys.
type Key [32]byte

// String returns the base64 form.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// IsZero reports whether k is all zeros (never a valid peer key).
func (k Key) IsZero() bool { return k == Key{} }

// MarshalText encodes the key as base64.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText accepts only canonical padded base64 of 32 bytes.
func (k *Key) UnmarshalText(text []byte) error {
	raw, err := base64.StdEncoding.Strict().DecodeString(string(text))
	if err != nil {
		return fmt.Errorf("key is not base64: %w", err)
	}
	if len(raw) != len(k) {
		return fmt.Errorf("key is %d bytes, want %d", len(raw), len(k))
	}
	copy(k[:], raw)
	return nil
}

// Nonce is 16 random bytes that make a SessionRequest unique. On the wire
// it is 0x-prefixed hex.
type Nonce [16]byte

// MarshalText encodes the nonce as 0x hex.
func (n Nonce) MarshalText() ([]byte, error) { return []byte(hexutil.Encode(n[:])), nil }

// UnmarshalJSON accepts exactly 16 bytes of 0x hex.
func (n *Nonce) UnmarshalJSON(data []byte) error {
	return hexutil.UnmarshalFixedJSON(reflect.TypeOf(Nonce{}), data, n[:])
}

// SessionID names one session; the provider chooses it at random. On the
// wire it is 0x-prefixed hex of 16 bytes.
type SessionID [16]byte

// String returns the 0x hex form.
func (id SessionID) String() string { return hexutil.Encode(id[:]) }

// MarshalText encodes the id as 0x hex.
func (id SessionID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalJSON accepts exactly 16 bytes of 0x hex.
func (id *SessionID) UnmarshalJSON(data []byte) error {
	return hexutil.UnmarshalFixedJSON(reflect.TypeOf(SessionID{}), data, id[:])
}
