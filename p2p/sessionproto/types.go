package sessionproto

import (
	"encoding/base64"
	"fmt"
	"reflect"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

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
