package node

import (
	"context"
	"crypto/sha256"
	"math/big"
	"testing"
	"time"

	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/session/consumer"
)

// testControlResume: the session's libp2p connection to the provider
// drops mid-session (closed under both sides) while the tunnel works: the
// consumer resumes the session on a new connection (protocol 1.2), the
// download through the same tunnel goes on and its bytes match, the
// session keeps being paid, and what the consumer paid is what the
// provider's hermes promised, to the wei.
func testControlResume(t *testing.T, ctx context.Context, d *Devnet, c *Consumer, target string, body []byte) {
	before, err := c.Channel.Promised(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.Connect(ctx, market.Filter{Country: "DE"}, consumer.Options{SOCKSListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	var prov *Provider
	for _, p := range d.Providers {
		if p.Address() == conn.Proposal().ProviderID {
			prov = p
		}
	}
	if prov == nil {
		t.Fatalf("connected to %s, not a devnet provider", conn.Proposal().ProviderID.Hex())
	}
	ended := endedWatcher(prov)
	state := func() string { return sessionState(conn, prov) }
	if got, err := watchedDownload(t, ctx, conn.SOCKSAddr(), target, state); err != nil || sha256.Sum256(got) != sha256.Sum256(body) {
		t.Fatalf("download before the drop: %d bytes, %v", len(got), err)
	}
	proposal := conn.Proposal()
	pid, err := proposal.Peer()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.P2P.Host.Network().ClosePeer(pid); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); conn.Resumes() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no resume after the connection dropped: %s", state())
		}
		select {
		case <-conn.Done():
			t.Fatalf("the session ended when its connection dropped: %v", conn.Err())
		default:
		}
	}
	invoices := conn.PayerStats().Invoices
	if got, err := watchedDownload(t, ctx, conn.SOCKSAddr(), target, state); err != nil || sha256.Sum256(got) != sha256.Sum256(body) {
		t.Fatalf("download after the resume: %d bytes, %v", len(got), err)
	}
	for deadline := time.Now().Add(10 * time.Second); conn.PayerStats().Invoices < invoices+2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d invoices paid since the resume, want 2: %s", conn.PayerStats().Invoices-invoices, state())
		}
	}
	ss := prov.Sessions.Sessions()
	if len(ss) != 1 || ss[0].ID != conn.ID() || ss[0].Resumes != conn.Resumes() {
		t.Fatalf("provider sessions %+v, want session %s resumed %d times", ss, conn.ID(), conn.Resumes())
	}
	e := disconnectCleanly(t, ctx, conn, ended)
	paid := conn.PayerStats().Paid
	after, err := c.Channel.Promised(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e.Resumes != conn.Resumes() {
		t.Fatalf("the provider's session ended resumed %d times, the consumer's %d", e.Resumes, conn.Resumes())
	}
	if paid.Sign() <= 0 || e.Stats.Settled.Cmp(paid) != 0 || e.Stats.Accepted.Cmp(paid) != 0 || new(big.Int).Sub(after, before).Cmp(paid) != 0 {
		t.Fatalf("consumer paid %s, ledger moved %s-%s, provider accepted %s and the hermes promised %s",
			paid, after, before, e.Stats.Accepted, e.Stats.Settled)
	}
	t.Logf("resumed %d times; %d invoices paid, %s wei", conn.Resumes(), conn.PayerStats().Invoices, paid)
}
