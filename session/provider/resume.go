package provider

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
)

// ErrNoSuchSession is the refusal of a resume that names no running,
// resumable session of its consumer. It does not say which of these it
// was, so a stranger learns nothing about other consumers' sessions.
var ErrNoSuchSession = errors.New("no resumable session with this id for this consumer")

// resume serves a stream whose first message is a Resume: it checks it
// (rate, protocol version, signature, chain and provider, freshness and
// replay, the session's owner, the session's own resume rate, the
// exchange message) and hands the stream to the running session, then
// waits until the session no longer uses it. Refusals are answered with
// an Error and returned.
func (m *Manager) resume(ctx context.Context, s *countingStream, w *sessionproto.Writer, res *sessionproto.Resume) error {
	if !m.resumeLimit.Allow() {
		return refuse(ctx, w, sessionproto.CodeCapacity, "too many resumes; try again shortly")
	}
	if s.proto != sessionproto.ProtocolResume {
		return refuse(ctx, w, sessionproto.CodeBadRequest, fmt.Sprintf("resume needs protocol %s, this stream speaks %q", sessionproto.ProtocolResume, s.proto))
	}
	if err := res.VerifySignature(); err != nil {
		return refuse(ctx, w, sessionproto.CodeBadSignature, "resume signature does not verify")
	}
	if res.ChainID != m.cfg.ChainID.Uint64() || res.Provider != m.cfg.Signer.Address() {
		return refuse(ctx, w, sessionproto.CodeBadRequest, "resume is for another chain or provider")
	}
	if err := m.resumeGuard.CheckNonce(res.Nonce, res.IssuedAt, time.Now()); err != nil {
		if errors.Is(err, sessionproto.ErrGuardFull) {
			return refuse(ctx, w, sessionproto.CodeCapacity, "too many resumes")
		}
		return refuse(ctx, w, sessionproto.CodeBadRequest, "resume: "+err.Error())
	}
	id := res.SessionID.String()
	m.mu.Lock()
	l := m.sessions[id]
	found := l != nil && l.consumer == res.Consumer && l.resumable
	var accepted money.Amount
	if found {
		accepted = money.MustAmount(new(big.Int)) // no tracker yet: nothing accepted
		if l.tracker != nil {
			accepted = money.MustAmount(l.tracker.Stats().Accepted)
		}
	}
	m.mu.Unlock()
	if !found {
		return refuse(ctx, w, sessionproto.CodeBadRequest, ErrNoSuchSession.Error())
	}
	if !l.resumes.Allow() {
		return refuse(ctx, w, sessionproto.CodeCapacity, "session resumed too often; try again shortly")
	}
	var em *payments.ExchangeMessage
	if res.Exchange != nil {
		var err error
		if em, err = payments.DecodeExchangeMessage(res.Exchange); err != nil {
			return refuse(ctx, w, sessionproto.CodeBadRequest, "resume exchange message: "+err.Error())
		}
		if em.AgreementTotal.Cmp(res.PaidTotal.Int()) != 0 {
			return refuse(ctx, w, sessionproto.CodeBadRequest, "resume exchange message does not pay paid_total")
		}
	}
	done, err := m.handOver(ctx, l, s, w, res, em, accepted)
	if err != nil {
		return err
	}
	m.log.Info("provider: session resumed on a new stream", "session", id, "paid", res.PaidTotal.String(), "accepted", accepted.String())
	<-done // the session closed the stream (lost, replaced, ended)
	return nil
}

// handOver acknowledges the resume res on s and hands s to the session l;
// done is closed once the session no longer uses s. A session's resumes
// pass here one at a time, so that it runs on the stream acknowledged
// last: two resumes racing between their ack and their handover could
// reach the session in the other order, leaving it on a stream its
// consumer has replaced and closing the one in use. Only the session's
// own consumer (signature checked, rate limited) waits here.
func (m *Manager) handOver(ctx context.Context, l *live, s *countingStream, w *sessionproto.Writer, res *sessionproto.Resume, em *payments.ExchangeMessage, accepted money.Amount) (chan struct{}, error) {
	l.resumeMu.Lock()
	defer l.resumeMu.Unlock()
	select {
	case <-l.ended:
		return nil, refuse(ctx, w, sessionproto.CodeBadRequest, ErrNoSuchSession.Error())
	default:
	}
	s.total = l.control // from here on this stream counts to the session's
	if err := w.WriteMessage(ctx, &sessionproto.ResumeAck{SessionID: res.SessionID, AcceptedTotal: accepted}); err != nil {
		return nil, fmt.Errorf("send resume ack: %w", err)
	}
	done := make(chan struct{})
	a := paystream.Attachment{
		Reader: sessionproto.NewReader(s, m.cfg.ReadTimeout), Stream: s,
		Paid: res.PaidTotal.Int(), Exchange: em, Done: done,
		// Counted by the session as it takes the stream: Sessions()
		// says resumed once the session runs on the new stream (counted
		// here after the handover, it could still say not).
		Taken: func() {
			l.resumed.Add(1)
			l.relayed.Store(s.limited)
		},
	}
	select {
	case l.attach <- a:
	case <-l.ended:
		return nil, fmt.Errorf("session %s ended before the resume: %w", res.SessionID, ErrNoSuchSession)
	}
	return done, nil
}
