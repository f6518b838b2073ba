package sessionproto

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/identity/sigtest"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
)

func testSigner(t testing.TB, seed byte) *identity.KeySigner { return keytest.Seeded(t, seed) }

func signedRequest(t testing.TB) *SessionRequest {
	t.Helper()
	req := &SessionRequest{
		ChainID:      1337,
		Provider:     common.HexToAddress("0x00000000000000000000000000000000000000a1"),
		ServiceType:  ServiceWireGuard,
		ProposalSeq:  7,
		Hermes:       common.HexToAddress("0x00000000000000000000000000000000000000b2"),
		PricePerHour: money.MustAmount(big.NewInt(100_000_000_000_000_000)),
		PricePerGiB:  money.MustAmount(new(big.Int).Mul(big.NewInt(3), big.NewInt(1e17))),
		WGPublicKey:  Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32},
		Nonce:        Nonce{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		IssuedAt:     1_790_000_000,
	}
	if err := req.Sign(testSigner(t, 0x11)); err != nil {
		t.Fatal(err)
	}
	return req
}

// sampleICE is an ICE offer as nat/ice encodes one.
const sampleICE = `{"ufrag":"abcdEFGH","pwd":"0123456789abcdefghijklmn","candidates":["1 1 udp 2130706431 25.0.1.2 40000 typ host"]}`

// signedICERequest is a protocol 1.1 request with an ICE offer.
func signedICERequest(t testing.TB) *SessionRequest {
	t.Helper()
	req := signedRequest(t)
	req.ICE = json.RawMessage(sampleICE)
	if err := req.Sign(testSigner(t, 0x11)); err != nil {
		t.Fatal(err)
	}
	return req
}

func sampleMessages(t testing.TB) []Message {
	return []Message{
		signedRequest(t),
		&SessionResponse{
			SessionID:     SessionID{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6},
			ProviderWGKey: Key{0xff, 1},
			Endpoint:      "127.0.0.1:51820",
			ConsumerAddrs: []netip.Prefix{netip.MustParsePrefix("10.182.0.2/32"), netip.MustParsePrefix("fd00::2/128")},
			ProviderAddr:  netip.MustParseAddr("10.182.0.1"),
			DNS:           []netip.Addr{netip.MustParseAddr("10.182.0.1")},
		},
		&Invoice{Invoice: json.RawMessage(`{"agreement_id":"5","agreement_total":"1000","hashlock":"0x01"}`)},
		&ExchangeMessage{ExchangeMessage: json.RawMessage(`{"promise":{"amount":"1000"},"signature":"0x00"}`)},
		&Keepalive{Seq: 42},
		&Destroy{Reason: "consumer disconnected"},
		&Error{Code: CodeOvercharge, Message: "invoice total 120 > fair 100"},
		&Error{Code: CodeCapacity, Message: ""},
		signedICERequest(t),
		&SessionResponse{
			SessionID:     SessionID{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6},
			ProviderWGKey: Key{0xff, 1},
			Endpoint:      "25.0.1.3:51820",
			ConsumerAddrs: []netip.Prefix{netip.MustParsePrefix("10.182.0.2/32")},
			ProviderAddr:  netip.MustParseAddr("10.182.0.1"),
			DNS:           []netip.Addr{},
			ICE:           json.RawMessage(sampleICE),
			ExitIP:        netip.MustParseAddr("25.0.1.3"),
		},
		&Error{Code: CodeQuotaExhausted, Message: "monthly traffic quota of 1 GiB is used up until 2027-01-01"},
		&Error{Code: CodeReadTimeout, Message: "paystream: read: sessionproto: nothing read within the read timeout (35s)"},
		resumeSamples(t)[0], resumeSamples(t)[1], resumeSamples(t)[2], resumeSamples(t)[3],
	}
}

func frame(payload []byte) []byte {
	out := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(out, uint32(len(payload)))
	copy(out[4:], payload)
	return out
}

// roundTrip encodes m, decodes the payload and encodes what it decoded
// again, failing tb unless the two encodings are the same bytes; it
// returns the payload and the decoded message.
func roundTrip(tb testing.TB, m Message) ([]byte, Message) {
	tb.Helper()
	payload, err := Encode(m)
	if err != nil {
		tb.Fatalf("encode %s: %v", m.Type(), err)
	}
	got, err := Decode(payload)
	if err != nil {
		tb.Fatalf("decode %s: %v", payload, err)
	}
	again, err := Encode(got)
	if err != nil || !bytes.Equal(payload, again) {
		tb.Fatalf("re-encoding differs:\n%s\n%s (%v)", payload, again, err)
	}
	return payload, got
}

func TestRoundTripEveryMessage(t *testing.T) {
	for _, m := range sampleMessages(t) {
		t.Run(string(m.Type()), func(t *testing.T) {
			_, got := roundTrip(t, m)
			if got.Type() != m.Type() {
				t.Fatalf("type %s, want %s", got.Type(), m.Type())
			}
			if r, ok := got.(*SessionRequest); ok {
				if err := r.VerifySignature(); err != nil {
					t.Fatalf("signature after round trip: %v", err)
				}
				want := m.(*SessionRequest)
				if r.PricePerGiB.Int().Cmp(want.PricePerGiB.Int()) != 0 || r.WGPublicKey != want.WGPublicKey || r.Consumer != want.Consumer {
					t.Fatalf("fields changed: %+v vs %+v", r, want)
				}
			}
			if r, ok := got.(*SessionResponse); ok && !reflect.DeepEqual(r, m) {
				t.Fatalf("response changed: %+v vs %+v", r, m)
			}
		})
	}
}

func TestStreamRoundTrip(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	msgs := sampleMessages(t)
	errc := make(chan error, 1)
	go func() {
		w := NewWriter(a, time.Second)
		for _, m := range msgs {
			if err := w.WriteMessage(context.Background(), m); err != nil {
				errc <- err
				return
			}
		}
		errc <- a.Close()
	}()
	r := NewReader(b, 5*time.Second)
	for i := range msgs {
		m, err := r.ReadMessage(context.Background())
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.Type() != msgs[i].Type() {
			t.Fatalf("message %d: type %s, want %s", i, m.Type(), msgs[i].Type())
		}
	}
	if _, err := r.ReadMessage(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v, want io.EOF", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// mutateBody re-encodes a valid message's envelope after edit changes its
// body as a generic JSON map.
func mutateBody(t *testing.T, m Message, edit func(body map[string]any)) []byte {
	t.Helper()
	payload, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(payload, &env); err != nil {
		t.Fatal(err)
	}
	body := env["body"].(map[string]any)
	edit(body)
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeRejectsMalformed(t *testing.T) {
	req := signedRequest(t)
	resp := sampleMessages(t)[1]
	good, err := Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		payload []byte
		kind    error
		reason  string
	}{
		{"empty", nil, ErrFrameTooLarge, "payload is 0 bytes"},
		{"not json", []byte("hello"), ErrInvalid, "not JSON"},
		{"array envelope", []byte(`[1]`), ErrInvalid, "not a JSON object"},
		{"unknown type", []byte(`{"type":"teleport","body":{}}`), ErrUnknownType, "teleport"},
		{"envelope unknown field", []byte(`{"type":"keepalive","body":{"seq":1},"x":1}`), ErrUnknownField, `"x"`},
		{"envelope key case", []byte(`{"Type":"keepalive","body":{"seq":1}}`), ErrUnknownField, `"Type"`},
		{"envelope missing body", []byte(`{"type":"keepalive"}`), ErrMissingField, `"body"`},
		{"envelope duplicate type", []byte(`{"type":"keepalive","type":"destroy","body":{"seq":1}}`), ErrDuplicateField, `"type"`},
		{"body null", []byte(`{"type":"keepalive","body":null}`), ErrMissingField, `"body" is null`},
		{"body unknown field", []byte(`{"type":"keepalive","body":{"seq":1,"extra":true}}`), ErrUnknownField, `"extra"`},
		{"body missing field", []byte(`{"type":"keepalive","body":{}}`), ErrMissingField, `"seq"`},
		{"negative seq", []byte(`{"type":"keepalive","body":{"seq":-1}}`), ErrInvalid, "seq"},
		{"float seq", []byte(`{"type":"keepalive","body":{"seq":1.5}}`), ErrInvalid, "seq"},
		{"zero seq", []byte(`{"type":"keepalive","body":{"seq":0}}`), ErrInvalid, "seq: must be positive"},
		{"trailing garbage", append(append([]byte{}, good...), []byte(" {}")...), ErrTrailingData, "after the JSON object"},
		{"trailing garbage in body", []byte(`{"type":"keepalive","body":{"seq":1}x}`), ErrInvalid, "bad JSON"},
		{"unknown error code", []byte(`{"type":"error","body":{"code":"oops","message":""}}`), ErrInvalid, "unknown error code"},
		{"destroy empty reason", []byte(`{"type":"destroy","body":{"reason":""}}`), ErrInvalid, "reason"},
		{"destroy control char", []byte(`{"type":"destroy","body":{"reason":"a\u0000b"}}`), ErrInvalid, "control character"},
		{"invoice not object", []byte(`{"type":"invoice","body":{"invoice":[1,2]}}`), ErrInvalid, "not a JSON object"},
		{"invoice too large", []byte(`{"type":"invoice","body":{"invoice":{"a":"` + strings.Repeat("x", MaxPaymentJSON) + `"}}}`), ErrInvalid, "more than"},
		{"negative price", mutateBody(t, req, func(b map[string]any) { b["price_per_hour"] = "-1" }), ErrInvalid, "negative"},
		{"price as number", mutateBody(t, req, func(b map[string]any) { b["price_per_gib"] = 5 }), ErrInvalid, "decimal string"},
		{"price leading zero", mutateBody(t, req, func(b map[string]any) { b["price_per_gib"] = "05" }), ErrInvalid, "leading zero"},
		{"price exponent", mutateBody(t, req, func(b map[string]any) { b["price_per_gib"] = "1e18" }), ErrInvalid, "not a decimal integer"},
		{"price over uint256", mutateBody(t, req, func(b map[string]any) { b["price_per_gib"] = "1" + strings.Repeat("0", 78) }), ErrInvalid, "digits"},
		{"price 2^256", mutateBody(t, req, func(b map[string]any) {
			b["price_per_gib"] = new(big.Int).Lsh(big.NewInt(1), 256).String()
		}), ErrInvalid, "256 bits"},
		{"wg key short", mutateBody(t, req, func(b map[string]any) { b["wg_public_key"] = "AQID" }), ErrInvalid, "3 bytes, want 32"},
		{"wg key not base64", mutateBody(t, req, func(b map[string]any) { b["wg_public_key"] = "!!!" }), ErrInvalid, "base64"},
		{"wg key zero", mutateBody(t, req, func(b map[string]any) { b["wg_public_key"] = Key{}.String() }), ErrInvalid, "all zeros"},
		{"signature short", mutateBody(t, req, func(b map[string]any) { b["signature"] = "0x0102" }), ErrInvalid, "signature: 2 bytes"},
		{"nonce short", mutateBody(t, req, func(b map[string]any) { b["nonce"] = "0x0102" }), ErrInvalid, "nonce"},
		{"address bad", mutateBody(t, req, func(b map[string]any) { b["hermes"] = "0x1234" }), ErrInvalid, "hermes"},
		{"zero chain", mutateBody(t, req, func(b map[string]any) { b["chain_id"] = 0 }), ErrInvalid, "chain_id"},
		{"missing consumer", mutateBody(t, req, func(b map[string]any) { delete(b, "consumer") }), ErrMissingField, `"consumer"`},
		{"service type upper", mutateBody(t, req, func(b map[string]any) { b["service_type"] = "WireGuard" }), ErrInvalid, "service_type"},
		{"endpoint no port", mutateBody(t, resp, func(b map[string]any) { b["endpoint"] = "127.0.0.1" }), ErrInvalid, "endpoint"},
		{"endpoint port 0", mutateBody(t, resp, func(b map[string]any) { b["endpoint"] = "127.0.0.1:0" }), ErrInvalid, "port"},
		{"endpoint port 70000", mutateBody(t, resp, func(b map[string]any) { b["endpoint"] = "127.0.0.1:70000" }), ErrInvalid, "port"},
		{"no consumer addrs", mutateBody(t, resp, func(b map[string]any) { b["consumer_addrs"] = []string{} }), ErrInvalid, "consumer_addrs"},
		{"bad consumer addr", mutateBody(t, resp, func(b map[string]any) { b["consumer_addrs"] = []string{"10.0.0.300/32"} }), ErrInvalid, ""},
		{"dns null", mutateBody(t, resp, func(b map[string]any) { b["dns"] = nil }), ErrMissingField, `"dns" is null`},
		{"too many dns", mutateBody(t, resp, func(b map[string]any) {
			b["dns"] = []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5"}
		}), ErrInvalid, "dns"},
		{"provider addr empty", mutateBody(t, resp, func(b map[string]any) { b["provider_addr"] = "" }), ErrInvalid, "provider_addr"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode(c.payload)
			if err == nil {
				t.Fatalf("accepted %s as %+v", c.payload, m)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("error %v does not wrap %v", err, c.kind)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("error %q does not give reason %q", err, c.reason)
			}
		})
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	bad := []Message{
		&Keepalive{},
		&Destroy{Reason: strings.Repeat("x", MaxReasonLen+1)},
		&Error{Code: "nope"},
		&SessionRequest{},
		&SessionResponse{SessionID: SessionID{1}, ProviderWGKey: Key{1}, Endpoint: "h:1",
			ConsumerAddrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}, ProviderAddr: netip.MustParseAddr("10.0.0.1")}, // nil DNS
		&SessionResponse{SessionID: SessionID{1}, ProviderWGKey: Key{1}, Endpoint: "h:1", DNS: []netip.Addr{},
			ConsumerAddrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}, ProviderAddr: netip.MustParseAddr("10.0.0.1"),
			ExitIP: netip.IPv4Unspecified()},
		&Invoice{},
		(*Keepalive)(nil),
	}
	for _, m := range bad {
		if _, err := Encode(m); err == nil {
			t.Errorf("Encode(%#v) succeeded", m)
		}
	}
}

func TestFrameErrors(t *testing.T) {
	okPayload, err := Encode(&Keepalive{Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	oversized := make([]byte, 4)
	binary.BigEndian.PutUint32(oversized, MaxFrameSize+1)
	zero := make([]byte, 4)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"oversized length", oversized, ErrFrameTooLarge},
		{"zero length", zero, ErrFrameTooLarge},
		{"truncated header", []byte{0, 0}, ErrTruncated},
		{"truncated payload", frame(okPayload)[:len(okPayload)], ErrTruncated},
		{"clean eof", nil, io.EOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readFrame(bytes.NewReader(c.in), make([]byte, 4))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// A frame whose payload is fine reads back whole.
	got, err := readFrame(bytes.NewReader(frame(okPayload)), make([]byte, 4))
	if err != nil || !bytes.Equal(got, okPayload) {
		t.Fatalf("good frame: %q, %v", got, err)
	}
}

func TestOversizedFrameRejectedBeforeRead(t *testing.T) {
	// The reader must reject on the length prefix alone, without waiting
	// for (or allocating) the announced payload.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		hdr := make([]byte, 4)
		binary.BigEndian.PutUint32(hdr, 1<<31)
		_, _ = a.Write(hdr)
	}()
	_, err := NewReader(b, 2*time.Second).ReadMessage(context.Background())
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
}

func TestSignatureChecks(t *testing.T) {
	req := signedRequest(t)
	if err := req.VerifySignature(); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	if req.Consumer != testSigner(t, 0x11).Address() {
		t.Fatalf("Sign did not set consumer")
	}

	t.Run("tampered price", func(t *testing.T) {
		r := *req
		r.PricePerGiB = money.MustAmount(big.NewInt(1))
		if err := r.VerifySignature(); !errors.Is(err, identity.ErrBadSignature) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong signer", func(t *testing.T) {
		r := *req
		r.Consumer = testSigner(t, 0x22).Address()
		if err := r.VerifySignature(); !errors.Is(err, identity.ErrBadSignature) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("signed by other key", func(t *testing.T) {
		r := *req
		r.Signature = nil
		if err := r.Sign(testSigner(t, 0x22)); err != nil {
			t.Fatal(err)
		}
		r.Consumer = req.Consumer // claims to be the first consumer
		if err := r.VerifySignature(); !errors.Is(err, identity.ErrBadSignature) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("other chain", func(t *testing.T) {
		r := *req
		r.ChainID = 1
		if err := r.VerifySignature(); !errors.Is(err, identity.ErrBadSignature) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad v", func(t *testing.T) {
		r := *req
		r.Signature = append([]byte{}, req.Signature...)
		r.Signature[64] = 1
		if err := r.VerifySignature(); !errors.Is(err, identity.ErrBadSignature) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("high s", func(t *testing.T) {
		r := *req
		r.Signature = sigtest.HighS(req.Signature)
		if err := r.VerifySignature(); !errors.Is(err, identity.ErrBadSignature) || !strings.Contains(err.Error(), "upper half") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("tampered on the wire", func(t *testing.T) {
		payload := mutateBody(t, req, func(b map[string]any) { b["proposal_seq"] = 8 })
		m, err := Decode(payload)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if err := m.(*SessionRequest).VerifySignature(); !errors.Is(err, identity.ErrBadSignature) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestDigestCoversEveryField(t *testing.T) {
	base := signedRequest(t)
	d0 := base.Digest()
	edits := map[string]func(r *SessionRequest){
		"chain":    func(r *SessionRequest) { r.ChainID++ },
		"consumer": func(r *SessionRequest) { r.Consumer[0] ^= 1 },
		"provider": func(r *SessionRequest) { r.Provider[0] ^= 1 },
		"service":  func(r *SessionRequest) { r.ServiceType = "wireguard2" },
		"seq":      func(r *SessionRequest) { r.ProposalSeq++ },
		"hermes":   func(r *SessionRequest) { r.Hermes[0] ^= 1 },
		"perHour":  func(r *SessionRequest) { r.PricePerHour = money.MustAmount(big.NewInt(1)) },
		"perGiB":   func(r *SessionRequest) { r.PricePerGiB = money.MustAmount(big.NewInt(1)) },
		"wgkey":    func(r *SessionRequest) { r.WGPublicKey[31] ^= 1 },
		"nonce":    func(r *SessionRequest) { r.Nonce[15] ^= 1 },
		"issuedAt": func(r *SessionRequest) { r.IssuedAt++ },
		"ice":      func(r *SessionRequest) { r.ICE = json.RawMessage(sampleICE) },
	}
	for name, edit := range edits {
		r := *base
		edit(&r)
		if r.Digest() == d0 {
			t.Errorf("digest does not cover %s", name)
		}
	}
}

func TestICEOffer(t *testing.T) {
	req := signedICERequest(t)
	d := req.Digest()
	other := *req
	other.ICE = json.RawMessage(strings.Replace(sampleICE, "25.0.1.2", "25.0.1.9", 1))
	if other.Digest() == d {
		t.Fatal("digest does not cover the ICE offer's candidates")
	}
	// The digest is over the wire form: whitespace the encoder removes
	// does not change it, so a signature survives the round trip.
	spaced := *req
	spaced.ICE = json.RawMessage(strings.ReplaceAll(sampleICE, ",", " , "))
	if spaced.Digest() != d {
		t.Fatal("digest depends on whitespace the wire form does not carry")
	}
	payload, err := Encode(&spaced)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.(*SessionRequest).VerifySignature(); err != nil {
		t.Fatalf("signature after the round trip: %v", err)
	}
	// Tampering with the offer breaks the signature.
	tampered := strings.Replace(string(payload), "25.0.1.2", "25.0.1.9", 1)
	m, err := Decode([]byte(tampered))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.(*SessionRequest).VerifySignature(); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("tampered offer: %v, want a bad signature", err)
	}

	bad := map[string]json.RawMessage{
		"array":     json.RawMessage(`["x"]`),
		"string":    json.RawMessage(`"x"`),
		"empty":     json.RawMessage(` `),
		"truncated": json.RawMessage(`{"ufrag":`),
		"oversize":  json.RawMessage(`{"x":"` + strings.Repeat("a", MaxICEJSON) + `"}`),
	}
	for name, raw := range bad {
		r := *req
		r.ICE = raw
		if err := r.Validate(); err == nil {
			t.Errorf("request with %s ICE validated", name)
		}
		resp := sampleMessages(t)[9].(*SessionResponse)
		resp.ICE = raw
		if err := resp.Validate(); err == nil {
			t.Errorf("response with %s ICE validated", name)
		}
	}
	// ICE is optional on the wire (1.0 peers never send it); a null is not.
	if _, err := Decode([]byte(strings.Replace(string(payload), `"ice":`+sampleICE+`,`, ``, 1))); err != nil {
		t.Fatalf("request without ice: %v", err)
	}
	if _, err := Decode([]byte(strings.Replace(string(payload), `"ice":`+sampleICE, `"ice":null`, 1))); !errors.Is(err, ErrMissingField) {
		t.Fatalf("ice null: %v, want ErrMissingField", err)
	}
}

func TestReplayGuard(t *testing.T) {
	req := signedRequest(t)
	issued := time.Unix(req.IssuedAt, 0)
	g := NewReplayGuard(2 * time.Minute)
	if err := g.Check(req, issued.Add(time.Minute)); err != nil {
		t.Fatalf("fresh request: %v", err)
	}
	if err := g.Check(req, issued.Add(time.Minute+time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if err := g.Check(req, issued.Add(3*time.Minute)); !errors.Is(err, ErrStale) {
		t.Fatalf("stale: %v", err)
	}
	if err := g.Check(req, issued.Add(-3*time.Minute)); !errors.Is(err, ErrStale) {
		t.Fatalf("future: %v", err)
	}
	other := *req
	other.Nonce[0] ^= 0xff
	if err := g.Check(&other, issued); err != nil {
		t.Fatalf("other nonce: %v", err)
	}
	// A full guard refuses new nonces until old ones expire.
	g.Limit = 2
	third := *req
	third.Nonce[1] ^= 0xff
	if err := g.Check(&third, issued); !errors.Is(err, ErrGuardFull) {
		t.Fatalf("full guard: %v", err)
	}
	g.Limit = DefaultReplayLimit
	// Old nonces are forgotten once their requests can no longer be fresh.
	g.Check(&SessionRequest{IssuedAt: req.IssuedAt + 1000, Nonce: Nonce{1}}, issued.Add(1000*time.Second))
	if n := len(g.seen); n != 1 {
		t.Fatalf("guard keeps %d nonces, want 1", n)
	}
}

func TestReadDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	r := NewReader(b, 50*time.Millisecond)
	start := time.Now()
	_, err := r.ReadMessage(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, ErrReadTimeout) {
		t.Fatalf("got %v, want a timeout wrapping ErrReadTimeout", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("read deadline not honoured")
	}

	// A peer that sends half a frame and stalls also times out.
	go func() { _, _ = a.Write([]byte{0, 0, 0, 10, '{'}) }()
	_, err = r.ReadMessage(context.Background())
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, ErrReadTimeout) {
		t.Fatalf("stalled frame: got %v, want a timeout wrapping ErrReadTimeout", err)
	}

	// A context's earlier deadline is the caller's, not the peer's
	// silence.
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := NewReader(d, time.Hour).ReadMessage(ctx); err == nil || errors.Is(err, ErrReadTimeout) {
		t.Fatalf("context deadline: got %v, want an error not wrapping ErrReadTimeout", err)
	}
}

func TestReadCancelledByContext(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	r := NewReader(b, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := r.ReadMessage(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// The reader is usable with a fresh context afterwards (the cancel did
	// not leave an expired deadline behind).
	go func() {
		_ = NewWriter(a, time.Second).WriteMessage(context.Background(), &Keepalive{Seq: 1})
	}()
	m, err := r.ReadMessage(context.Background())
	if err != nil || m.(*Keepalive).Seq != 1 {
		t.Fatalf("after cancel: %v %v", m, err)
	}
}

func TestWriteDeadline(t *testing.T) {
	a, b := net.Pipe() // nobody reads b
	defer a.Close()
	defer b.Close()
	err := NewWriter(a, 50*time.Millisecond).WriteMessage(context.Background(), &Keepalive{Seq: 1})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a timeout", err)
	}
}

func TestErrorIsGoError(t *testing.T) {
	var err error = &Error{Code: CodePaymentTimeout, Message: "no payment for 30s"}
	var se *Error
	if !errors.As(err, &se) || se.Code != CodePaymentTimeout {
		t.Fatalf("errors.As failed: %v", err)
	}
	if !strings.Contains(err.Error(), "payment_timeout") {
		t.Fatalf("error text %q lacks code", err)
	}
	// A code whose name does not say who went silent is told in words.
	rt := &Error{Code: CodeReadTimeout, Message: "nothing read for 35s"}
	if got, want := rt.Error(), "session error read_timeout (the peer heard nothing from this side within its read timeout): nothing read for 35s"; got != want {
		t.Fatalf("read_timeout error text %q, want %q", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages(f) {
		p, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add([]byte(`{"type":"keepalive","body":{"seq":1,"seq":2}}`))
	f.Add([]byte(`{"type":"error","body":{"code":"internal","message":"\ud800"}}`))
	f.Add([]byte(`{"type":"error","body":{"code":"read_timeout","message":""}}`))
	f.Add([]byte(`{"type":"error","body":{"code":"read_timeout ","message":""}}`))
	f.Add([]byte(`{"type":"session_response","body":{}}`))
	f.Add([]byte(`{"type":"invoice","body":{"invoice":{}}} `))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := Decode(payload)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded message fails Validate: %v", err)
		}
		// Whatever decodes re-encodes, and the re-encoding decodes to the
		// same canonical bytes.
		roundTrip(t, m)
		// The stream reader accepts the same bytes framed.
		if _, err := readFrame(bytes.NewReader(frame(payload)), make([]byte, 4)); err != nil {
			t.Fatalf("frame of a valid payload: %v", err)
		}
	})
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

// halfWriter accepts only the first n bytes of a write, then fails.
type halfWriter struct {
	n   int
	got []byte
}

func (h *halfWriter) Write(p []byte) (int, error) {
	k := min(h.n, len(p))
	h.got = append(h.got, p[:k]...)
	if k < len(p) {
		return k, errors.New("connection reset")
	}
	return k, nil
}

func (h *halfWriter) SetWriteDeadline(time.Time) error { return nil }

func TestPartialWriteBreaksWriter(t *testing.T) {
	hw := &halfWriter{n: 10}
	w := NewWriter(hw, time.Second)
	if err := w.WriteMessage(context.Background(), &Keepalive{Seq: 1}); err == nil {
		t.Fatal("partial write reported success")
	}
	err := w.WriteMessage(context.Background(), &Destroy{Reason: "bye"})
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("write after a partial frame: %v, want ErrBroken", err)
	}
	if len(hw.got) != 10 {
		t.Fatalf("%d bytes reached the stream after it broke, want the first 10 only", len(hw.got))
	}
	// A write that fails before sending anything leaves the stream usable.
	zero := &halfWriter{n: 0}
	w = NewWriter(zero, time.Second)
	_ = w.WriteMessage(context.Background(), &Keepalive{Seq: 1})
	zero.n = 1 << 20
	if err := w.WriteMessage(context.Background(), &Keepalive{Seq: 2}); err != nil {
		t.Fatalf("write after a failed, empty write: %v", err)
	}
}
