// Package keytest makes throwaway keys for tests: a random identity that
// signs (an Ethereum key) and a random libp2p peer id. Tests only; no
// production code imports it.
package keytest

import (
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/identity"
)

// Signer returns a signer with a fresh random secp256k1 key.
func Signer(tb testing.TB) *identity.KeySigner {
	tb.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	return identity.NewKeySigner(k)
}

// PeerID returns the peer id of a fresh random Ed25519 key.
func PeerID(tb testing.TB) peer.ID {
	tb.Helper()
	_, pub, err := lcrypto.GenerateEd25519Key(nil)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}
