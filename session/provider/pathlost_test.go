package provider

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/tunnel"
)

// TestPathLostStopsInvoices: a session whose ICE path dies mid-session
// (the consumer's side of the pair goes silent) is ended by the provider
// within a few ice.Config.LostAfter: the consumer gets a Destroy saying
// the path was lost and no invoice after it, serve returns
// session.ErrPathLost and the history records it. Time-based invoices
// do not continue for a dead path.
func TestPathLostStopsInvoices(t *testing.T) {
	// ICE keepalives go every lostAfter/4. At 400 ms a scheduling stall
	// of -race on two loaded cores silenced a working path long enough
	// to be lost (1 in 30 runs); 1 s leaves room for that.
	const lostAfter = time.Second
	e := newEnv(t, fakeFunds{registered: true, balance: big.NewInt(1e18)}, true)
	cfg := ice.Config{Policy: ice.CandidatePolicy{AllowPrivate: true}, Loopback: true, Timeout: 5 * time.Second,
		LostAfter: lostAfter, Logger: slog.New(slog.DiscardHandler)}
	e.m.cfg.ICE = &cfg
	e.m.cfg.Interval = lostAfter / 4 // invoices while the path works

	agent, req, r, w, done := e.openICE(t, cfg)
	pub := tunnel.PublicKey(req.WGPublicKey)

	type seen struct {
		msg sessionproto.Message
		at  time.Time
	}
	msgs := make(chan seen, 1024)
	// The consumer's keepalives, as paystream.Consumer sends them: the
	// control stream stays alive, only the path dies. (Without them the
	// provider's ReadTimeout ended the silent stream as the path-lost
	// check did, and under load the read timeout sometimes came first.)
	stopKeepalive := make(chan struct{})
	keepaliveDone := make(chan struct{})
	go func() {
		defer close(keepaliveDone)
		tick := time.NewTicker(e.m.cfg.Keepalive)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			select {
			case <-stopKeepalive:
				return
			case <-tick.C:
			}
			if w.WriteMessage(context.Background(), &sessionproto.Keepalive{Seq: seq}) != nil {
				return // the provider closed the stream
			}
		}
	}()
	stopKeepalives := sync.OnceFunc(func() { close(stopKeepalive); <-keepaliveDone })
	defer stopKeepalives()
	go func() { // the consumer's side of the stream
		defer close(msgs)
		for {
			m, err := r.ReadMessage(context.Background())
			if err != nil {
				return
			}
			msgs <- seen{m, time.Now()}
		}
	}()
	// While the path works the session runs and is invoiced.
	invoices := 0
	working := time.After(2 * lostAfter)
wait:
	for {
		select {
		case s, ok := <-msgs:
			if !ok {
				t.Fatal("the stream closed while the path worked")
			}
			if s.msg.Type() == sessionproto.TypeInvoice {
				invoices++
			}
			if s.msg.Type() == sessionproto.TypeDestroy || s.msg.Type() == sessionproto.TypeError {
				t.Fatalf("the provider ended a session whose path works: %v", s.msg)
			}
		case <-working:
			break wait
		}
	}
	if invoices == 0 || e.exit.conn(pub) == nil {
		t.Fatalf("%d invoices, ICE connection attached: %v; want invoices over an ICE path", invoices, e.exit.conn(pub) != nil)
	}

	killed := time.Now()
	_ = agent.Close() // the consumer's side of the pair: nothing arrives any more
	bound := time.After(6 * lostAfter)
	var destroyed time.Time
	for destroyed.IsZero() {
		select {
		case s, ok := <-msgs:
			if !ok {
				t.Fatal("the stream closed without a Destroy")
			}
			if d, ok := s.msg.(*sessionproto.Destroy); ok {
				if !strings.Contains(d.Reason, session.ErrPathLost.Error()) {
					t.Fatalf("destroy reason %q, want %q", d.Reason, session.ErrPathLost)
				}
				destroyed = s.at
				stopKeepalives() // the consumer's loop ends on the Destroy
			}
		case <-bound:
			t.Fatalf("the provider still runs (and invoices) the session %v after its path died", 6*lostAfter)
		}
	}
	for s := range msgs {
		if s.msg.Type() == sessionproto.TypeInvoice {
			t.Fatalf("an invoice after the session ended for a lost path")
		}
	}
	if err := <-done; !errors.Is(err, session.ErrPathLost) {
		t.Fatalf("serve returned %v, want %v", err, session.ErrPathLost)
	}
	if len(e.m.Sessions()) != 0 || e.exit.count() != 0 {
		t.Fatal("session or peer left behind")
	}
	rs, err := e.hist.List(context.Background())
	if err != nil || len(rs) != 1 || !strings.Contains(rs[0].Reason, session.ErrPathLost.Error()) || rs[0].End.IsZero() {
		t.Fatalf("history %+v %v, want the session ended with the path lost", rs, err)
	}
	t.Logf("ended %v after the path died (LostAfter %v), %d invoices before", destroyed.Sub(killed).Round(time.Millisecond), lostAfter, invoices)
}
