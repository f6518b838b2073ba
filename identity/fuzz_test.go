package identity

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

// FuzzParseAddress: whatever ParseAddress accepts is 0x + 40 hex and
// round-trips; everything else fails with ErrBadAddress.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"0x52908400098527886E0F7030069857D2E4169EE7", "0x52908400098527886e0f7030069857d2e4169ee7",
		"0x52908400098527886E0F7030069857d2E4169EE7", "0x", "", "52908400098527886E0F7030069857D2E4169EE7", "0xg2908400098527886E0F7030069857D2E4169EE7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrBadAddress) {
				t.Fatalf("ParseAddress(%q) error %v is not ErrBadAddress", s, err)
			}
			return
		}
		if len(s) != 42 || !strings.EqualFold(a.Hex(), s) {
			t.Fatalf("ParseAddress(%q) accepted as %s", s, a.Hex())
		}
	})
}

// FuzzImport feeds arbitrary keystore JSON to Import: it must never panic,
// must fail with a typed error, and must not leave files behind on failure.
func FuzzImport(f *testing.F) {
	key, err := crypto.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	good, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: crypto.PubkeyToAddress(key.PublicKey), PrivateKey: key},
		"pw", keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"address":"0000000000000000000000000000000000000000","crypto":{},"version":3}`))
	f.Add([]byte(`{"address":"00","crypto":{"kdf":"scrypt"},"version":3}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`null`))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		// Huge scrypt parameters in fuzzed input would make a run slow, not
		// wrong; skip inputs that declare any "n" other than the light one.
		if strings.Contains(string(data), `"n"`) && !strings.Contains(string(data), `"n":4096`) {
			return
		}
		dir := filepath.Join(t.TempDir(), "ks")
		m, err := NewManager(dir, WithLightScrypt())
		if err != nil {
			t.Fatal(err)
		}
		id, err := m.Import(ctx, data, "pw", "pw")
		if err != nil {
			if !errors.Is(err, ErrCorruptKeyFile) && !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("Import error %v is neither ErrCorruptKeyFile nor ErrWrongPassphrase", err)
			}
			if list, lerr := m.List(ctx); lerr != nil || len(list) != 0 {
				t.Fatalf("failed Import left %v, %v", list, lerr)
			}
			return
		}
		if err := m.Unlock(id.Address, "pw"); err != nil {
			t.Fatalf("imported key does not unlock: %v", err)
		}
	})
}
