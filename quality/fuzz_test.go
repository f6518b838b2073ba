package quality

import (
	"bytes"
	"testing"

	"github.com/openmyst/openmyst/internal/keytest"
)

func FuzzDecodeProof(f *testing.F) {
	s := keytest.Signer(f)
	for _, p := range []Proof{conflictProof(f, s), overchargeProof(f, s)} {
		raw, err := p.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"v":1,"kind":"overcharge","proposals":[],"invoice":null}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, provider, err := DecodeProof(data)
		if err != nil {
			return
		}
		// Whatever decodes verifies again, convicts the same provider and
		// re-encodes to a form that decodes the same.
		got, err := p.Verify()
		if err != nil || got != provider {
			t.Fatalf("decoded proof does not verify again: %v", err)
		}
		raw, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		q, again, err := DecodeProof(raw)
		if err != nil || again != provider {
			t.Fatalf("re-encoded proof: %v", err)
		}
		raw2, _ := q.Encode()
		if !bytes.Equal(raw, raw2) {
			t.Fatal("encoding not stable")
		}
	})
}
