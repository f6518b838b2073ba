package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/tunnel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func proposal(country string, perGiB int64) market.Proposal {
	now := time.Now()
	return market.Proposal{
		Version: market.ProposalVersion, ChainID: 1337, ProviderID: common.BigToAddress(big.NewInt(perGiB + 1)), PeerID: "12D3KooWtest",
		ServiceType: market.ServiceWireGuard, Location: market.Location{Country: country, IPType: market.IPResidential},
		Price:  market.Price{PerHour: money.MustAmount(big.NewInt(1)), PerGiB: money.MustAmount(big.NewInt(perGiB))},
		Hermes: []common.Address{common.HexToAddress("0x4e")}, Access: market.AccessPolicy{Kind: market.AccessPublic},
		Seq: 1, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
	}
}

func TestPick(t *testing.T) {
	ps := []market.Proposal{proposal("DE", 30), proposal("US", 10), proposal("DE", 20)}
	p, err := Pick(ps, market.Filter{Country: "DE"})
	if err != nil || p.Location.Country != "DE" || p.Price.PerGiB.Int().Int64() != 20 {
		t.Fatalf("picked %+v %v, want the cheapest DE proposal", p, err)
	}
	if _, err := Pick(ps, market.Filter{Country: "FR"}); !errors.Is(err, ErrNoProposal) {
		t.Fatalf("no FR proposal: %v", err)
	}
}

type ledger struct{}

func (ledger) ID() [32]byte { return [32]byte{1} }
func (ledger) Raise(context.Context, *big.Int) (*big.Int, error) {
	return nil, errors.New("nothing may be promised in this test")
}

// TestRefusedRequest: a provider's Error (or anything but a response)
// ends the connect attempt, and the request the provider saw is signed by
// the consumer at the proposal's price and sequence number.
func TestRefusedRequest(t *testing.T) {
	k := keytest.Key(t)
	s := identity.NewKeySigner(k)
	if _, err := New(Config{Signer: s, ChainID: big.NewInt(1337), Hermes: common.HexToAddress("0x4e"), Channel: ledger{}}); err == nil {
		t.Fatal("a manager without a host was made")
	}
	m := &Manager{cfg: Config{Signer: s, ChainID: big.NewInt(1337), Hermes: common.HexToAddress("0x4e"), Channel: ledger{}}, log: slog.New(slog.DiscardHandler)}
	p := proposal("DE", 20)
	for _, answer := range []sessionproto.Message{
		&sessionproto.Error{Code: sessionproto.CodeInsufficientFunds, Message: "empty channel"},
		&sessionproto.Keepalive{Seq: 1},
	} {
		a, b := net.Pipe()
		seen := make(chan *sessionproto.SessionRequest, 1)
		go func() {
			defer b.Close()
			r, w := sessionproto.NewReader(b, time.Second), sessionproto.NewWriter(b, time.Second)
			msg, err := r.ReadMessage(context.Background())
			if err != nil {
				seen <- nil
				return
			}
			req, _ := msg.(*sessionproto.SessionRequest)
			seen <- req
			_ = w.WriteMessage(context.Background(), answer)
		}()
		_, err := m.open(context.Background(), a, p, Options{}, time.Now(), peer.AddrInfo{})
		a.Close()
		req := <-seen
		if req == nil || req.VerifySignature() != nil || req.Consumer != s.Address() || req.PricePerGiB.Int().Int64() != 20 || req.ProposalSeq != 1 {
			t.Fatalf("provider saw request %+v", req)
		}
		if answer.Type() == sessionproto.TypeError {
			var perr *sessionproto.Error
			if !errors.As(err, &perr) || perr.Code != sessionproto.CodeInsufficientFunds {
				t.Fatalf("open returned %v, want the provider's insufficient_funds", err)
			}
		} else if err == nil {
			t.Fatal("open accepted a keepalive as the response")
		}
	}
}

// balanceLedger is a channel ledger with a known balance; topUp is what
// the chain holds (applied by its RefreshBalance).
type balanceLedger struct {
	mu                       sync.Mutex
	promised, balance, chain *big.Int
	refreshes                int
	refreshErr               error
}

func (l *balanceLedger) ID() [32]byte { return [32]byte{2} }

func (l *balanceLedger) Raise(_ context.Context, delta *big.Int) (*big.Int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := new(big.Int).Add(l.promised, delta)
	if next.Cmp(l.balance) > 0 {
		return nil, fmt.Errorf("%w: %s > %s", pingpong.ErrInsufficientBalance, next, l.balance)
	}
	l.promised = next
	return new(big.Int).Set(next), nil
}

func (l *balanceLedger) RefreshBalance(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refreshes++
	if l.refreshErr != nil {
		return l.refreshErr
	}
	l.balance = new(big.Int).Set(l.chain)
	return nil
}

func (l *balanceLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refreshes
}

// TestBalanceRefresh: a payment above the known balance re-reads it once
// (a top-up since the start is used), is refused when the chain has no
// more either, and a failed re-read keeps the refusal; the connect path
// and open connections re-read it too.
func TestBalanceRefresh(t *testing.T) {
	k := keytest.Key(t)
	l := &balanceLedger{promised: big.NewInt(0), balance: big.NewInt(100), chain: big.NewInt(100)}
	m := testManager(t, k, Config{Channel: l, Balance: l, BalanceEvery: 5 * time.Millisecond})
	ctx := context.Background()
	if v, err := m.cfg.Channel.Raise(ctx, big.NewInt(60)); err != nil || v.Int64() != 60 || l.count() != 0 {
		t.Fatalf("covered raise: %v %v, %d re-reads", v, err, l.count())
	}
	l.chain = big.NewInt(200) // topped up after the start
	if v, err := m.cfg.Channel.Raise(ctx, big.NewInt(100)); err != nil || v.Int64() != 160 || l.count() != 1 {
		t.Fatalf("raise after a top-up: %v %v, %d re-reads", v, err, l.count())
	}
	if _, err := m.cfg.Channel.Raise(ctx, big.NewInt(41)); !errors.Is(err, pingpong.ErrInsufficientBalance) || l.count() != 2 {
		t.Fatalf("raise above the chain balance: %v, %d re-reads", err, l.count())
	}
	l.chain, l.refreshErr = big.NewInt(1000), errors.New("rpc down")
	if _, err := m.cfg.Channel.Raise(ctx, big.NewInt(41)); !errors.Is(err, pingpong.ErrInsufficientBalance) || l.count() != 3 {
		t.Fatalf("raise with the chain down: %v, %d re-reads", err, l.count())
	}
	l.refreshErr = nil

	// Connecting re-reads the balance before the request leaves.
	a, b := net.Pipe()
	go func() {
		defer b.Close()
		r, w := sessionproto.NewReader(b, time.Second), sessionproto.NewWriter(b, time.Second)
		if _, err := r.ReadMessage(ctx); err == nil {
			_ = w.WriteMessage(ctx, &sessionproto.Error{Code: sessionproto.CodeInsufficientFunds, Message: "no"})
		}
	}()
	before := l.count()
	_, _ = m.open(ctx, a, proposal("DE", 20), Options{}, time.Now(), peer.AddrInfo{})
	a.Close()
	if l.count() != before+1 {
		t.Fatalf("connect re-read the balance %d times, want once", l.count()-before)
	}

	// An open connection re-reads it periodically until it ends.
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); m.watchBalance(wctx) }()
	before = l.count()
	deadline := time.Now().Add(5 * time.Second)
	for l.count() < before+3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d periodic re-reads in 5 s at a 5 ms period", l.count()-before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// fakeHost satisfies New's host check; these tests never dial.
type fakeHost struct{ host.Host }

func TestCheckPublicIP(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for _, tc := range []struct {
		claim, peer netip.Addr
		want        string
	}{
		{netip.Addr{}, a, ""},
		{a, netip.Addr{}, IPUncheckedRly},
		{a, a, IPMatchesPeer},
		{a, netip.AddrFrom16(a.As16()), IPMatchesPeer}, // v4-mapped
		{a, b, IPDiffersPeer},
	} {
		if got := CheckPublicIP(tc.claim, tc.peer); got != tc.want {
			t.Errorf("CheckPublicIP(%v, %v) = %q, want %q", tc.claim, tc.peer, got, tc.want)
		}
	}
}

// slowTunnel is a tunnel.Client whose opener took a while (a WireGuard
// handshake that needed a retry).
type slowTunnel struct{}

func (slowTunnel) Stats() tunnel.PeerStats { return tunnel.PeerStats{} }
func (slowTunnel) Close() error            { return nil }

// TestPaymentClockStartsBeforeTheHandshake: invoices are checked against
// the time the provider charges from (its answer, after the ICE checks),
// not the end of a slow WireGuard handshake: with the latter, a handshake
// that needed WireGuard's 5 s retry made an honest provider's first
// invoice look like an overcharge.
func TestPaymentClockStartsBeforeTheHandshake(t *testing.T) {
	k := keytest.Key(t)
	m := testManager(t, k, Config{})
	ctx := context.Background()
	a, b := net.Pipe()
	answered := make(chan time.Time, 1)
	go func() {
		r, w := sessionproto.NewReader(b, 5*time.Second), sessionproto.NewWriter(b, 5*time.Second)
		if _, err := r.ReadMessage(ctx); err != nil {
			answered <- time.Time{}
			return
		}
		asked := time.Now()
		wk, _ := tunnel.GenerateKey()
		_ = w.WriteMessage(ctx, &sessionproto.SessionResponse{
			SessionID: sessionproto.SessionID{1}, ProviderWGKey: sessionproto.Key(wk.PublicKey()), Endpoint: "127.0.0.1:51820",
			ConsumerAddrs: []netip.Prefix{netip.MustParsePrefix("10.182.0.2/32")}, ProviderAddr: netip.MustParseAddr("10.182.0.1"),
			DNS: []netip.Addr{},
		})
		answered <- asked
		_, _ = io.Copy(io.Discard, b) // the session's keepalives, until it ends
	}()
	const handshake = 300 * time.Millisecond
	var opened time.Time
	slow := func(ctx context.Context, _ tunnel.SessionConfig, _ TunnelRoute) (tunnel.Client, error) {
		time.Sleep(handshake)
		opened = time.Now()
		return slowTunnel{}, nil
	}
	c, err := m.open(ctx, a, proposal("DE", 20), Options{Tunnel: slow}, time.Now(), peer.AddrInfo{})
	if err != nil {
		t.Fatal(err)
	}
	asked := <-answered
	if c.payFrom.Before(asked) || !c.payFrom.Before(opened.Add(-handshake/2)) {
		t.Errorf("invoices are checked from %s after the provider read the request, the tunnel was up %s after it; want the start before the handshake",
			c.payFrom.Sub(asked), opened.Sub(asked))
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
}
