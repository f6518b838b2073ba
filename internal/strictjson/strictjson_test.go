package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

func TestUnmarshal(t *testing.T) {
	var p point
	if err := Unmarshal([]byte(` {"x":1,"y":2} `), &p); err != nil || p != (point{1, 2}) {
		t.Fatalf("good input: %v, %+v", err, p)
	}
	if err := Unmarshal([]byte(`{"x":1} {}`), &p); !errors.Is(err, ErrTrailingData) {
		t.Errorf("trailing: %v", err)
	}
	if err := Unmarshal([]byte(`{"x":1,"z":3}`), &p); err == nil || !strings.HasPrefix(err.Error(), "json: unknown field ") {
		t.Errorf("unknown field: %v", err)
	}
	if err := Unmarshal([]byte(`{"x":`), &p); err == nil {
		t.Error("truncated input accepted")
	}
	var syn *json.SyntaxError
	if err := Unmarshal([]byte(`{"x":}`), &p); !errors.As(err, &syn) {
		t.Errorf("syntax error not a *json.SyntaxError: %v", err)
	}
	var typ *json.UnmarshalTypeError
	if err := Unmarshal([]byte(`{"x":"1"}`), &p); !errors.As(err, &typ) {
		t.Errorf("type error not a *json.UnmarshalTypeError: %v", err)
	}
}

func TestObject(t *testing.T) {
	m, err := Object([]byte(`{"a":"1","b":{"c":null}}`), "a", "b")
	if err != nil || string(m["a"]) != `"1"` || string(m["b"]) != `{"c":null}` {
		t.Fatalf("good input: %v, %v", err, m)
	}
	long := strings.Repeat("k", 100)
	for in, want := range map[string]struct {
		kind error
		text string
	}{
		``:                        {ErrSyntax, "bad JSON"},
		`[1]`:                     {ErrNotObject, "not a JSON object"},
		`"a"`:                     {ErrNotObject, "not a JSON object"},
		`{"a":"1","b":2,"c":3}`:   {ErrUnknownField, `unknown field "c"`},
		`{"` + long + `":1}`:      {ErrUnknownField, `"` + strings.Repeat("k", 40) + `..."`},
		`{"a":"1","a":"2","b":2}`: {ErrDuplicateField, `duplicate field "a"`},
		`{"a":"1"}`:               {ErrMissingField, `missing field "b"`},
		`{"a":null,"b":2}`:        {ErrNullField, `null field "a"`},
		`{"a":"1","b":2} x`:       {ErrTrailingData, "trailing data"},
		`{"a":"1","b":2} {}`:      {ErrTrailingData, "trailing data"},
		`{"a":"1","b":2`:          {ErrSyntax, "unterminated"},
		`{"a":"1","b":}`:          {ErrSyntax, "field \"b\""},
	} {
		_, err := Object([]byte(in), "a", "b")
		if !errors.Is(err, want.kind) {
			t.Errorf("Object(%s) = %v, want %v", in, err, want.kind)
			continue
		}
		if !strings.Contains(err.Error(), want.text) {
			t.Errorf("Object(%s) = %q, want it to contain %q", in, err, want.text)
		}
	}
	var fe *FieldError
	if _, err := Object([]byte(`{"z":1}`), "a"); !errors.As(err, &fe) || fe.Field != "z" || fe.Kind != ErrUnknownField {
		t.Errorf("FieldError: %#v", err)
	}
}

func FuzzObject(f *testing.F) {
	for _, s := range []string{`{"a":"1","b":2}`, `{"a":null}`, `{"a":1,"a":1}`, `[]`, `{"a":"1","b":2} {}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Object(data, "a", "b")
		if err != nil {
			return
		}
		if len(m) != 2 || m["a"] == nil || m["b"] == nil || !json.Valid(data) {
			t.Fatalf("accepted %q as %v", data, m)
		}
	})
}

func TestObjectOptional(t *testing.T) {
	for in, want := range map[string]error{
		`{"a":1}`:          nil,
		`{"a":1,"b":2}`:    nil,
		`{"b":2}`:          ErrMissingField,
		`{"a":1,"b":null}`: ErrNullField,
		`{"a":1,"c":3}`:    ErrUnknownField,
	} {
		if _, err := ObjectOptional([]byte(in), []string{"a"}, []string{"b"}); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", in, err, want)
		}
	}
}

func TestDecode(t *testing.T) {
	type msg struct {
		A int `json:"a"`
	}
	positive := func(m *msg) error {
		if m.A <= 0 {
			return errors.New("a must be positive")
		}
		return nil
	}
	if m, err := Decode([]byte(`{"a":3}`), 16, "test: msg", positive); err != nil || m.A != 3 {
		t.Fatalf("good message: %+v, %v", m, err)
	}
	if m, err := Decode([]byte(`{"a":3}   `), 8, "test: msg", positive); !errors.Is(err, ErrTooLarge) || m.A != 0 || !strings.HasPrefix(err.Error(), "test: msg: too large: 10 bytes, max 8") {
		t.Fatalf("oversize message: %+v, %v", m, err)
	}
	if m, err := Decode([]byte(`{"a":3,"b":1}`), 64, "test: msg", positive); err == nil || m.A != 0 || !strings.HasPrefix(err.Error(), "test: msg: ") {
		t.Fatalf("unknown field: %+v, %v", m, err)
	}
	if m, err := Decode([]byte(`{"a":-1}`), 64, "test: msg", positive); err == nil || err.Error() != "a must be positive" || m.A != 0 {
		t.Fatalf("check failure: %+v, %v (want check's error as it is and a zero value)", m, err)
	}
	if m, err := Decode[msg]([]byte(`{"a":-1}`), 64, "test: msg", nil); err != nil || m.A != -1 {
		t.Fatalf("nil check: %+v, %v", m, err)
	}
}
