package identity

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
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

// Sign implements Signer. go-ethereum's crypto.Sign produces canonical
// low-s signatures (libsecp256k1 normalizes s); Sign checks the result with
// CheckSignature anyway, so no signature the contracts would refuse ever
// leaves this process.
func (s *KeySigner) Sign(message []byte) ([]byte, error) {
	sig, err := crypto.Sign(accounts.TextHash(message), s.key)
	if err != nil {
		return nil, fmt.Errorf("identity: sign as %s: %w", s.addr.Hex(), err)
	}
	return finishSignature(sig, s.addr)
}

// finishSignature turns go-ethereum's recovery id (0 or 1) into v (27 or
// 28) and refuses anything CheckSignature refuses.
func finishSignature(sig []byte, addr common.Address) ([]byte, error) {
	if len(sig) == SignatureLength {
		sig[64] += 27
	}
	if err := CheckSignature(sig); err != nil {
		return nil, fmt.Errorf("identity: sign as %s produced a non-canonical signature: %w", addr.Hex(), err)
	}
	return sig, nil
}

// secp256k1 group order N and N/2, big-endian. Sig.sol's HALF_N is halfN.
var (
	curveN = [32]byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
	}
	halfN = [32]byte{
		0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
	}
	zero32 [32]byte
)

// CheckSignature checks the encoding of a 65-byte r || s || v signature
// exactly as the contracts do (contracts/src/Sig.sol plus the ecrecover
// precompile it calls), without recovering the signer:
//
//   - the length is 65 bytes;
//   - v is 27 or 28;
//   - 1 <= r < N (secp256k1 group order);
//   - 1 <= s <= N/2 (EIP-2 low s: the upper half is the malleated twin).
//
// Recover additionally refuses an r that is not the x coordinate of a curve
// point (the precompile returns nothing) and a signer of address zero. The
// error wraps ErrBadSignature.
func CheckSignature(sig []byte) error {
	if len(sig) != SignatureLength {
		return fmt.Errorf("%w: length %d, want %d", ErrBadSignature, len(sig), SignatureLength)
	}
	if v := sig[64]; v != 27 && v != 28 {
		return fmt.Errorf("%w: recovery id v=%d, want 27 or 28", ErrBadSignature, v)
	}
	r, s := sig[0:32], sig[32:64]
	switch {
	case bytes.Equal(r, zero32[:]):
		return fmt.Errorf("%w: r is zero", ErrBadSignature)
	case bytes.Compare(r, curveN[:]) >= 0:
		return fmt.Errorf("%w: r is not below the curve order", ErrBadSignature)
	case bytes.Equal(s, zero32[:]):
		return fmt.Errorf("%w: s is zero", ErrBadSignature)
	case bytes.Compare(s, halfN[:]) > 0:
		return fmt.Errorf("%w: s is in the upper half of the curve order (malleable, refused by the contracts)", ErrBadSignature)
	}
	return nil
}

// Recover returns the identity that produced sig over message (signed with
// the Ethereum signed-message prefix). It accepts exactly the signatures
// the contracts accept (see CheckSignature): it is the one signature
// verifier of openmyst, used by every signed object.
func Recover(message, sig []byte) (common.Address, error) {
	if err := CheckSignature(sig); err != nil {
		return common.Address{}, err
	}
	var norm [SignatureLength]byte
	copy(norm[:], sig)
	norm[64] -= 27
	pub, err := crypto.Ecrecover(accounts.TextHash(message), norm[:])
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	// The ecrecover precompile's address: keccak256(X || Y)[12:].
	addr := common.BytesToAddress(crypto.Keccak256(pub[1:])[12:])
	if addr == (common.Address{}) {
		return common.Address{}, fmt.Errorf("%w: recovers to the zero address", ErrBadSignature)
	}
	return addr, nil
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

// VerifyHex is Verify of a 0x-prefixed hex signature (`myst identity
// verify`); a signature that is no such hex is refused saying so.
func VerifyHex(addr common.Address, message []byte, sigHex string) error {
	sig, err := hexutil.Decode(sigHex)
	if err != nil {
		return fmt.Errorf("signature %q: want 0x-prefixed hex: %w", sigHex, err)
	}
	return Verify(addr, message, sig)
}

// Record is a value one identity signs: it checks its own fields and
// hashes to the digest the identity signs (EIP-191, see Signer).
// Proposals, quality reports and peer binding records are records;
// SignRecord and VerifyRecord are their one sign/verify path.
type Record interface {
	// Validate checks the fields (not the signature).
	Validate() error
	// Digest is what the identity signs.
	Digest() ([32]byte, error)
}

// SignRecord validates r and signs its digest with signer, which must be
// want (the identity r names as its signer). Errors of r's own methods and
// of signer come back as they are.
func SignRecord(r Record, want common.Address, signer Signer) ([]byte, error) {
	if got := signer.Address(); got != want {
		return nil, fmt.Errorf("signer %s is not %s", got.Hex(), want.Hex())
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	d, err := r.Digest()
	if err != nil {
		return nil, err
	}
	return signer.Sign(d[:])
}

// VerifyRecord validates r and checks that sig over its digest was made by
// want. Errors of r's own methods come back as they are; a signature error
// wraps ErrBadSignature (errors.Is tells the two apart as long as r's
// Validate does not wrap ErrBadSignature itself).
func VerifyRecord(r Record, want common.Address, sig []byte) error {
	if err := r.Validate(); err != nil {
		return err
	}
	d, err := r.Digest()
	if err != nil {
		return err
	}
	return Verify(want, d[:], sig)
}
