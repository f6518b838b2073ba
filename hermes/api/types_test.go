package api

import (
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/payments"
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecodeRevealRequest(f *testing.F) {
	r := []byte("0123456789abcdef0123456789abcdef")
	q := RevealRequest{Provider: common.HexToAddress("0x1"), Hashlock: payments.Hashlock(r)}
	copy(q.R[:], r)
	f.Add(mustJSON(q))
	f.Add([]byte(`{"provider":"0x00"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := DecodeRevealRequest(data)
		if err != nil {
			return
		}
		again, err := DecodeRevealRequest(mustJSON(q))
		if err != nil || *again != *q {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}

func TestErrorCodesHaveStatuses(t *testing.T) {
	for _, c := range []Code{CodeBadRequest, CodeUnsupportedMedia, CodeBadSignature, CodeWrongChain, CodeWrongHermes, CodeNotRegistered, CodeWrongChannel, CodeBadFee,
		CodeAmountDecreased, CodeUnderpaid, CodeInsufficientBalance, CodeReplayConflict, CodeUnrevealedLimit, CodeBadPreimage, CodeNotFound} {
		if s := c.HTTPStatus(); s < 400 || s >= 500 || c.Retryable() {
			t.Errorf("%s: status %d retryable %v", c, s, c.Retryable())
		}
	}
	if CodeUnavailable.HTTPStatus() != 503 || !CodeUnavailable.Retryable() {
		t.Fatal("unavailable must be a retryable 503")
	}
	if CodeRateLimited.HTTPStatus() != 429 || !CodeRateLimited.Retryable() {
		t.Fatal("rate_limited must be a retryable 429")
	}
}

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.8.9.1": true, "::1": true, "localhost": true, "LocalHost": true, "::ffff:127.0.0.1": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "example.com": false, "localhost.example.com": false, "[::1]": false,
	} {
		if got := Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", host, got, want)
		}
	}
}
