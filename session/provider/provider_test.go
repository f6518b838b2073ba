package provider

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session"
	"github.com/openmyst/openmyst/session/pingpong/paystore"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
	"github.com/openmyst/openmyst/storage/storagetest"
	"github.com/openmyst/openmyst/tunnel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeExit records admitted peers (the real exits are tested in
// tunnel/userspace and joined in node's end-to-end tests).
type fakeExit struct {
	mu    sync.Mutex
	peers map[tunnel.PublicKey]tunnel.PeerConfig
	added int
}

// AttachConn implements tunnel.ConnAttacher.
func (e *fakeExit) AttachConn(pub tunnel.PublicKey, c net.Conn) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.peers[pub]
	if !ok {
		c.Close()
		return tunnel.ErrUnknownPeer
	}
	p.Conn = c
	e.peers[pub] = p
	return nil
}

func (e *fakeExit) conn(pub tunnel.PublicKey) net.Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peers[pub].Conn
}

func (e *fakeExit) PeerStats(pub tunnel.PublicKey) (tunnel.PeerStats, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.peers[pub]
	return tunnel.PeerStats{RxBytes: 1000, TxBytes: 2000}, ok
}
func (e *fakeExit) AddPeer(_ context.Context, cfg tunnel.PeerConfig) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.peers[cfg.PublicKey] = cfg
	e.added++
	return nil
}
func (e *fakeExit) RemovePeer(pub tunnel.PublicKey) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.peers[pub]; !ok {
		return tunnel.ErrUnknownPeer
	}
	delete(e.peers, pub)
	return nil
}
func (e *fakeExit) Endpoint() netip.AddrPort { return netip.MustParseAddrPort("127.0.0.1:51820") }
func (e *fakeExit) PublicKey() tunnel.PublicKey {
	return tunnel.PublicKey{1, 2, 3}
}
func (e *fakeExit) Gateway() tunnel.Lease {
	return tunnel.Lease{V4: netip.MustParseAddr("10.182.0.1")}
}
func (e *fakeExit) Blocked() uint64 { return 0 }
func (e *fakeExit) Close() error    { return nil }
func (e *fakeExit) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.peers)
}

type fakeFunds struct {
	registered bool
	balance    *big.Int
	err        error
}

func (f fakeFunds) ConsumerFunds(context.Context, common.Address, common.Address) (bool, *big.Int, error) {
	return f.registered, f.balance, f.err
}

type noHermes struct{}

func (noHermes) RequestPromise(context.Context, *payments.ExchangeMessage) (*payments.Promise, error) {
	return nil, errors.New("no hermes in this test")
}
func (noHermes) RevealR(context.Context, common.Address, [32]byte, [32]byte) error { return nil }

type env struct {
	m        *Manager
	exit     *fakeExit
	hist     *session.History
	consumer *identity.KeySigner
	proposal market.Proposal
	hermes   common.Address
}

func newEnv(t *testing.T, funds fakeFunds, published bool, mods ...func(*Config)) *env {
	t.Helper()
	db := storagetest.Temp(t)
	prov := keytest.Signer(t)
	e := &env{exit: &fakeExit{peers: map[tunnel.PublicKey]tunnel.PeerConfig{}}, hist: session.NewHistory(db), consumer: keytest.Signer(t),
		hermes: common.HexToAddress("0x4e524d4553")}
	now := time.Now()
	e.proposal = market.Proposal{
		Version: market.ProposalVersion, ChainID: 1337, ProviderID: prov.Address(), PeerID: "12D3KooWtest",
		ServiceType: market.ServiceWireGuard, Location: market.Location{Country: "DE", IPType: market.IPResidential},
		Price:  market.Price{PerHour: money.MustAmount(big.NewInt(1e16)), PerGiB: money.MustAmount(big.NewInt(1e17))},
		Hermes: []common.Address{e.hermes}, Access: market.AccessPolicy{Kind: market.AccessPublic},
		Seq: 7, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
	}
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		t.Fatal(err)
	}
	ps := paystore.New(db)
	cfg := Config{
		Signer: prov, ChainID: big.NewInt(1337),
		Proposal: func() (market.Proposal, bool) { return e.proposal, published },
		Exit:     e.exit, Pool: pool, Funds: funds, Hermes: noHermes{}, Store: ps, History: e.hist,
		Payment: Payment{Interval: time.Hour, Grace: time.Hour, Keepalive: 50 * time.Millisecond, ReadTimeout: 2 * time.Second},
		Log:     slog.New(slog.DiscardHandler),
	}
	for _, mod := range mods {
		mod(&cfg)
	}
	e.m, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Close() })
	return e
}

// open sends req on a fresh pipe and returns the provider's first answer
// and the consumer end of the stream; serve's result arrives on done.
func (e *env) open(t *testing.T, req *sessionproto.SessionRequest) (sessionproto.Message, net.Conn, *sessionproto.Reader, *sessionproto.Writer, chan error) {
	t.Helper()
	return e.serveOn(t, "", req)
}

// openICE opens a session whose request carries the offer of a fresh
// controlling ICE agent with cfg (closed when the test ends), expects the
// provider's response and connects the agent to the provider's offer. It
// returns the agent, the request, and open's reader, writer and done.
func (e *env) openICE(t *testing.T, cfg ice.Config) (*ice.Agent, *sessionproto.SessionRequest, *sessionproto.Reader, *sessionproto.Writer, chan error) {
	t.Helper()
	agent, err := ice.NewAgent(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	offer, err := agent.Gather(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(offer)
	req := e.requestWithICE(t, raw)
	resp, r, w, done := e.openResponse(t, req)
	remote, _, err := ice.DecodeOffer(resp.ICE, cfg.Policy)
	if err != nil {
		t.Fatalf("provider's offer: %v", err)
	}
	if _, err := agent.Connect(context.Background(), remote); err != nil {
		t.Fatal(err)
	}
	return agent, req, r, w, done
}

// openResponse is open for a request the provider must answer with a
// session response.
func (e *env) openResponse(t *testing.T, req *sessionproto.SessionRequest) (*sessionproto.SessionResponse, *sessionproto.Reader, *sessionproto.Writer, chan error) {
	t.Helper()
	msg, _, r, w, done := e.open(t, req)
	resp, ok := msg.(*sessionproto.SessionResponse)
	if !ok {
		t.Fatalf("got %v, want a response", msg)
	}
	return resp, r, w, done
}

// requestWithICE is request carrying offer as the consumer's ICE offer.
func (e *env) requestWithICE(t *testing.T, offer json.RawMessage) *sessionproto.SessionRequest {
	t.Helper()
	req := e.request(t)
	req.ICE = offer
	if err := req.Sign(e.consumer); err != nil {
		t.Fatal(err)
	}
	return req
}

func (e *env) request(t *testing.T) *sessionproto.SessionRequest {
	t.Helper()
	req, err := sessionproto.RequestFor(&e.proposal, e.hermes, sessionproto.Key{9, 9, 9}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Sign(e.consumer); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestAcceptedSessionEndsOnDestroy(t *testing.T) {
	e := newEnv(t, fakeFunds{registered: true, balance: big.NewInt(1e18)}, true)
	msg, _, r, w, done := e.open(t, e.request(t))
	resp, ok := msg.(*sessionproto.SessionResponse)
	if !ok {
		t.Fatalf("got %T %v, want a session response", msg, msg)
	}
	if len(resp.ConsumerAddrs) == 0 || !tunnel.DefaultPoolV4.Contains(resp.ConsumerAddrs[0].Addr()) {
		t.Fatalf("consumer addrs %v not from the pool", resp.ConsumerAddrs)
	}
	if resp.Endpoint != "127.0.0.1:51820" || resp.ProviderWGKey != (sessionproto.Key{1, 2, 3}) {
		t.Fatalf("response %+v does not describe the exit", resp)
	}
	if resp.ExitIP != netip.MustParseAddr("127.0.0.1") { // the endpoint's address, no Config.ExitIP
		t.Fatalf("exit ip %v, want the exit endpoint's 127.0.0.1", resp.ExitIP)
	}
	if e.exit.count() != 1 || len(e.m.Sessions()) != 1 {
		t.Fatalf("%d exit peers, %d sessions; want 1 and 1", e.exit.count(), len(e.m.Sessions()))
	}
	// The provider speaks the payment protocol on the stream.
	if m, err := r.ReadMessage(context.Background()); err != nil {
		t.Fatal(err)
	} else if m.Type() != sessionproto.TypeKeepalive && m.Type() != sessionproto.TypeInvoice {
		t.Fatalf("got %T, want a keepalive or an invoice", m)
	}
	if err := w.WriteMessage(context.Background(), &sessionproto.Destroy{Reason: "user"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, errPeerEndedForTest()) {
			t.Fatalf("serve returned %v, want the peer ended", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end on Destroy")
	}
	if e.exit.count() != 0 || len(e.m.Sessions()) != 0 {
		t.Fatal("peer or session left behind")
	}
	rs, err := e.hist.List(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("history %v %v", rs, err)
	}
	if rs[0].End.IsZero() || rs[0].Consumer != e.consumer.Address() || rs[0].Bytes != 3000 || rs[0].Role != session.RoleProvider {
		t.Fatalf("history record %+v", rs[0])
	}
}

// TestSilentConsumerReadTimeout: a consumer that sends nothing (not
// even a keepalive) has its session ended by the provider's read timeout,
// told to it with the code read_timeout (internal before) and recorded in
// the provider's history as the read timeout.
func TestSilentConsumerReadTimeout(t *testing.T) {
	e := newEnv(t, funded, true, func(c *Config) { c.ReadTimeout = 300 * time.Millisecond })
	msg, _, r, _, done := e.open(t, e.request(t))
	if _, ok := msg.(*sessionproto.SessionResponse); !ok {
		t.Fatalf("got %T %v, want a session response", msg, msg)
	}
	em := readUntilError(t, r) // the consumer reads, and never writes
	if em.Code != sessionproto.CodeReadTimeout {
		t.Fatalf("session ended with %v, want code read_timeout", em)
	}
	if !strings.Contains(em.Error(), "heard nothing from this side") {
		t.Fatalf("the consumer's error %q does not say it in words", em)
	}
	select {
	case err := <-done:
		if !errors.Is(err, sessionproto.ErrReadTimeout) {
			t.Fatalf("serve returned %v, want the read timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end on the read timeout")
	}
	rs, err := e.hist.List(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("history %v %v", rs, err)
	}
	if !strings.Contains(rs[0].Reason, "nothing read within the read timeout") {
		t.Fatalf("history reason %q, want the read timeout", rs[0].Reason)
	}
}

func TestRefusals(t *testing.T) {
	funded := fakeFunds{registered: true, balance: big.NewInt(1e18)}
	cases := []struct {
		name      string
		funds     fakeFunds
		published bool
		mutate    func(e *env, req *sessionproto.SessionRequest)
		want      sessionproto.ErrorCode
	}{
		{"bad signature", funded, true, func(e *env, req *sessionproto.SessionRequest) { req.Signature[5] ^= 1 }, sessionproto.CodeBadSignature},
		{"price mismatch", funded, true, func(e *env, req *sessionproto.SessionRequest) {
			req.PricePerGiB = money.MustAmount(big.NewInt(1))
			if err := req.Sign(e.consumer); err != nil {
				panic(err)
			}
		}, sessionproto.CodePriceMismatch},
		{"stale proposal", funded, true, func(e *env, req *sessionproto.SessionRequest) {
			req.ProposalSeq = 6
			if err := req.Sign(e.consumer); err != nil {
				panic(err)
			}
		}, sessionproto.CodeProposalExpired},
		{"other hermes", funded, true, func(e *env, req *sessionproto.SessionRequest) {
			req.Hermes = common.HexToAddress("0x1234")
			if err := req.Sign(e.consumer); err != nil {
				panic(err)
			}
		}, sessionproto.CodeHermesNotAccepted},
		{"not published", funded, false, nil, sessionproto.CodeProposalExpired},
		{"not registered", fakeFunds{}, true, nil, sessionproto.CodeNotRegistered},
		{"empty channel", fakeFunds{registered: true, balance: new(big.Int)}, true, nil, sessionproto.CodeInsufficientFunds},
		{"chain unreachable", fakeFunds{err: errors.New("rpc down")}, true, nil, sessionproto.CodeInternal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.funds, tc.published)
			req := e.request(t)
			if tc.mutate != nil {
				tc.mutate(e, req)
			}
			msg, _, _, _, done := e.open(t, req)
			em, ok := msg.(*sessionproto.Error)
			if !ok || em.Code != tc.want {
				t.Fatalf("got %T %v, want error %s", msg, msg, tc.want)
			}
			<-done
			if e.exit.added != 0 {
				t.Fatal("a refused consumer was admitted to the exit")
			}
		})
	}
}

func TestReplayRefused(t *testing.T) {
	e := newEnv(t, fakeFunds{registered: true, balance: big.NewInt(1e18)}, true)
	req := e.request(t)
	msg, conn, _, _, _ := e.open(t, req)
	if _, ok := msg.(*sessionproto.SessionResponse); !ok {
		t.Fatalf("first request: %v", msg)
	}
	conn.Close()
	msg, _, _, _, _ = e.open(t, req)
	if em, ok := msg.(*sessionproto.Error); !ok || em.Code != sessionproto.CodeBadRequest {
		t.Fatalf("replayed request answered %v", msg)
	}
}

func TestFirstMessageMustBeRequest(t *testing.T) {
	e := newEnv(t, fakeFunds{registered: true, balance: big.NewInt(1e18)}, true)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() { done <- e.m.serve(e.m.ctx, &countingStream{sessionStream: a}) }()
	w, r := sessionproto.NewWriter(b, time.Second), sessionproto.NewReader(b, time.Second)
	if err := w.WriteMessage(context.Background(), &sessionproto.Keepalive{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	msg, err := r.ReadMessage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if em, ok := msg.(*sessionproto.Error); !ok || em.Code != sessionproto.CodeBadRequest {
		t.Fatalf("got %v, want bad_request", msg)
	}
	<-done
}

func errPeerEndedForTest() error { return paystream.ErrPeerEnded }

// TestICE: a request with an offer the policy refuses is refused whole
// before anything is admitted; one with a good offer gets the provider's
// offer back, and the connection the checks select is attached to the
// admitted peer, the session's path showing it.
func TestICE(t *testing.T) {
	e := newEnv(t, fakeFunds{registered: true, balance: big.NewInt(1e18)}, true)
	cfg := ice.Config{Policy: ice.CandidatePolicy{AllowPrivate: true}, Loopback: true, Timeout: 5 * time.Second}
	e.m.cfg.ICE = &cfg

	bad := e.request(t)
	bad.ICE = json.RawMessage(`{"ufrag":"abcdEFGH","pwd":"0123456789abcdefghijklmn","candidates":["1 1 udp 2130706431 169.254.169.254 80 typ host"]}`)
	if err := bad.Sign(e.consumer); err != nil {
		t.Fatal(err)
	}
	msg, _, _, _, done := e.open(t, bad)
	if perr, ok := msg.(*sessionproto.Error); !ok || perr.Code != sessionproto.CodeBadRequest {
		t.Fatalf("offer with a metadata-address candidate: %v, want bad_request", msg)
	}
	<-done
	if e.exit.count() != 0 {
		t.Fatal("a consumer with a refused offer was admitted")
	}

	_, req, r, w, done := e.openICE(t, cfg)
	pub := tunnel.PublicKey(req.WGPublicKey)
	deadline := time.Now().Add(5 * time.Second)
	for e.exit.conn(pub) == nil || len(e.m.Sessions()) != 1 || e.m.Sessions()[0].Path != ice.PathDirect {
		if time.Now().After(deadline) {
			t.Fatalf("no ICE connection attached: sessions %+v", e.m.Sessions())
		}
		time.Sleep(10 * time.Millisecond)
	}
	go drain(r) // the provider's keepalives and invoices (net.Pipe blocks writers)
	if err := w.WriteMessage(context.Background(), &sessionproto.Destroy{Reason: "user"}); err != nil {
		t.Fatal(err)
	}
	<-done
	if n := len(e.m.iceSlots); n != 0 {
		t.Fatalf("%d ICE slots held after the session", n)
	}
}

// TestICEChecksBounded: beyond MaxICEChecks sessions running ICE, a
// session is answered without an offer (the consumer uses the UDP
// endpoint) instead of opening more sockets and allocations.
func TestICEChecksBounded(t *testing.T) {
	e := newEnv(t, fakeFunds{registered: true, balance: big.NewInt(1e18)}, true)
	cfg := ice.Config{Policy: ice.CandidatePolicy{AllowPrivate: true}, Loopback: true, Timeout: 5 * time.Second}
	e.m.cfg.ICE = &cfg
	for range cap(e.m.iceSlots) { // every slot busy
		e.m.iceSlots <- struct{}{}
	}
	req := e.requestWithICE(t, json.RawMessage(`{"ufrag":"abcdEFGH","pwd":"0123456789abcdefghijklmn","candidates":["1 1 udp 2130706431 127.0.0.1 9 typ host"]}`))
	resp, r, w, done := e.openResponse(t, req)
	if len(resp.ICE) != 0 {
		t.Fatal("the provider ran ICE beyond MaxICEChecks")
	}
	if ss := e.m.Sessions(); len(ss) != 1 || ss[0].Path != PathStatic {
		t.Fatalf("sessions %+v, want one on the static path", ss)
	}
	go drain(r)
	if err := w.WriteMessage(context.Background(), &sessionproto.Destroy{Reason: "user"}); err != nil {
		t.Fatal(err)
	}
	<-done
	if len(e.m.iceSlots) != cap(e.m.iceSlots) {
		t.Fatalf("%d slots held after the session, want the test's %d", len(e.m.iceSlots), cap(e.m.iceSlots))
	}
}
