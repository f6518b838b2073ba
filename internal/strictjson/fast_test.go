package strictjson

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzObjectFastMatchesDecoder: whenever the fast path accepts an input,
// the decoder path accepts it too, with the same members.
func FuzzObjectFastMatchesDecoder(f *testing.F) {
	for _, s := range []string{
		`{"a":"1","b":2}`, ` { "b" : [1, {"x": "}\"]"}] , "a":{"c":[]} } `, `{"a":"1","b":2}x`, `{"a":"1"}`,
		`{"a":null,"b":1}`, `{"a":1,"a":1,"b":1}`, `{"a\u0062":1,"b":2}`, `{"a":1,"b":2,"c":3}`, `[]`, `{}`,
		`{"a":-1.5e3,"b":true}`, `{"a":"\\","b":"\u00e9"}`, `{"a":1,"b":2} {}`, `{"a":1,"b":`, "{\"\xff\":1,\"b\":2}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := objectFast(data, []string{"a", "b"})
		slow, err := objectSlow(data, []string{"a", "b"}, nil)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("fast path accepted %q, decoder refused: %v", data, err)
		}
		if fmt.Sprint(len(fast)) != fmt.Sprint(len(slow)) {
			t.Fatalf("%q: fast %v, decoder %v", data, fast, slow)
		}
		for k, v := range slow {
			if !bytes.Equal(fast[k], v) {
				t.Fatalf("%q member %q: fast %q, decoder %q", data, k, fast[k], v)
			}
		}
	})
}

func TestObjectFastTakesCommonInput(t *testing.T) {
	for _, s := range []string{`{"a":"1","b":2}`, ` { "b" : [1, {"x": "}\"]"}] , "a":{"c":[]} } `, `{"a":-1.5e3,"b":true}`} {
		m, ok := objectFast([]byte(s), []string{"a", "b"})
		if !ok || len(m) != 2 {
			t.Errorf("%s: fast path not taken (%v, %v)", s, m, ok)
		}
	}
	for _, s := range []string{`{"a":null,"b":1}`, `{"a":1,"a":1,"b":1}`, `{"a\u0062":1,"b":2}`, `{"a":1}`, `{"a":1,"b":2}x`, `[]`} {
		if _, ok := objectFast([]byte(s), []string{"a", "b"}); ok {
			t.Errorf("%s: fast path accepted", s)
		}
	}
}
