// Package keytest makes throwaway keys for tests: a random secp256k1 key,
// a random or a seeded identity that signs (an Ethereum key) and a random
// or a seeded libp2p key and peer id.
// Tests only; no production code imports it.
package keytest

import (
	"bytes"
	"crypto/ecdsa"
	"io"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/identity"
)

// Key returns a fresh random secp256k1 key, for tests that sign
// transactions or need the raw key (a signer: Signer).
func Key(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// Signer returns a signer with a fresh random secp256k1 key.
func Signer(tb testing.TB) *identity.KeySigner {
	tb.Helper()
	return identity.NewKeySigner(Key(tb))
}

// PeerID returns the peer id of a fresh random Ed25519 key.
func PeerID(tb testing.TB) peer.ID {
	tb.Helper()
	_, id := PeerKey(tb)
	return id
}

// PeerKey returns a fresh random Ed25519 libp2p key and its peer id, for
// tests that sign as a peer.
func PeerKey(tb testing.TB) (lcrypto.PrivKey, peer.ID) {
	tb.Helper()
	return peerKey(tb, nil)
}

// SeededPeerKey returns the Ed25519 libp2p key whose seed is made of the
// byte seed, and its peer id: the same peer in every run and process (a
// fuzz target's seed corpus).
func SeededPeerKey(tb testing.TB, seed byte) (lcrypto.PrivKey, peer.ID) {
	tb.Helper()
	return peerKey(tb, bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
}

func peerKey(tb testing.TB, src io.Reader) (lcrypto.PrivKey, peer.ID) {
	tb.Helper()
	k, _, err := lcrypto.GenerateEd25519Key(src)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return k, id
}

// Seeded returns a signer whose secp256k1 key is 32 bytes of seed: the
// same identity in every run, for tests that want fixed addresses.
func Seeded(tb testing.TB, seed byte) *identity.KeySigner {
	tb.Helper()
	k, err := crypto.ToECDSA(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return identity.NewKeySigner(k)
}
