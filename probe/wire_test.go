package probe

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/internal/keytest"
)

func testKey(t testing.TB) (crypto.PrivKey, peer.ID) { return keytest.PeerKey(t) }

var testNonce = strings.Repeat("ab", NonceSize)

func signedResponse(t testing.TB) (Response, crypto.PrivKey) {
	t.Helper()
	k, checker := testKey(t)
	_, req := testKey(t)
	r := Result{V: Version, Requester: req.String(), Checker: checker.String(), Nonce: testNonce, Reachable: true,
		Path: PathDirect, Addr: "/ip4/198.51.100.1/tcp/4001", RTTMillis: 12, At: time.Now().Unix()}
	sig, err := r.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Result: &r, Sig: sig}, k
}

func TestRequestRoundTrip(t *testing.T) {
	b, err := Request{V: Version, Nonce: testNonce}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRequest(b)
	if err != nil || r.Nonce != testNonce {
		t.Fatalf("got %+v, %v", r, err)
	}
	for _, bad := range []string{
		``, `{}`, `[]`, `{"v":1}`, `{"v":2,"nonce":"` + testNonce + `"}`,
		`{"v":1,"nonce":"abc"}`, `{"v":1,"nonce":"` + strings.Repeat("zz", NonceSize) + `"}`,
		`{"v":1,"nonce":"` + testNonce + `","addrs":["/ip4/10.0.0.1/tcp/1"]}`, // no addresses from the request, ever
		`{"v":1,"nonce":"` + testNonce + `"} x`,
		`{"v":1,"nonce":"` + testNonce + `","pad":"` + strings.Repeat("x", 300) + `"}`,
	} {
		if _, err := DecodeRequest([]byte(bad)); err == nil {
			t.Errorf("DecodeRequest(%q) accepted", bad)
		}
	}
}

func TestResponseRoundTripAndSignature(t *testing.T) {
	resp, k := signedResponse(t)
	b, err := resp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Result.Verify(k.GetPublic(), got.Sig); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// A changed field, another key, and a checker field naming someone
	// else all fail verification.
	changed := *got.Result
	changed.RTTMillis++
	if changed.Verify(k.GetPublic(), got.Sig) == nil {
		t.Error("changed result verified")
	}
	other, _ := testKey(t)
	if got.Result.Verify(other.GetPublic(), got.Sig) == nil {
		t.Error("result verified under another key")
	}
	if _, err := DecodeResponse([]byte(strings.Replace(string(b), `"v":1`, `"v": 1`, 1))); err == nil {
		t.Error("non-canonical result accepted")
	}
	if _, err := DecodeResponse([]byte(`{"refused":"rate limited"}`)); err != nil {
		t.Errorf("refusal: %v", err)
	}
	for _, bad := range []string{`{}`, `{"refused":""}`, `{"refused":"x","sig":"AA=="}`, `{"result":null,"sig":"AA=="}`,
		`{"refused":"` + strings.Repeat("x", MaxTextLen+1) + `"}`} {
		if _, err := DecodeResponse([]byte(bad)); err == nil {
			t.Errorf("DecodeResponse(%q) accepted", bad)
		}
	}
}

func TestResultValidate(t *testing.T) {
	resp, _ := signedResponse(t)
	good := *resp.Result
	for name, mut := range map[string]func(*Result){
		"version":              func(r *Result) { r.V = 0 },
		"requester":            func(r *Result) { r.Requester = "x" },
		"checker":              func(r *Result) { r.Checker = "" },
		"nonce":                func(r *Result) { r.Nonce = hex.EncodeToString([]byte("short")) },
		"reachable no path":    func(r *Result) { r.Path = "" },
		"reachable with error": func(r *Result) { r.Error = "x" },
		"unknown path":         func(r *Result) { r.Path = "teleport" },
		"unreachable no error": func(r *Result) { r.Reachable, r.Path = false, "" },
		"unreachable path":     func(r *Result) { r.Reachable, r.Error = false, "x" },
		"rtt":                  func(r *Result) { r.RTTMillis = -1 },
		"rtt large":            func(r *Result) { r.RTTMillis = MaxRTT.Milliseconds() + 1 },
		"time":                 func(r *Result) { r.At = 0 },
		"long addr":            func(r *Result) { r.Addr = strings.Repeat("a", MaxTextLen+1) },
	} {
		r := good
		mut(&r)
		if r.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDialable(t *testing.T) {
	relay := "/ip4/198.51.100.7/tcp/4001/p2p/12D3KooWGRUVh8YCv7aJXsVugEhMRPrZN9JLjKWrmDs6JNWsaSvH"
	cases := []struct {
		addr         string
		public, priv bool
	}{
		{"/ip4/198.51.100.1/tcp/4001", true, true},
		{"/ip4/198.51.100.1/udp/4001/quic-v1", true, true},
		{"/ip6/2001:db8::1/tcp/4001", true, true},
		{relay + "/p2p-circuit", true, true},
		{"/ip4/127.0.0.1/tcp/4001", false, true},
		{"/ip4/10.1.2.3/tcp/4001", false, true},
		{"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRUVh8YCv7aJXsVugEhMRPrZN9JLjKWrmDs6JNWsaSvH/p2p-circuit", false, true},
		{"/ip4/169.254.169.254/tcp/80", false, false},
		{"/ip4/0.0.0.0/tcp/4001", false, false},
		{"/ip4/224.0.0.1/tcp/4001", false, false},
		{"/dns4/example.com/tcp/4001", false, false},
		{"/ip4/198.51.100.1/udp/4001", false, false},             // plain UDP: not a libp2p transport
		{"/ip4/198.51.100.1/tcp/4001/p2p-circuit", false, false}, // circuit without a relay id
	}
	for _, c := range cases {
		a := ma.StringCast(c.addr)
		if got := len(Dialable([]ma.Multiaddr{a}, false)) == 1; got != c.public {
			t.Errorf("%s public: got %v", c.addr, got)
		}
		if got := len(Dialable([]ma.Multiaddr{a}, true)) == 1; got != c.priv {
			t.Errorf("%s devnet: got %v", c.addr, got)
		}
	}
	many := make([]ma.Multiaddr, 3*MaxDialAddrs)
	for i := range many {
		many[i] = ma.StringCast("/ip4/198.51.100.1/tcp/4001")
	}
	if n := len(Dialable(many, false)); n != MaxDialAddrs {
		t.Errorf("got %d addresses, max %d", n, MaxDialAddrs)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"v":1,"nonce":"` + testNonce + `"}`))
	f.Add([]byte(`{"v":1,"nonce":""}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		enc, err := r.Encode()
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		if _, err := DecodeRequest(enc); err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	resp, _ := signedResponse(f)
	b, err := resp.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"refused":"busy"}`))
	f.Add([]byte(`{"result":{},"sig":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(b)
		if err != nil {
			return
		}
		if (r.Refused == "") == (r.Result == nil) {
			t.Fatal("decoded response is neither a refusal nor a result")
		}
		if _, err := r.Encode(); err != nil {
			t.Fatalf("decoded response does not encode: %v", err)
		}
		if r.Result != nil && r.Result.Validate() != nil {
			t.Fatal("decoded result does not validate")
		}
	})
}
