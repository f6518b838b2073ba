package identity

import (
	"crypto/ecdsa"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// SignatureLength is the length of every identity signature: r || s || v,
// with v in {27, 28} as Solidity's ecrecover expects.
const SignatureLength = 65

// ErrBadSignature is returned (wrapped) when a signature is malformed or was
// not made by the expected identity.
var ErrBadSignature = errors.New("bad signature")

// Signer signs messages on behalf of one identity.
//
// Sign hashes message as keccak256("\x19Ethereum Signed Message:\n" +
// len(message) + message) (EIP-191 personal_sign) and returns a 65-byte
// recoverable signature with v in {27, 28}.
type Signer interface {
	// Address is the identity the signatures recover to.
	Address() common.Address
	// Sign signs message with the Ethereum signed-message prefix.
	Sign(message []byte) ([]byte, error)
}

// KeySigner is a Signer over an in-memory private key. The keystore hands
// one out for an unlocked identity; tests and dev tools build one directly.
type KeySigner struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

// NewKeySigner returns a Signer for key.
func NewKeySigner(key *ecdsa.PrivateKey) *KeySigner {
	return &KeySigner{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
}

// Address implements Signer.
func (s *KeySigner) Address() common.Address { return s.addr }

// Sign implements Signer.
func (s *KeySigner) Sign(message []byte) ([]byte, error) {
	sig, err := crypto.Sign(accounts.TextHash(message), s.key)
	if err != nil {
		return nil, fmt.Errorf("identity: sign as %s: %w", s.addr.Hex(), err)
	}
	sig[64] += 27
	return sig, nil
}

// Recover returns the identity that produced sig over message (signed with
// the Ethereum signed-message prefix).
func Recover(message, sig []byte) (common.Address, error) {
	if len(sig) != SignatureLength {
		return common.Address{}, fmt.Errorf("%w: length %d, want %d", ErrBadSignature, len(sig), SignatureLength)
	}
	v := sig[64]
	if v != 27 && v != 28 {
		return common.Address{}, fmt.Errorf("%w: recovery id %d, want 27 or 28", ErrBadSignature, v)
	}
	norm := make([]byte, SignatureLength)
	copy(norm, sig)
	norm[64] = v - 27
	pub, err := crypto.SigToPub(accounts.TextHash(message), norm)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// Verify checks that sig over message was made by addr.
func Verify(addr common.Address, message, sig []byte) error {
	got, err := Recover(message, sig)
	if err != nil {
		return err
	}
	if got != addr {
		return fmt.Errorf("%w: signed by %s, want %s", ErrBadSignature, got.Hex(), addr.Hex())
	}
	return nil
}
