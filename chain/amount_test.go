package chain

import (
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestParseFormatMYST(t *testing.T) {
	for _, tc := range []struct{ in, wei, out string }{
		{"0", "0", "0"},
		{"1", "1000000000000000000", "1"},
		{"1.5", "1500000000000000000", "1.5"},
		{"0.000000000000000001", "1", "0.000000000000000001"},
		{"12.340", "12340000000000000000", "12.34"},
		{"007", "7000000000000000000", "7"},
	} {
		w, err := ParseMYST(tc.in)
		if err != nil {
			t.Fatalf("ParseMYST(%q): %v", tc.in, err)
		}
		if w.String() != tc.wei {
			t.Fatalf("ParseMYST(%q) = %s wei, want %s", tc.in, w, tc.wei)
		}
		if got := FormatMYST(w); got != tc.out {
			t.Fatalf("FormatMYST(%s) = %q, want %q", w, got, tc.out)
		}
	}
	for _, bad := range []string{"", ".", "1.", ".5", "-1", "+1", "1e18", "1,5", " 1", "1.0000000000000000001", "0x10", "1..2", strings.Repeat("9", 80)} {
		if _, err := ParseMYST(bad); !errors.Is(err, ErrBadAmount) {
			t.Errorf("ParseMYST(%q) = %v, want ErrBadAmount", bad, err)
		}
	}
	if FormatMYST(big.NewInt(-1500000000000000000)) != "-1.5" || FormatMYST(nil) != "0" {
		t.Fatal("negative or nil formatting")
	}
}

func FuzzParseMYST(f *testing.F) {
	for _, s := range []string{"0", "1.5", "0.000000000000000001", "123456789.123456789123456789", "1.", "-3", "9e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseMYST(s)
		if err != nil {
			if !errors.Is(err, ErrBadAmount) {
				t.Fatalf("error %v does not wrap ErrBadAmount", err)
			}
			return
		}
		if w.Sign() < 0 || w.Cmp(maxUint256) > 0 {
			t.Fatalf("%q parsed out of range: %s", s, w)
		}
		back, err := ParseMYST(FormatMYST(w))
		if err != nil || back.Cmp(w) != 0 {
			t.Fatalf("round trip of %q: %s -> %q -> %v (%v)", s, w, FormatMYST(w), back, err)
		}
	})
}
