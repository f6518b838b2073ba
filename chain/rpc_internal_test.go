package chain

import (
	"strings"
	"testing"
)

func TestParseChainID(t *testing.T) {
	for in, want := range map[string]string{
		`{"jsonrpc":"2.0","id":1,"result":"0x539"}`:              "1337",
		`{"result":"0x0"}`:                                       "error",
		`{"result":"0x1","error":{"code":-32000,"message":"x"}}`: "error",
		`{"id":1}`:          "error",
		`{"result":"1337"}`: "error",
		`{"result":"0x1` + strings.Repeat("0", 70) + `"}`:                  "error",
		`<html>rate limited</html>`:                                        "error",
		`{"jsonrpc":"2.0","error":{"code":-32005,"message":"over quota"}}`: "error",
	} {
		id, err := parseChainID([]byte(in))
		got := "error"
		if err == nil {
			got = id.String()
		}
		if got != want {
			t.Errorf("parseChainID(%s) = %s (%v), want %s", in, got, err, want)
		}
	}
}

func TestLimitExceeded(t *testing.T) {
	for in, want := range map[string]bool{
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"limit exceeded"}}`: true,
		`[{"id":1,"result":"0x1"},{"id":2,"error":{"code":-32005,"message":"x"}}]`:    true,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"-32005"}}`:         false,
		`{"jsonrpc":"2.0","id":1,"result":"-32005"}`:                                  false,
		`{"error":{"code":-32005`: false,
	} {
		if got := limitExceeded([]byte(in)); got != want {
			t.Errorf("limitExceeded(%s) = %v, want %v", in, got, want)
		}
	}
}

// FuzzRPCAnswers: the failover transport's decoders of RPC answers
// (eth_chainId, "limit exceeded") never panic, and a chain id they accept
// is positive.
func FuzzRPCAnswers(f *testing.F) {
	for _, s := range []string{`{"result":"0x539"}`, `{"result":"0x0"}`, `[{"error":{"code":-32005}}]`, `{"error":{"code":-32005,"message":"x"}}`, `null`, `[]`, `[null]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		limitExceeded(data)
		if id, err := parseChainID(data); err == nil && id.Sign() <= 0 {
			t.Fatalf("accepted chain id %s", id)
		}
	})
}
