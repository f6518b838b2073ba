package keytest

import (
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
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
