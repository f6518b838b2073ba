package consumer

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/pingpong/paystore"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/storage/storagetest"
	"github.com/openmyst/openmyst/tunnel"
)

// promisingHermes answers every exchange message with a promise locked by
// the same hashlock and records the agreement totals it promised for.
type promisingHermes struct {
	mu     sync.Mutex
	totals []*big.Int
}

func (h *promisingHermes) RequestPromise(_ context.Context, em *payments.ExchangeMessage) (*payments.Promise, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.totals = append(h.totals, new(big.Int).Set(em.AgreementTotal))
	return &payments.Promise{ChainID: em.ChainID, Hashlock: em.Promise.Hashlock, Amount: em.AgreementTotal, Fee: new(big.Int)}, nil
}

func (h *promisingHermes) RevealR(context.Context, common.Address, [32]byte, [32]byte) error {
	return nil
}

func (h *promisingHermes) last() *big.Int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.totals) == 0 {
		return new(big.Int)
	}
	return h.totals[len(h.totals)-1]
}

type registered struct{}

func (registered) ConsumerFunds(context.Context, common.Address, common.Address) (bool, *big.Int, error) {
	return true, big.NewInt(1e18), nil
}

// relayedProvider is a provider session manager on a libp2p host that
// listens nowhere and is reached only through a circuit relay v2 whose
// circuits last circuitFor: as a provider behind a symmetric NAT.
type relayedProvider struct {
	m        *provider.Manager
	pool     *tunnel.AddressPool // the consumer addresses it leases
	hermes   *promisingHermes
	proposal market.Proposal
	ended    chan provider.Ended
}

func startRelayedProvider(t testing.TB, ctx context.Context, circuitFor time.Duration, cfg provider.Config, protocols ...string) (*relayedProvider, host.Host) {
	t.Helper()
	rh, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rh.Close() })
	relay, err := relayv2.New(rh, relayv2.WithLimit(&relayv2.RelayLimit{Duration: circuitFor, Data: 16 << 20}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	ph, err := libp2p.New(libp2p.NoListenAddrs, libp2p.EnableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ph.Close() })
	if _, err := client.Reserve(ctx, ph, peer.AddrInfo{ID: rh.ID(), Addrs: rh.Addrs()}); err != nil {
		t.Fatalf("reserve a relay slot: %v", err)
	}
	circuit, err := ma.NewMultiaddr(fmt.Sprintf("%s/p2p/%s/p2p-circuit", rh.Addrs()[0], rh.ID()))
	if err != nil {
		t.Fatal(err)
	}
	k := keytest.Key(t)
	signer := identity.NewKeySigner(k)
	db := storagetest.Temp(t)
	now := time.Now()
	rp := &relayedProvider{pool: cfg.Pool, hermes: &promisingHermes{}, ended: make(chan provider.Ended, 1)}
	rp.proposal = market.Proposal{
		Version: market.ProposalVersion, ChainID: 1337, ProviderID: signer.Address(), PeerID: ph.ID().String(),
		Addrs: []string{circuit.String()}, ServiceType: market.ServiceWireGuard,
		Location: market.Location{Country: "DE", IPType: market.IPResidential},
		// 1e12 wei a second: every invoice is worth something.
		Price:  market.Price{PerHour: money.MustAmount(big.NewInt(3600e12)), PerGiB: money.MustAmount(big.NewInt(0))},
		Hermes: []common.Address{common.HexToAddress("0x4e")}, Access: market.AccessPolicy{Kind: market.AccessPublic},
		Seq: 1, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
	}
	cfg.Signer, cfg.ChainID = signer, big.NewInt(1337)
	cfg.Proposal = func() (market.Proposal, bool) { return rp.proposal, true }
	cfg.Funds, cfg.Hermes, cfg.Store, cfg.History = registered{}, rp.hermes, paystore.New(db), session.NewHistory(db)
	cfg.Log = slog.New(slog.DiscardHandler)
	if rp.m, err = provider.New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rp.m.Close() })
	rp.m.OnEnded(func(e provider.Ended) { rp.ended <- e })
	if len(protocols) == 0 {
		protocols = sessionproto.Protocols
	}
	for _, proto := range protocols {
		ph.SetStreamHandler(protocolID(proto), rp.m.Handle)
	}
	return rp, ph
}

// TestSessionSurvivesCircuitExpiry: a paid session whose control stream
// runs over a circuit relay outlives the circuit's limit several times:
// each time the relay cuts the connection the consumer resumes the
// session on a fresh circuit, the WireGuard tunnel (over the provider's
// UDP endpoint) stays up and carries traffic throughout, invoices keep
// being paid, and at the end the consumer has paid exactly what the
// provider accepted and the hermes promised, with no unpaid gap.
// Before protocol 1.2 the session ended with the first circuit.
func TestSessionSurvivesCircuitExpiry(t *testing.T) {
	const circuitFor = 2 * time.Second
	const interval = 250 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rp, ph, ch, ledger, c := connectRelayed(t, ctx, circuitFor, 6*time.Second, provider.Config{
		ResumeGrace: 8 * time.Second,
		Payment:     provider.Payment{Interval: interval, CheckEvery: 50 * time.Millisecond, Grace: 10 * time.Second, Keepalive: 200 * time.Millisecond, ReadTimeout: 3 * time.Second},
	})
	defer func() { _ = c.Disconnect(context.Background()) }()
	if conns := ch.Network().ConnsToPeer(mustPeer(t, rp.proposal)); len(conns) != 1 || !conns[0].Stat().Limited {
		t.Fatalf("connections to the provider %v, want one relayed", conns)
	}
	// A round trip through the tunnel: a connection attempt to a closed
	// port of the provider's gateway is refused from the far side.
	gw := netip.AddrPortFrom(rp.pool.Gateway().V4, 9).String()
	roundTrip := func() error {
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		defer dcancel()
		conn, err := c.DialContext(dctx, "tcp", gw)
		if err == nil {
			conn.Close()
			return nil
		}
		if dctx.Err() != nil {
			return fmt.Errorf("no answer through the tunnel: %w", err)
		}
		return nil // refused: the answer came back through the tunnel
	}
	if err := roundTrip(); err != nil {
		t.Fatal(err)
	}
	sessionID := c.ID()

	// Three circuits in a row expire under the session.
	var probeErr error
	for c.Resumes() < 3 {
		select {
		case <-c.Done():
			t.Fatalf("the session ended after %d resumes: %v", c.Resumes(), c.Err())
		case <-ctx.Done():
			t.Fatalf("only %d resumes before the test's deadline", c.Resumes())
		case <-time.After(interval):
		}
		if err := roundTrip(); err != nil && probeErr == nil {
			probeErr = err
		}
	}
	if probeErr != nil {
		t.Fatalf("the tunnel stopped carrying traffic while the control stream was resumed: %v", probeErr)
	}
	// A connection that drops for any other reason: the provider closes it.
	before := c.Resumes()
	if err := ph.Network().ClosePeer(ch.ID()); err != nil {
		t.Fatal(err)
	}
	for c.Resumes() == before {
		select {
		case <-c.Done():
			t.Fatalf("the session ended when its connection was closed: %v", c.Err())
		case <-ctx.Done():
			t.Fatal("no resume after the connection was closed")
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Invoices go on being paid on the resumed stream.
	paidAt := c.PayerStats().Invoices
	for deadline := time.Now().Add(10 * interval); c.PayerStats().Invoices < paidAt+3; {
		if time.Now().After(deadline) {
			t.Fatalf("%d invoices paid since the last resume, want 3", c.PayerStats().Invoices-paidAt)
		}
		time.Sleep(interval / 4)
	}
	st := rp.m.Sessions()
	if len(st) != 1 || st[0].ID != sessionID || st[0].Resumes < 3 || !st[0].ControlRelayed {
		t.Fatalf("provider sessions %+v, want the one session, resumed, its control stream relayed", st)
	}
	if err := roundTrip(); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("session ended with %v, want a clean disconnect", err)
	}
	var end provider.Ended
	select {
	case end = <-rp.ended:
	case <-ctx.Done():
		t.Fatal("the provider did not end the session")
	}
	paid := c.PayerStats().Paid
	t.Logf("resumes %d (provider %d), invoices paid %d, paid %s wei, provider owed %s, accepted %s",
		c.Resumes(), end.Resumes, c.PayerStats().Invoices, paid, end.Stats.Owed, end.Stats.Accepted)
	if !errors.Is(end.Err, paystream.ErrPeerEnded) || end.Resumes < 3 || end.Stats.Refused != 0 {
		t.Fatalf("provider: %+v", end)
	}
	// To the wei: what the consumer promised is what the provider
	// accepted, the hermes promised and the channel ledger holds.
	if paid.Cmp(end.Stats.Accepted) != 0 || paid.Cmp(end.Stats.Settled) != 0 || paid.Cmp(rp.hermes.last()) != 0 || paid.Cmp(ledger.promised) != 0 {
		t.Fatalf("paid %s, provider accepted %s, settled %s, hermes %s, ledger %s", paid, end.Stats.Accepted, end.Stats.Settled, rp.hermes.last(), ledger.promised)
	}
	// No gap: everything served but the last interval was paid.
	perSecond := big.NewInt(1e12)
	gap := new(big.Int).Sub(end.Stats.Owed, paid)
	if limit := new(big.Int).Mul(perSecond, big.NewInt(int64((interval+time.Second)/time.Second)+1)); gap.Cmp(limit) > 0 {
		t.Fatalf("served %s wei, paid %s: %s unpaid, more than %s", end.Stats.Owed, paid, gap, limit)
	}
}

// TestResumeGivesUp: when the provider cannot be resumed on (here it no
// longer serves the session protocol), the consumer's session ends within
// its ResumeWithin with an error saying the stream was lost and not
// resumed, and the provider's ends after its resume grace.
func TestResumeGivesUp(t *testing.T) {
	const circuitFor = 2 * time.Second
	const resumeWithin = 1500 * time.Millisecond
	const grace = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rp, ph, ch, _, c := connectRelayed(t, ctx, circuitFor, resumeWithin, provider.Config{
		ResumeGrace: grace,
		Payment:     provider.Payment{Interval: time.Second, Grace: time.Minute, Keepalive: 200 * time.Millisecond, ReadTimeout: 3 * time.Second},
	})
	defer func() { _ = c.Disconnect(context.Background()) }()
	for _, proto := range sessionproto.Protocols {
		ph.RemoveStreamHandler(protocolID(proto))
	}
	lost := time.Now()
	if err := ph.Network().ClosePeer(ch.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(resumeWithin + 5*time.Second):
		t.Fatal("the consumer kept trying to resume past ResumeWithin")
	}
	if err := c.Err(); !errors.Is(err, paystream.ErrStreamLost) || !strings.Contains(err.Error(), "not resumed") {
		t.Fatalf("consumer session ended with %v, want the lost stream, not resumed", err)
	}
	select {
	case end := <-rp.ended:
		if !errors.Is(end.Err, paystream.ErrStreamLost) || time.Since(lost) < grace {
			t.Fatalf("provider session ended after %v with %v, want ErrStreamLost after its %v grace", time.Since(lost), end.Err, grace)
		}
	case <-ctx.Done():
		t.Fatal("the provider session outlived its resume grace")
	}
}

// TestResumeGivesUpOnDeadProvider: a provider that is gone (its host
// closed: the relay holds no reservation for it any more) is given up
// after a few attempts that cannot reach its peer, long before
// ResumeWithin, so the reconnect policy can move on.
func TestResumeGivesUpOnDeadProvider(t *testing.T) {
	const resumeWithin = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, ph, _, _, c := connectRelayed(t, ctx, time.Minute, resumeWithin, provider.Config{
		Payment: provider.Payment{Interval: time.Second, Grace: time.Minute, Keepalive: 200 * time.Millisecond, ReadTimeout: 3 * time.Second},
	})
	defer func() { _ = c.Disconnect(context.Background()) }()
	gone := time.Now()
	if err := ph.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the consumer kept trying to resume on a dead provider")
	}
	took := time.Since(gone)
	if err := c.Err(); !errors.Is(err, paystream.ErrStreamLost) || !errors.Is(err, errNoPeer) || took > resumeWithin/2 {
		t.Fatalf("session ended after %v with %v, want the peer unreachable well within %v", took, err, resumeWithin)
	}
	t.Logf("given up %v after the provider went away: %v", took.Round(time.Millisecond), c.Err())
}

// TestOldProviderNoResume: a provider that serves only protocol 1.1 and
// 1.0 gets a 1.1 session from a new consumer, and that session ends with
// its circuit, as before: the consumer never sends it a resume.
func TestOldProviderNoResume(t *testing.T) {
	const circuitFor = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rp, _, _, _, c := connectRelayed(t, ctx, circuitFor, 5*time.Second, provider.Config{
		Payment: provider.Payment{Interval: time.Second, Grace: time.Minute, Keepalive: 200 * time.Millisecond, ReadTimeout: 3 * time.Second},
	}, sessionproto.ProtocolICE, sessionproto.ProtocolID)
	defer func() { _ = c.Disconnect(context.Background()) }()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("a 1.1 session outlived its circuit")
	}
	if err := c.Err(); err == nil || errors.Is(err, paystream.ErrStreamLost) || c.Resumes() != 0 {
		t.Fatalf("1.1 session ended with %v after %d resumes, want the stream's end and no resume", err, c.Resumes())
	}
	select {
	case end := <-rp.ended:
		if end.Resumes != 0 || errors.Is(end.Err, paystream.ErrStreamLost) {
			t.Fatalf("provider: %+v", end)
		}
	case <-ctx.Done():
		t.Fatal("the provider kept the 1.1 session")
	}
}

// connectRelayed connects a paid session over a circuit relay whose
// circuits last circuitFor: a relayed provider (cfg with the exit and
// pool of iceTestExit; serving protocols, all if none) and a relayed
// consumer resuming within resumeWithin. It returns the provider, its
// host, the consumer's host and ledger, and the session (the caller
// disconnects it).
func connectRelayed(t *testing.T, ctx context.Context, circuitFor, resumeWithin time.Duration, cfg provider.Config, protocols ...string) (*relayedProvider, host.Host, host.Host, *balanceLedger, *Connection) {
	t.Helper()
	k, pool, exit := iceTestExit(t)
	cfg.Exit, cfg.Pool = exit, pool
	rp, ph := startRelayedProvider(t, ctx, circuitFor, cfg, protocols...)
	ch, ledger, m := relayedConsumer(t, k, resumeWithin)
	c, err := m.Connect(ctx, rp.proposal, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rp, ph, ch, ledger, c
}

// relayedConsumer is a consumer manager on a libp2p host that listens
// nowhere (it reaches the provider only through the relay), paying from
// a ledger with 1 MYST.
func relayedConsumer(t testing.TB, k *ecdsa.PrivateKey, resumeWithin time.Duration) (host.Host, *balanceLedger, *Manager) {
	t.Helper()
	ch, err := libp2p.New(libp2p.NoListenAddrs, libp2p.EnableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	ledger := &balanceLedger{promised: new(big.Int), balance: big.NewInt(1e18), chain: big.NewInt(1e18)}
	m := testManager(t, k, Config{Host: ch, Channel: ledger, Proxy: userspaceProxy, Keepalive: 200 * time.Millisecond, ReadTimeout: 3 * time.Second, ResumeWithin: resumeWithin})
	return ch, ledger, m
}

func mustPeer(t *testing.T, p market.Proposal) peer.ID {
	t.Helper()
	id, err := p.Peer()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func protocolID(s string) protocol.ID { return protocol.ID(s) }
