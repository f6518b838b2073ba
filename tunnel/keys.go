package tunnel

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// KeyLen is the length of a WireGuard (Curve25519) key in bytes.
const KeyLen = 32

// PrivateKey is a WireGuard private key (a clamped Curve25519 scalar).
type PrivateKey [KeyLen]byte

// PublicKey is a WireGuard public key (a Curve25519 point).
type PublicKey [KeyLen]byte

// GenerateKey returns a new random private key, clamped as WireGuard does.
func GenerateKey() (PrivateKey, error) {
	var k PrivateKey
	if _, err := rand.Read(k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("generate wireguard key: %w", err)
	}
	k.clamp()
	return k, nil
}

func (k *PrivateKey) clamp() {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// PublicKey derives the public key of k.
func (k PrivateKey) PublicKey() PublicKey {
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		// NewPrivateKey only fails on a wrong length, which the array type rules out.
		panic("tunnel: x25519 private key: " + err.Error())
	}
	var p PublicKey
	copy(p[:], priv.PublicKey().Bytes())
	return p
}

// IsZero reports whether k is all zeros (unset).
func (k PrivateKey) IsZero() bool { return k == PrivateKey{} }

// String returns the key in WireGuard's base64 format. Callers must not log it.
func (k PrivateKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex returns the key as lower-case hex, the form wireguard-go's UAPI takes.
func (k PrivateKey) Hex() string { return hex.EncodeToString(k[:]) }

// IsZero reports whether p is all zeros (unset).
func (p PublicKey) IsZero() bool { return p == PublicKey{} }

// String returns the key in WireGuard's base64 format.
func (p PublicKey) String() string { return base64.StdEncoding.EncodeToString(p[:]) }

// Hex returns the key as lower-case hex, the form wireguard-go's UAPI takes.
func (p PublicKey) Hex() string { return hex.EncodeToString(p[:]) }

// MarshalText encodes p in base64 so PublicKey works in JSON and TOML.
func (p PublicKey) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses a base64 public key strictly.
func (p *PublicKey) UnmarshalText(b []byte) error {
	k, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*p = k
	return nil
}

func parseKey(s string) ([KeyLen]byte, error) {
	var k [KeyLen]byte
	if len(s) != 44 {
		return k, fmt.Errorf("wireguard key: want 44 base64 characters, got %d", len(s))
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return k, fmt.Errorf("wireguard key: %w", err)
	}
	if len(b) != KeyLen {
		return k, fmt.Errorf("wireguard key: want %d bytes, got %d", KeyLen, len(b))
	}
	copy(k[:], b)
	return k, nil
}

// ParsePrivateKey parses a base64 private key (as `wg genkey` prints it).
// It rejects wrong lengths, non-canonical base64 and the all-zero key.
func ParsePrivateKey(s string) (PrivateKey, error) {
	k, err := parseNonZeroKey(s, "private")
	return PrivateKey(k), err
}

// ParsePublicKey parses a base64 public key (as `wg pubkey` prints it).
// It rejects wrong lengths, non-canonical base64 and the all-zero key.
func ParsePublicKey(s string) (PublicKey, error) {
	k, err := parseNonZeroKey(s, "public")
	return PublicKey(k), err
}

// parseNonZeroKey is parseKey refusing the all-zero key; kind (private
// or public) names it in that error. On an error the key is zero.
func parseNonZeroKey(s, kind string) ([KeyLen]byte, error) {
	k, err := parseKey(s)
	if err != nil {
		return [KeyLen]byte{}, err
	}
	if k == [KeyLen]byte{} {
		return k, fmt.Errorf("wireguard %s key: all zeros", kind)
	}
	return k, nil
}

// ParsePublicKeyHex parses a public key in the hex form of wireguard-go's UAPI.
func ParsePublicKeyHex(s string) (PublicKey, error) {
	var p PublicKey
	if len(s) != 2*KeyLen {
		return p, fmt.Errorf("wireguard hex key: want %d characters, got %d", 2*KeyLen, len(s))
	}
	if _, err := hex.Decode(p[:], []byte(s)); err != nil {
		return PublicKey{}, fmt.Errorf("wireguard hex key: %w", err)
	}
	return p, nil
}
