package sessionproto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
)

// sampleExchange stands for a payments exchange message (this package
// only checks it is a JSON object).
const sampleExchange = `{"promise":{"amount":"1000"},"agreement_total":"1000","signature":"0x00"}`

func signedResume(t testing.TB, paid int64) *Resume {
	t.Helper()
	r := &Resume{
		ChainID:   1337,
		SessionID: SessionID{5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		Provider:  common.HexToAddress("0x00000000000000000000000000000000000000a1"),
		PaidTotal: money.MustAmount(big.NewInt(paid)),
		Nonce:     Nonce{0xbb, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		IssuedAt:  1_790_000_000,
	}
	if paid > 0 {
		r.Exchange = json.RawMessage(sampleExchange)
	}
	if err := r.Sign(testSigner(t, 0x11), time.Unix(1_790_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	return r
}

func resumeSamples(t testing.TB) []Message {
	return []Message{
		signedResume(t, 0),
		signedResume(t, 1000),
		&ResumeAck{SessionID: SessionID{1}, AcceptedTotal: money.MustAmount(big.NewInt(0))},
		&ResumeAck{SessionID: SessionID{1}, AcceptedTotal: money.MustAmount(big.NewInt(123456789))},
	}
}

func TestResumeRoundTrip(t *testing.T) {
	for _, m := range resumeSamples(t) {
		_, got := roundTrip(t, m)
		if r, ok := got.(*Resume); ok {
			if err := r.VerifySignature(); err != nil {
				t.Fatalf("decoded resume does not verify: %v", err)
			}
			if r.Consumer != testSigner(t, 0x11).Address() {
				t.Fatalf("consumer %s", r.Consumer.Hex())
			}
		}
	}
}

func TestResumeDecodeRejects(t *testing.T) {
	good, err := Encode(signedResume(t, 1000))
	if err != nil {
		t.Fatal(err)
	}
	unpaid, err := Encode(signedResume(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		payload string
		kind    error
	}{
		{"unknown field", strings.Replace(string(good), `"chain_id"`, `"chain":1,"chain_id"`, 1), ErrUnknownField},
		{"missing paid total", strings.Replace(string(good), `"paid_total":"1000",`, ``, 1), ErrMissingField},
		{"null exchange", strings.Replace(string(unpaid), `"nonce"`, `"exchange_message":null,"nonce"`, 1), ErrMissingField},
		{"paid without exchange", strings.Replace(string(unpaid), `"paid_total":"0"`, `"paid_total":"5"`, 1), ErrInvalid},
		{"exchange without payment", strings.Replace(string(good), `"paid_total":"1000"`, `"paid_total":"0"`, 1), ErrInvalid},
		{"exchange not an object", strings.Replace(string(good), sampleExchange, `[1]`, 1), ErrInvalid},
		{"zero session", strings.Replace(string(good), `"session_id":"0x0504030201000102030405060708090a"`, `"session_id":"0x00000000000000000000000000000000"`, 1), ErrInvalid},
		{"short nonce", strings.Replace(string(good), `"nonce":"0xbb`, `"nonce":"0x`, 1), ErrInvalid},
		{"negative total", strings.Replace(string(good), `"paid_total":"1000"`, `"paid_total":"-1"`, 1), ErrInvalid},
		{"ack without total", `{"type":"resume_ack","body":{"session_id":"0x01000000000000000000000000000000"}}`, ErrMissingField},
		{"ack zero session", `{"type":"resume_ack","body":{"session_id":"0x00000000000000000000000000000000","accepted_total":"0"}}`, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.payload == string(good) {
				t.Fatal("the edit did not apply")
			}
			_, err := Decode([]byte(tc.payload))
			if !errors.Is(err, ErrMalformed) || !errors.Is(err, tc.kind) {
				t.Fatalf("decode %s: %v, want %v", tc.payload, err, tc.kind)
			}
		})
	}
}

func TestResumeDigestCoversEveryField(t *testing.T) {
	base := signedResume(t, 1000)
	d0 := base.Digest()
	edits := map[string]func(r *Resume){
		"chain":    func(r *Resume) { r.ChainID++ },
		"session":  func(r *Resume) { r.SessionID[15] ^= 1 },
		"consumer": func(r *Resume) { r.Consumer[0] ^= 1 },
		"provider": func(r *Resume) { r.Provider[0] ^= 1 },
		"paid":     func(r *Resume) { r.PaidTotal = money.MustAmount(big.NewInt(1001)) },
		"nonce":    func(r *Resume) { r.Nonce[15] ^= 1 },
		"issuedAt": func(r *Resume) { r.IssuedAt++ },
		"exchange": func(r *Resume) { r.Exchange = json.RawMessage(`{"other":1}`) },
	}
	for name, edit := range edits {
		r := *base
		edit(&r)
		if r.Digest() == d0 {
			t.Errorf("digest does not cover %s", name)
		}
		if name != "consumer" && r.VerifySignature() == nil {
			t.Errorf("signature still verifies after editing %s", name)
		}
	}
	// Not valid as any other signed object: a session request's digest
	// differs even with the same nonce and time.
	if (&SessionRequest{Nonce: base.Nonce, IssuedAt: base.IssuedAt}).Digest() == d0 {
		t.Fatal("resume and request digests collide")
	}
	forged := *base
	forged.Consumer = common.HexToAddress("0x00000000000000000000000000000000000000c3")
	if err := forged.VerifySignature(); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("resume claiming another consumer: %v, want a bad signature", err)
	}
}

func TestReplayGuardNonces(t *testing.T) {
	g := NewReplayGuard(time.Minute)
	r := signedResume(t, 0)
	now := time.Unix(r.IssuedAt, 0)
	if err := g.CheckNonce(r.Nonce, r.IssuedAt, now); err != nil {
		t.Fatal(err)
	}
	if err := g.CheckNonce(r.Nonce, r.IssuedAt, now.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed resume: %v, want ErrReplay", err)
	}
	if err := g.CheckNonce(Nonce{1}, r.IssuedAt, now.Add(2*time.Minute)); !errors.Is(err, ErrStale) {
		t.Fatalf("stale resume: %v, want ErrStale", err)
	}
}

// lossyWriter fails every write while down.
type lossyWriter struct {
	down bool
	got  bytes.Buffer
}

func (l *lossyWriter) Write(p []byte) (int, error) {
	if l.down {
		return 0, errors.New("stream reset")
	}
	return l.got.Write(p)
}

func (l *lossyWriter) SetWriteDeadline(time.Time) error { return nil }

// TestWriterDetachAttach: a resumable Writer that loses its stream
// reports the loss once, refuses writes with ErrDetached while detached
// (even after a partial frame), and writes whole frames again once
// attached to a new stream.
func TestWriterDetachAttach(t *testing.T) {
	ctx := context.Background()
	old := &halfWriter{n: 10}
	w := NewWriter(old, time.Second)
	var lost []DeadlineWriter
	w.DetachOnFailure(func(s DeadlineWriter, err error) { lost = append(lost, s) })
	if err := w.WriteMessage(ctx, &Keepalive{Seq: 1}); !errors.Is(err, ErrDetached) {
		t.Fatalf("failed write: %v, want ErrDetached", err)
	}
	if len(lost) != 1 || lost[0] != old {
		t.Fatalf("loss reported %v, want the old stream once", lost)
	}
	if err := w.WriteMessage(ctx, &Keepalive{Seq: 2}); !errors.Is(err, ErrDetached) {
		t.Fatalf("write while detached: %v, want ErrDetached", err)
	}
	if w.Detach(old) {
		t.Fatal("detached twice")
	}
	next := &lossyWriter{}
	w.Attach(next)
	if err := w.WriteMessage(ctx, &Keepalive{Seq: 3}); err != nil {
		t.Fatalf("write after attach: %v", err)
	}
	r := NewReader(bytesStream{bytes.NewReader(next.got.Bytes())}, time.Second)
	if m, err := r.ReadMessage(ctx); err != nil || m.(*Keepalive).Seq != 3 {
		t.Fatalf("the new stream got %v %v, want keepalive 3 whole", m, err)
	}
	if w.Detach(old) || !w.Detach(next) {
		t.Fatal("Detach must drop only the current stream")
	}
	if len(lost) != 1 {
		t.Fatalf("an explicit Detach reported a loss: %v", lost)
	}
}

// closedWriter is a stream that was closed: it refuses even a deadline,
// as net.Pipe does.
type closedWriter struct{}

func (closedWriter) Write([]byte) (int, error)        { return 0, io.ErrClosedPipe }
func (closedWriter) SetWriteDeadline(time.Time) error { return io.ErrClosedPipe }

// TestWriterDetachOnClosedStream: a resumable Writer whose stream is
// already closed (its deadline refused before any byte is written)
// detaches and reports the loss like a failed write, so the session
// waits for a resume instead of ending on the write error.
func TestWriterDetachOnClosedStream(t *testing.T) {
	w := NewWriter(closedWriter{}, time.Second)
	var lost []DeadlineWriter
	w.DetachOnFailure(func(s DeadlineWriter, err error) { lost = append(lost, s) })
	if err := w.WriteMessage(context.Background(), &Keepalive{Seq: 1}); !errors.Is(err, ErrDetached) || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write on a closed stream: %v, want ErrDetached wrapping the stream's error", err)
	}
	if len(lost) != 1 || lost[0] != (closedWriter{}) {
		t.Fatalf("loss reported %v, want the closed stream once", lost)
	}
	// Without DetachOnFailure the error is the write's, not a detach.
	w = NewWriter(closedWriter{}, time.Second)
	if err := w.WriteMessage(context.Background(), &Keepalive{Seq: 1}); errors.Is(err, ErrDetached) || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write on a closed stream without DetachOnFailure: %v", err)
	}
}
