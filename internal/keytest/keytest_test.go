package keytest

import (
	"bytes"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestKeysAreFreshAndUsable(t *testing.T) {
	a, b := Signer(t), Signer(t)
	if a.Address() == b.Address() {
		t.Fatal("two signers share an address")
	}
	if _, err := a.Sign([]byte("hello")); err != nil {
		t.Fatalf("sign: %v", err)
	}
	if k, l := Key(t), Key(t); crypto.PubkeyToAddress(k.PublicKey) == crypto.PubkeyToAddress(l.PublicKey) {
		t.Fatal("Key: two keys are the same")
	}
	p, q := PeerID(t), PeerID(t)
	if p == q || p.Validate() != nil {
		t.Fatalf("peer ids %s %s: want two valid, different ids", p, q)
	}
}

func TestSeededIsFixed(t *testing.T) {
	a, again, other := Seeded(t, 7), Seeded(t, 7), Seeded(t, 8)
	if a.Address() != again.Address() || a.Address() == other.Address() {
		t.Fatal("Seeded: want one address per seed")
	}
}

func TestPeerKeys(t *testing.T) {
	k, id := PeerKey(t)
	if got, err := peer.IDFromPrivateKey(k); err != nil || got != id {
		t.Fatalf("PeerKey: id %s, want %s (%v)", id, got, err)
	}
	if _, other := PeerKey(t); other == id {
		t.Fatal("PeerKey: two keys share a peer id")
	}
	_, a := SeededPeerKey(t, 7)
	_, again := SeededPeerKey(t, 7)
	_, b := SeededPeerKey(t, 8)
	if a != again || a == b {
		t.Fatalf("SeededPeerKey: want one peer per seed: %s %s %s", a, again, b)
	}
	// The seed is the Ed25519 seed: the same peer as the fuzz targets'
	// corpus had when they derived it by hand.
	want, _, err := lcrypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if wid, _ := peer.IDFromPrivateKey(want); wid != a {
		t.Fatalf("SeededPeerKey(7) = %s, want %s", a, wid)
	}
}
