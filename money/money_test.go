package money

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/math"
)

func TestParseFormatMYST(t *testing.T) {
	for _, tc := range []struct{ in, wei, out string }{
		{"0", "0", "0"},
		{"1", "1000000000000000000", "1"},
		{"1.5", "1500000000000000000", "1.5"},
		{"0.2", "200000000000000000", "0.2"},
		{"0.000000000000000001", "1", "0.000000000000000001"},
		{"12.340", "12340000000000000000", "12.34"},
		{"15.000000000000000001", "15000000000000000001", "15.000000000000000001"},
		{"007", "7000000000000000000", "7"},
		{"007.5", "7500000000000000000", "7.5"},
	} {
		w, err := ParseMYST(tc.in)
		if err != nil {
			t.Fatalf("ParseMYST(%q): %v", tc.in, err)
		}
		if w.String() != tc.wei {
			t.Fatalf("ParseMYST(%q) = %s wei, want %s", tc.in, w, tc.wei)
		}
		if a, err := ParseMYSTAmount(tc.in); err != nil || a.Cmp(MustAmount(w)) != 0 || a.MYST() != tc.out {
			t.Fatalf("ParseMYSTAmount(%q) = %v, %v", tc.in, a, err)
		}
		if got := FormatMYST(w); got != tc.out {
			t.Fatalf("FormatMYST(%s) = %q, want %q", w, got, tc.out)
		}
	}
	for _, bad := range []string{"", ".", "1.", ".5", "-1", "+1", "1e18", "1e3", "1,5", " 1", "1.0000000000000000001",
		"0.0000000000000000001", "0x10", "1..2", strings.Repeat("9", 80)} {
		if _, err := ParseMYST(bad); !errors.Is(err, ErrBadAmount) {
			t.Errorf("ParseMYST(%q) = %v, want ErrBadAmount", bad, err)
		}
		if a, err := ParseMYSTAmount(bad); !errors.Is(err, ErrBadAmount) || a.IsSet() {
			t.Errorf("ParseMYSTAmount(%q) = %v, %v, want ErrBadAmount", bad, a, err)
		}
	}
	if FormatMYST(big.NewInt(-1500000000000000000)) != "-1.5" || FormatMYST(nil) != "0" {
		t.Fatal("negative or nil formatting")
	}
	if got := MustAmount(big.NewInt(150000000000000000)).MYST(); got != "0.15" {
		t.Errorf("MYST() = %s", got)
	}
	if MYST(3).String() != "3000000000000000000" {
		t.Errorf("MYST(3) = %s", MYST(3))
	}
}

func TestParseWei(t *testing.T) {
	max := math.MaxBig256.String()
	for _, good := range []string{"0", "1", "1000", max} {
		v, err := ParseWei(good)
		if err != nil || v.String() != good {
			t.Errorf("ParseWei(%q) = %v, %v", good, v, err)
		}
	}
	over := new(big.Int).Lsh(big.NewInt(1), 256).String()
	for in, reason := range map[string]string{
		"":                            "empty",
		"-1":                          "negative",
		"05":                          "leading zeros",
		"1e18":                        "not a decimal integer",
		"0x10":                        "not a decimal integer",
		" 1":                          "not a decimal integer",
		"1" + strings.Repeat("0", 78): "digits",
		over:                          "exceeds 2^256-1 (does not fit in 256 bits)",
	} {
		_, err := ParseWei(in)
		if !errors.Is(err, ErrBadAmount) || !strings.Contains(err.Error(), reason) {
			t.Errorf("ParseWei(%q) = %v, want %q", in, err, reason)
		}
	}
}

func TestCheckAndNewAmount(t *testing.T) {
	over := new(big.Int).Add(math.MaxBig256, big.NewInt(1))
	for v, reason := range map[*big.Int]string{nil: "amount is missing", big.NewInt(-1): "amount is negative", over: "exceeds 2^256-1"} {
		if err := Check(v); !errors.Is(err, ErrBadAmount) || !strings.Contains(err.Error(), reason) {
			t.Errorf("Check(%v) = %v, want %q", v, err, reason)
		}
	}
	for _, v := range []*big.Int{nil, big.NewInt(-1), over} {
		if _, err := NewAmount(v); !errors.Is(err, ErrBadAmount) {
			t.Errorf("NewAmount(%v) = %v, want ErrBadAmount", v, err)
		}
	}
	src := big.NewInt(5)
	a, err := NewAmount(src)
	if err != nil {
		t.Fatal(err)
	}
	src.SetInt64(6)
	if a.Int().Int64() != 5 {
		t.Fatal("NewAmount must copy its argument")
	}
	a.Int().SetInt64(7)
	if a.Int().Int64() != 5 {
		t.Fatal("Int must return a copy")
	}
	var unset Amount
	if unset.IsSet() || unset.String() != "0" || unset.Cmp(MustAmount(big.NewInt(0))) != 0 || !a.IsSet() {
		t.Fatal("unset amount must read as 0 and report !IsSet")
	}
}

func TestAmountJSON(t *testing.T) {
	a := MustAmount(new(big.Int).Set(math.MaxBig256))
	b, err := json.Marshal(a)
	if err != nil || string(b) != `"`+math.MaxBig256.String()+`"` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	var back Amount
	if err := json.Unmarshal(b, &back); err != nil || back.Cmp(a) != 0 || !back.IsSet() {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	if b, _ := json.Marshal(Amount{}); string(b) != `"0"` {
		t.Fatalf("unset marshals as %s", b)
	}
	for in, reason := range map[string]string{
		`5`:     "decimal string",
		`null`:  "decimal string",
		`"-1"`:  "negative",
		`"05"`:  "leading zeros",
		`"1e3"`: "not a decimal integer",
		`""`:    "empty",
		`"1`:    "amount",
	} {
		var x Amount
		err := x.UnmarshalJSON([]byte(in))
		if !errors.Is(err, ErrBadAmount) || !strings.Contains(err.Error(), reason) {
			t.Errorf("UnmarshalJSON(%s) = %v, want %q", in, err, reason)
		}
		if x.IsSet() {
			t.Errorf("UnmarshalJSON(%s) set the amount on error", in)
		}
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
		if Check(w) != nil {
			t.Fatalf("%q parsed out of range: %s", s, w)
		}
		back, err := ParseMYST(FormatMYST(w))
		if err != nil || back.Cmp(w) != 0 {
			t.Fatalf("round trip of %q: %s -> %q -> %v (%v)", s, w, FormatMYST(w), back, err)
		}
	})
}

// FuzzAmountJSON checks that whatever decodes is in range and survives an
// encode/decode round trip unchanged.
func FuzzAmountJSON(f *testing.F) {
	for _, s := range []string{`"0"`, `"1"`, `"` + math.MaxBig256.String() + `"`, `"05"`, `"-1"`, `5`, `null`, `"\u0031"`, `"1e3"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Amount
		if err := json.Unmarshal(data, &a); err != nil {
			return
		}
		if err := Check(a.Int()); err != nil {
			t.Fatalf("%s decoded out of range: %v", data, err)
		}
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var back Amount
		if err := json.Unmarshal(b, &back); err != nil || back.Cmp(a) != 0 {
			t.Fatalf("round trip of %s: %s -> %v (%v)", data, b, back, err)
		}
	})
}
