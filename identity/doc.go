// Package identity holds openmyst identities: secp256k1 keys in a
// go-ethereum keystore, the Signer interface every signed protocol object
// uses, and signature verification and recovery.
//
// An identity's id is its 0x Ethereum address. Signatures are EIP-191
// personal-message signatures (keccak256 with the "\x19Ethereum Signed
// Message:\n" prefix), 65 bytes r || s || v with v in {27, 28}, so the same
// bytes verify in Go and in the contracts (see docs/protocol.md).
package identity
