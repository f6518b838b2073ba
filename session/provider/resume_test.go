package provider

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
)

// serveOn runs the manager on a fresh pipe that negotiated proto, sends
// first on it and returns the provider's answer, the consumer's end and
// its reader and writer; serve's result arrives on done.
func (e *env) serveOn(t *testing.T, proto protocol.ID, first sessionproto.Message) (sessionproto.Message, net.Conn, *sessionproto.Reader, *sessionproto.Writer, chan error) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	done := make(chan error, 1)
	go func() {
		err := e.m.serve(e.m.ctx, &countingStream{sessionStream: a, proto: proto})
		a.Close()
		done <- err
	}()
	r, w := sessionproto.NewReader(b, 5*time.Second), sessionproto.NewWriter(b, 5*time.Second)
	if err := w.WriteMessage(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	msg, err := r.ReadMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return msg, b, r, w, done
}

// drain reads a stream until it ends.
func drain(r *sessionproto.Reader) {
	for {
		if _, err := r.ReadMessage(context.Background()); err != nil {
			return
		}
	}
}

// openResumable opens a session on protocol 1.2 and returns its id.
func (e *env) openResumable(t *testing.T) (sessionproto.SessionID, net.Conn, *sessionproto.Reader, chan error) {
	t.Helper()
	msg, conn, r, _, done := e.serveOn(t, sessionproto.ProtocolResume, e.request(t))
	resp, ok := msg.(*sessionproto.SessionResponse)
	if !ok {
		t.Fatalf("session request answered %v", msg)
	}
	return resp.SessionID, conn, r, done
}

func (e *env) resumeMsg(t *testing.T, s identity.Signer, id sessionproto.SessionID) *sessionproto.Resume {
	t.Helper()
	res := &sessionproto.Resume{ChainID: 1337, SessionID: id, Provider: e.proposal.ProviderID, PaidTotal: money.MustAmount(big.NewInt(0))}
	if err := res.Sign(s, time.Now()); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestResumeRefusals: a resume is accepted only on protocol 1.2, signed
// by the session's own consumer, fresh, never seen before, for a running
// resumable session, and at most sessionResumeBurst at once per session;
// every refusal is an Error with a code and a reason, and leaves the
// session running on its stream. An accepted one moves the session onto
// the new stream and closes the old.
func TestResumeRefusals(t *testing.T) {
	e := newEnv(t, fakeFunds{registered: true, balance: big.NewInt(1e18)}, true)
	id, oldConn, oldR, done := e.openResumable(t)
	mallory := keytest.Signer(t)
	forged := e.resumeMsg(t, mallory, id)
	forged.Consumer = e.consumer.Address() // claims to be the consumer, signed by another key
	stale := &sessionproto.Resume{ChainID: 1337, SessionID: id, Provider: e.proposal.ProviderID, PaidTotal: money.MustAmount(big.NewInt(0)),
		IssuedAt: time.Now().Add(-10 * time.Minute).Unix()}
	if err := stale.Sign(e.consumer, time.Now()); err != nil {
		t.Fatal(err)
	}
	badPayment := &sessionproto.Resume{ChainID: 1337, SessionID: id, Provider: e.proposal.ProviderID, PaidTotal: money.MustAmount(big.NewInt(5)),
		Exchange: json.RawMessage(`{"agreement_total":"5"}`)}
	if err := badPayment.Sign(e.consumer, time.Now()); err != nil {
		t.Fatal(err)
	}
	otherChain := e.resumeMsg(t, e.consumer, id)
	otherChain.ChainID = 1
	if err := otherChain.Sign(e.consumer, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		proto  protocol.ID
		res    *sessionproto.Resume
		code   sessionproto.ErrorCode
		reason string
	}{
		{"protocol 1.1", sessionproto.ProtocolICE, e.resumeMsg(t, e.consumer, id), sessionproto.CodeBadRequest, "needs protocol"},
		{"forged signature", sessionproto.ProtocolResume, forged, sessionproto.CodeBadSignature, "signature"},
		{"another consumer", sessionproto.ProtocolResume, e.resumeMsg(t, mallory, id), sessionproto.CodeBadRequest, ErrNoSuchSession.Error()},
		{"unknown session", sessionproto.ProtocolResume, e.resumeMsg(t, e.consumer, sessionproto.SessionID{1}), sessionproto.CodeBadRequest, ErrNoSuchSession.Error()},
		{"stale", sessionproto.ProtocolResume, stale, sessionproto.CodeBadRequest, "stale"},
		{"other chain", sessionproto.ProtocolResume, otherChain, sessionproto.CodeBadRequest, "another chain"},
		{"bad exchange message", sessionproto.ProtocolResume, badPayment, sessionproto.CodeBadRequest, "exchange message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, _, _, _, rdone := e.serveOn(t, tc.proto, tc.res)
			perr, ok := msg.(*sessionproto.Error)
			if !ok || perr.Code != tc.code || !strings.Contains(perr.Message, tc.reason) {
				t.Fatalf("answered %v, want %s mentioning %q", msg, tc.code, tc.reason)
			}
			if err := <-rdone; !errors.As(err, &perr) {
				t.Fatalf("serve returned %v", err)
			}
		})
	}
	// Still on the first stream.
	if _, err := oldR.ReadMessage(context.Background()); err != nil {
		t.Fatalf("the session's stream after refused resumes: %v", err)
	}

	good := e.resumeMsg(t, e.consumer, id)
	msg, _, newR, newW, rdone := e.serveOn(t, sessionproto.ProtocolResume, good)
	ack, ok := msg.(*sessionproto.ResumeAck)
	if !ok || ack.SessionID != id || ack.AcceptedTotal.Int().Sign() != 0 {
		t.Fatalf("valid resume answered %v", msg)
	}
	// The session goes on there: its first invoice, unpaid (this
	// consumer never pays), is sent again first. A keepalive may come
	// before it (every 50 ms here, and the session's keepalive loop
	// writes on the new stream as soon as it is attached).
	m, err := newR.ReadMessage(context.Background())
	for err == nil && m.Type() == sessionproto.TypeKeepalive {
		m, err = newR.ReadMessage(context.Background())
	}
	if err != nil || m.Type() != sessionproto.TypeInvoice {
		t.Fatalf("the resumed stream carries %v %v, want the unpaid invoice again", m, err)
	}
	// The old stream is closed under the consumer.
	_ = oldConn.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		if _, err := oldR.ReadMessage(context.Background()); err != nil {
			if errors.Is(err, sessionproto.ErrMalformed) && !errors.Is(err, sessionproto.ErrTruncated) {
				t.Fatalf("old stream: %v", err)
			}
			break
		}
	}
	if st := e.m.Sessions(); len(st) != 1 || st[0].Resumes != 1 {
		t.Fatalf("sessions %+v, want one resumed once", st)
	}

	// The same resume again is a replay.
	msg, _, _, _, _ = e.serveOn(t, sessionproto.ProtocolResume, good)
	if perr, ok := msg.(*sessionproto.Error); !ok || perr.Code != sessionproto.CodeBadRequest || !strings.Contains(perr.Message, "replayed") {
		t.Fatalf("replayed resume answered %v", msg)
	}
	go drain(newR)
	// A session takes a few resumes at once, then asks to wait.
	var limited *sessionproto.Error
	for i := 0; i < sessionResumeBurst+1 && limited == nil; i++ {
		msg, _, r, w, _ := e.serveOn(t, sessionproto.ProtocolResume, e.resumeMsg(t, e.consumer, id))
		switch v := msg.(type) {
		case *sessionproto.ResumeAck:
			newR, newW = r, w
			go drain(r) // a live consumer reads its stream
		case *sessionproto.Error:
			limited = v
		}
	}
	if limited == nil || limited.Code != sessionproto.CodeCapacity {
		t.Fatalf("%d resumes in a row: last answer %v, want capacity", sessionResumeBurst+1, limited)
	}
	_ = rdone
	if err := newW.WriteMessage(context.Background(), &sessionproto.Destroy{Reason: "user"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, paystream.ErrPeerEnded) {
			t.Fatalf("session ended with %v, want the consumer's destroy", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the resumed session did not end on the consumer's destroy")
	}
	if e.exit.count() != 0 {
		t.Fatal("peer left on the exit")
	}
}

// TestSilentConsumerNoResume: a 1.2 session whose consumer goes silent
// (it reads, and writes nothing) loses its stream to the read timeout;
// without a resume it ends after the grace, and the error and the
// history say the consumer went silent (the read timeout), not only that
// it did not resume.
func TestSilentConsumerNoResume(t *testing.T) {
	e := newEnv(t, funded, true, func(c *Config) { c.ReadTimeout, c.ResumeGrace = 200*time.Millisecond, 200*time.Millisecond })
	_, _, r, done := e.openResumable(t)
	go func() { // the consumer reads until the provider drops the stream
		for {
			if _, err := r.ReadMessage(context.Background()); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, paystream.ErrStreamLost) || !errors.Is(err, sessionproto.ErrReadTimeout) {
			t.Fatalf("serve returned %v, want the stream lost to the read timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the silent session did not end")
	}
	rs, err := e.hist.List(context.Background())
	if err != nil || len(rs) != 1 || !strings.Contains(rs[0].Reason, "did not resume") || !strings.Contains(rs[0].Reason, "nothing read within the read timeout") {
		t.Fatalf("history %+v %v, want the read timeout as the reason", rs, err)
	}
}

// TestNoResumeEndsSession: a 1.2 session whose stream is lost keeps its
// tunnel peer for the resume grace and then ends (ErrStreamLost, peer
// removed, history says why); a 1.1 session ends with its stream at once,
// as before.
func TestNoResumeEndsSession(t *testing.T) {
	const grace = 600 * time.Millisecond
	e := newEnv(t, fakeFunds{registered: true, balance: big.NewInt(1e18)}, true, func(c *Config) { c.ResumeGrace = grace })
	_, conn, _, done := e.openResumable(t)
	lost := time.Now()
	conn.Close()
	select {
	case err := <-done:
		t.Fatalf("the session ended %v after its stream, within the resume grace: %v", time.Since(lost), err)
	case <-time.After(grace / 2):
	}
	if e.exit.count() != 1 || len(e.m.Sessions()) != 1 {
		t.Fatal("the tunnel peer was removed while the session waited for a resume")
	}
	select {
	case err := <-done:
		if !errors.Is(err, paystream.ErrStreamLost) || time.Since(lost) < grace {
			t.Fatalf("ended after %v with %v, want ErrStreamLost after the %v grace", time.Since(lost), err, grace)
		}
	case <-time.After(10 * grace):
		t.Fatal("the session outlived its resume grace")
	}
	if e.exit.count() != 0 || len(e.m.Sessions()) != 0 {
		t.Fatal("peer or session left behind")
	}
	rs, err := e.hist.List(context.Background())
	if err != nil || len(rs) != 1 || !strings.Contains(rs[0].Reason, "did not resume") {
		t.Fatalf("history %+v %v, want the reason", rs, err)
	}

	// Protocol 1.1: no resume, the session ends with its stream (well
	// within a long grace).
	e = newEnv(t, fakeFunds{registered: true, balance: big.NewInt(1e18)}, true, func(c *Config) { c.ResumeGrace = time.Minute })
	msg, conn, _, _, done := e.serveOn(t, sessionproto.ProtocolICE, e.request(t))
	if _, ok := msg.(*sessionproto.SessionResponse); !ok {
		t.Fatalf("request answered %v", msg)
	}
	conn.Close()
	select {
	case err := <-done:
		// The closed stream, seen by the reader (peer ended) or by an
		// invoice's write first: either way not a wait for a resume.
		if err == nil || errors.Is(err, paystream.ErrStreamLost) {
			t.Fatalf("1.1 session ended with %v, want the closed stream", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a 1.1 session waited for a resume")
	}
}

// TestResumeFloodLimited: resumes cost the provider a signature check,
// and anyone can send them: past the manager's budget they are refused
// with capacity before anything is verified. (The budget is made tiny
// here so that the test does not depend on the machine's speed.)
func TestResumeFloodLimited(t *testing.T) {
	e := newEnv(t, fakeFunds{registered: true, balance: big.NewInt(1e18)}, true)
	const budget = 3
	e.m.resumeLimit = rate.NewLimiter(rate.Every(time.Hour), budget)
	mallory := keytest.Signer(t)
	for i := range budget + 3 {
		msg, _, _, _, _ := e.serveOn(t, sessionproto.ProtocolResume, e.resumeMsg(t, mallory, sessionproto.SessionID{7}))
		perr, ok := msg.(*sessionproto.Error)
		switch {
		case !ok:
			t.Fatalf("a stranger's resume answered %v", msg)
		case i < budget && (perr.Code != sessionproto.CodeBadRequest || !strings.Contains(perr.Message, ErrNoSuchSession.Error())):
			t.Fatalf("resume %d within the budget answered %v, want it checked and refused as no such session", i, perr)
		case i >= budget && (perr.Code != sessionproto.CodeCapacity || !strings.Contains(perr.Message, "too many resumes")):
			t.Fatalf("resume %d past the budget answered %v, want capacity", i, perr)
		}
	}
}
