package quality

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/openmyst/openmyst/internal/keytest"
)

// TestStorePersists checks that a blacklist survives closing and
// reopening the file (a restart) with the same proofs.
func TestStorePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, b := keytest.Signer(t), keytest.Signer(t)
	pa, pb := overchargeProof(t, a), conflictProof(t, b)
	ra, _ := pa.Encode()
	rb, _ := pb.Encode()
	for _, c := range []struct {
		raw  []byte
		p    Proof
		want bool
	}{{ra, pa, true}, {rb, pb, true}, {ra, pa, false}} {
		provider, err := c.p.Verify()
		if err != nil {
			t.Fatal(err)
		}
		added, err := st.Put(ctx, provider, c.raw)
		if err != nil || added != c.want {
			t.Fatalf("put: added %v (%v), want %v", added, err, c.want)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Blocked(a.Address()) || !st.Blocked(b.Address()) || st.Blocked(keytest.Signer(t).Address()) || st.Len() != 2 {
		t.Fatalf("after reopen: blocked a=%v b=%v len=%d", st.Blocked(a.Address()), st.Blocked(b.Address()), st.Len())
	}
	raws, err := st.Proofs(ctx, 10)
	if err != nil || len(raws) != 2 {
		t.Fatalf("proofs: %d (%v)", len(raws), err)
	}
	got, ok, err := st.Proof(ctx, a.Address())
	if err != nil || !ok || string(got) != string(ra) {
		t.Fatalf("proof for a: %v %v", ok, err)
	}
}

func TestStoreBounded(t *testing.T) {
	st, err := OpenStore(filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.max = 2
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		s := keytest.Signer(t)
		p := conflictProof(t, s)
		raw, _ := p.Encode()
		_, err := st.Put(ctx, s.Address(), raw)
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && !errors.Is(err, ErrFull) {
			t.Fatalf("third proof over a cap of 2: %v", err)
		}
	}
	if st.Len() != 2 {
		t.Fatalf("len %d, want 2", st.Len())
	}
}

// TestStoreRefusesTamperedFile checks that a proof that no longer
// verifies (the file edited) fails the load instead of blacklisting.
func TestStoreRefusesTamperedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	victim, other := keytest.Signer(t), keytest.Signer(t)
	p := overchargeProof(t, other)
	raw, _ := p.Encode()
	// Stored under another identity than the one it convicts.
	if _, err := st.Put(context.Background(), victim.Address(), raw); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err := OpenStore(path); err == nil {
		st.Close()
		t.Fatal("opened a blacklist whose proof convicts another identity")
	}
}
