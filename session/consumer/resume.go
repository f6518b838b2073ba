package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/p2p/sessionproto"
)

// Backoff between resume attempts: first after resumeFirstWait, doubling
// up to resumeMaxWait, until Config.ResumeWithin has passed.
const (
	resumeFirstWait = 200 * time.Millisecond
	resumeMaxWait   = 2 * time.Second
	resumeIOTimeout = 10 * time.Second
	// resumeMaxUnreachable ends the attempts once the provider's peer
	// could not be reached at all that many times in a row: a provider
	// that crashed (its addresses refuse, its relay has no reservation
	// for it) is given up in about a second, not after ResumeWithin, so
	// the reconnect policy moves on to a working one.
	resumeMaxUnreachable = 3
)

// errNoPeer marks a resume attempt that could not reach the provider's
// peer at all.
var errNoPeer = errors.New("the provider's peer cannot be reached")

// resume is the session's paystream.Options.Reconnect: its control stream
// was lost (lost says how) while the tunnel may still work. It opens a new
// stream to the provider over any connection libp2p has or can make (a
// fresh circuit through a relay, a direct connection), sends a signed
// Resume with what the consumer has paid and its last exchange message,
// and returns the new stream once the provider acknowledged it. Attempts
// repeat with backoff for Config.ResumeWithin; a provider that refuses
// for good (no such session, bad signature) ends them at once.
func (c *Connection) resume(ctx context.Context, lost error) (*sessionproto.Reader, *sessionproto.Writer, error) {
	m := c.m
	log := m.log.With("session", c.id)
	c.streamMu.Lock()
	_ = resetStream(c.stream) // the provider notices at once, if it is still there
	c.streamMu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, m.cfg.ResumeWithin)
	defer cancel()
	wait := resumeFirstWait
	var last error
	unreachable := 0
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			// The connection under the lost stream may linger half-dead
			// (a silent relay): make libp2p dial afresh, even where a
			// failed dial put the addresses in its backoff.
			_ = m.cfg.Host.Network().ClosePeer(c.peer.ID)
			if sw, ok := m.cfg.Host.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
				sw.Backoff().Clear(c.peer.ID)
			}
		}
		r, w, s, err := c.resumeOnce(rctx)
		if err == nil {
			if err = c.setControl(rctx, controlAddrs(s)); err != nil {
				_ = resetStream(s)
			}
		}
		if err == nil {
			c.streamMu.Lock()
			c.stream = s
			c.streamMu.Unlock()
			n := c.resumes.Add(1)
			log.Info("consumer: session resumed on a new control stream", "attempt", attempt, "resumes", n, "lost", lost)
			return r, w, nil
		}
		last = err
		var perr *sessionproto.Error
		if errors.As(err, &perr) && perr.Code != sessionproto.CodeCapacity && perr.Code != sessionproto.CodeInternal {
			return nil, nil, fmt.Errorf("consumer: the provider refused the resume: %w", err)
		}
		if errors.Is(err, errNoPeer) {
			unreachable++
		} else {
			unreachable = 0
		}
		if unreachable >= resumeMaxUnreachable {
			return nil, nil, fmt.Errorf("consumer: no resume: %w", err)
		}
		log.Info("consumer: resume attempt failed", "attempt", attempt, "err", err)
		select {
		case <-rctx.Done():
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, fmt.Errorf("consumer: no resume within %v (%d attempts): %w", m.cfg.ResumeWithin, attempt, last)
		case <-time.After(wait):
		}
		wait = min(2*wait, resumeMaxWait)
	}
}

// setControl tells Options.ControlPath (if set) that the control
// connection now needs addrs outside the tunnel, and remembers them. The
// new connection's addresses may be none (a test pipe): the old ones
// then stay.
func (c *Connection) setControl(ctx context.Context, addrs []netip.AddrPort) error {
	if c.controlPath == nil || len(addrs) == 0 {
		return nil
	}
	if err := c.controlPath(ctx, addrs); err != nil {
		return fmt.Errorf("let the control connection out of the tunnel: %w", err)
	}
	c.streamMu.Lock()
	c.control = addrs
	c.streamMu.Unlock()
	return nil
}

// admitResume lets a resume attempt dial every address the provider's
// peer is known at (ResumeAddrs: what it advertised and what libp2p has
// learned since, e.g. a new address), besides the current control
// connection's.
func (c *Connection) admitResume(ctx context.Context) error {
	if c.controlPath == nil {
		return nil
	}
	known := append(append([]ma.Multiaddr(nil), c.peer.Addrs...), c.m.cfg.Host.Peerstore().Addrs(c.peer.ID)...)
	c.streamMu.Lock()
	cur := append([]netip.AddrPort(nil), c.control...)
	c.streamMu.Unlock()
	if err := c.controlPath(ctx, JoinAddrs(cur, ResumeAddrs(known))); err != nil {
		return fmt.Errorf("%w: let the resume out of the tunnel: %w", errNoPeer, err)
	}
	return nil
}

// resumeOnce makes one resume attempt.
func (c *Connection) resumeOnce(ctx context.Context) (*sessionproto.Reader, *sessionproto.Writer, stream, error) {
	m := c.m
	actx, cancel := context.WithTimeout(ctx, resumeIOTimeout)
	defer cancel()
	if err := c.admitResume(actx); err != nil {
		return nil, nil, nil, err
	}
	lctx := network.WithAllowLimitedConn(actx, "openmyst session resume")
	if err := m.cfg.Host.Connect(lctx, c.peer); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", errNoPeer, err)
	}
	s, err := m.cfg.Host.NewStream(lctx, c.peer.ID, sessionproto.ProtocolResume)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open a session stream: %w", err)
	}
	ps := c.payer.Stats()
	paid, err := money.NewAmount(ps.Paid)
	if err != nil {
		_ = s.Reset()
		return nil, nil, nil, err
	}
	res := &sessionproto.Resume{ChainID: m.cfg.ChainID.Uint64(), SessionID: c.sid, Provider: c.proposal.ProviderID, PaidTotal: paid}
	if ps.Exchange != nil && ps.Paid.Sign() > 0 {
		if res.Exchange, err = json.Marshal(ps.Exchange); err != nil {
			_ = s.Reset()
			return nil, nil, nil, fmt.Errorf("encode the last exchange message: %w", err)
		}
	}
	if err := res.Sign(m.cfg.Signer, time.Now()); err != nil {
		_ = s.Reset()
		return nil, nil, nil, err
	}
	hr, hw := sessionproto.NewReader(s, resumeIOTimeout), sessionproto.NewWriter(s, resumeIOTimeout)
	if err := hw.WriteMessage(actx, res); err != nil {
		_ = s.Reset()
		return nil, nil, nil, fmt.Errorf("send resume: %w", err)
	}
	msg, err := hr.ReadMessage(actx)
	if err != nil {
		_ = s.Reset()
		return nil, nil, nil, fmt.Errorf("read the resume answer: %w", err)
	}
	switch v := msg.(type) {
	case *sessionproto.ResumeAck:
		if v.SessionID != c.sid {
			_ = s.Reset()
			return nil, nil, nil, fmt.Errorf("the provider acknowledged session %s, not %s", v.SessionID, c.sid)
		}
		if v.AcceptedTotal.Int().Cmp(ps.Paid) < 0 {
			m.log.Info("consumer: the provider had not received the last payment; the resume carries it",
				"session", c.id, "provider_accepted", v.AcceptedTotal.String(), "paid", ps.Paid.String())
		}
	case *sessionproto.Error:
		_ = s.Close()
		return nil, nil, nil, v
	default:
		_ = s.Reset()
		return nil, nil, nil, fmt.Errorf("unexpected %s instead of a resume answer", msg.Type())
	}
	return sessionproto.NewReader(s, m.cfg.ReadTimeout), sessionproto.NewWriter(s, 15*time.Second), s, nil
}

// resetStream aborts a libp2p stream (Close for anything else).
func resetStream(s stream) error {
	if r, ok := s.(interface{ Reset() error }); ok {
		return r.Reset()
	}
	return s.Close()
}

// Resumes counts the times the session's control stream was lost and the
// session resumed on a new one.
func (c *Connection) Resumes() int { return int(c.resumes.Load()) }
