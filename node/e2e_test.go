package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/internal/tick"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/p2p/sessionproto"
	"github.com/openmyst/openmyst/payments"
	"github.com/openmyst/openmyst/session/consumer"
	"github.com/openmyst/openmyst/session/pingpong"
	"github.com/openmyst/openmyst/session/pingpong/paystream"
	"github.com/openmyst/openmyst/session/provider"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tunnel"
)

// Transactor fees of the end-to-end devnet, in wei: on consumer promises
// (the hermes's settlement), on hermes promises (the provider's
// settlement) and on registration.
var (
	e2eConsumerFee     = big.NewInt(3_000_000_000)
	e2eProviderFee     = big.NewInt(5_000_000_000)
	e2eRegistrationFee = big.NewInt(7_000_000_000_000_000)
)

// testPayment makes sessions pay every second so the tests see many
// invoices in a few seconds.
var testPayment = Payment{
	Interval: time.Second, CheckEvery: 100 * time.Millisecond, Grace: 2 * time.Second,
	Keepalive: time.Second, ReadTimeout: 5 * time.Second,
}

func testLog() *slog.Logger { return testenv.Logger() }

// payload is a deterministic download body.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

// startServer serves payload at / on loopback and returns the exit rule
// that lets providers reach it.
func startServer(t *testing.T, body []byte) (*httptest.Server, tunnel.Rule) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	rule, err := tunnel.ParseRule("tcp:127.0.0.1/32 port " + port)
	if err != nil {
		t.Fatal(err)
	}
	return srv, rule
}

// startTestDevnet starts a devnet with cfg and closes it when the test
// ends, failing the test if the close fails.
func startTestDevnet(ctx context.Context, t *testing.T, cfg DevnetConfig) *Devnet {
	t.Helper()
	d, err := StartDevnet(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close devnet: %v", err)
		}
	})
	return d
}

// startDevnetConsumer starts a devnet with cfg and its consumer, both
// closed when the test ends (the consumer first).
func startDevnetConsumer(ctx context.Context, t *testing.T, cfg DevnetConfig) (*Devnet, *Consumer) {
	t.Helper()
	d := startTestDevnet(ctx, t, cfg)
	c, err := d.StartConsumer(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return d, c
}

// download fetches url through the SOCKS5 proxy at socks.
func download(ctx context.Context, socks net.Addr, target string) ([]byte, error) {
	return downloadCounting(ctx, socks, target, nil)
}

// downloadCounting is download adding each chunk of the body read to n
// (nil: not counted).
func downloadCounting(ctx context.Context, socks net.Addr, target string, n *atomic.Int64) ([]byte, error) {
	proxyURL := &url.URL{Scheme: "socks5", Host: socks.String()}
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if n != nil {
		r = countingReader{r: r, n: n}
	}
	return io.ReadAll(r)
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// downloadTimeout bounds one end-to-end download, so a stalled tunnel
// fails its own subtest, not every later one through the shared context.
const downloadTimeout = 60 * time.Second

// watchedDownload downloads target through socks within downloadTimeout,
// sampling state (the connection's and the provider's view of the
// session) every second; when the download fails it reports every sample
// with the bytes received by then, so a stall shows which side stopped.
func watchedDownload(t *testing.T, ctx context.Context, socks net.Addr, target string, state func() string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	var n atomic.Int64
	var mu sync.Mutex
	var samples []string
	sample := func(start time.Time) {
		line := fmt.Sprintf("%6.1fs body %d bytes; %s", time.Since(start).Seconds(), n.Load(), state())
		mu.Lock()
		samples = append(samples, line)
		mu.Unlock()
	}
	start := time.Now()
	sample(start)
	sampling, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick.Every(sampling, time.Second, func(context.Context) { sample(start) })
	}()
	got, err := downloadCounting(ctx, socks, target, &n)
	stop()
	wg.Wait()
	if err != nil {
		sample(start)
		t.Logf("download through %s failed after %s with %d bytes: %v; state every second:\n%s",
			socks, time.Since(start).Round(time.Millisecond), n.Load(), err, strings.Join(samples, "\n"))
	}
	return got, err
}

// sessionState describes conn and the provider's side of its session.
func sessionState(conn *consumer.Connection, prov *Provider) string {
	if conn == nil {
		return "no connection"
	}
	s := conn.Status()
	out := fmt.Sprintf("consumer session %s running=%v err=%q path=%s rx=%d tx=%d invoices=%d",
		s.SessionID, s.Running, s.Err, s.Path, s.RxBytes, s.TxBytes, s.Invoices)
	if prov == nil {
		return out
	}
	found := false
	for _, ps := range prov.Sessions.Sessions() {
		if ps.ID == s.SessionID {
			found = true
			out += fmt.Sprintf("; provider path=%s bytes=%d invoices=%d paid=%d", ps.Path, ps.Bytes, ps.Tracker.Invoices, ps.Tracker.Paid)
		}
	}
	if !found {
		out += "; provider: no such session"
	}
	return out
}

func tokenBalance(t *testing.T, ctx context.Context, c *chain.Client, a interface{ Hex() string }, addr [20]byte) *big.Int {
	t.Helper()
	b, err := c.TokenBalance(ctx, addr)
	if err != nil {
		t.Fatalf("balance of %s: %v", a.Hex(), err)
	}
	return b
}

// TestEndToEnd runs a devnet in-process and drives paid sessions through
// it: an honest session settled on chain with exact balances, a consumer
// that stops paying, and an overcharging provider.
func TestEndToEnd(t *testing.T) {
	// The whole run's safety net; each download has its own, shorter
	// bound (downloadTimeout).
	ctx := testenv.Long(t, "end-to-end devnet test; skipped with -short", 4*time.Minute)
	body := payload(4 << 20)
	srv, rule := startServer(t, body)

	d, c := startDevnetConsumer(ctx, t, DevnetConfig{
		DataDir: t.TempDir(), Allow: []tunnel.Rule{rule}, Payment: testPayment, Log: testLog(),
		// Non-zero transactor fees everywhere, so the balance equations
		// test them.
		HermesMinFee: e2eConsumerFee, ProviderPromiseFee: e2eProviderFee, RegistrationFee: e2eRegistrationFee,
		// Provider 1 (US) overcharges: it triples every invoice.
		AdjustProvider: map[int]func(*ProviderConfig){1: overcharging(func(inv *payments.Invoice) {
			inv.AgreementTotal = new(big.Int).Add(new(big.Int).Mul(inv.AgreementTotal, big.NewInt(3)), big.NewInt(1e15))
		})},
	})
	// The registration fee came out of the consumer's channel.
	if st, err := d.Client.ChannelState(ctx, c.ChannelAddress); err != nil ||
		st.Balance.Cmp(new(big.Int).Sub(money.MYST(100), e2eRegistrationFee)) != 0 {
		t.Fatalf("consumer channel after registration: %v %v, want 100 MYST - the %s wei fee", st.Balance, err, e2eRegistrationFee)
	}
	ps, err := c.WaitProposals(ctx, market.Filter{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("%d proposals, want 3", len(ps))
	}

	t.Run("a consumer shares its node's p2p host", func(t *testing.T) {
		testSharedHost(t, ctx, d, c)
	})
	t.Run("paid session settles on chain with exact balances", func(t *testing.T) {
		testPaidSession(t, ctx, d, c, srv.URL, body)
	})
	t.Run("the paid session's quality report ranks its provider first", func(t *testing.T) {
		testQualityReport(t, d, c)
	})
	t.Run("consumer stops paying", func(t *testing.T) {
		testStopPaying(t, ctx, d, c)
	})
	t.Run("overcharging provider is refused", func(t *testing.T) {
		testOvercharge(t, ctx, d, c)
	})
	t.Run("hermes outage ends the session and loses nothing", func(t *testing.T) {
		testHermesOutage(t, ctx, d, c)
	})
	t.Run("provider restart keeps acknowledged earnings settleable", func(t *testing.T) {
		testProviderRestart(t, ctx, d, c)
	})
	t.Run("connection is re-established after the provider restarts", func(t *testing.T) {
		testReconnect(t, ctx, d, c, srv.URL, body)
	})
	t.Run("the control connection drops mid-session and the session resumes", func(t *testing.T) {
		testControlResume(t, ctx, d, c, srv.URL, body)
	})
	// Last: its payments to the DE provider stay unsettled.
	t.Run("a top-up after the consumer started pays the next session", func(t *testing.T) {
		testTopUpAfterStart(t, ctx, d, c)
	})
}

// testSharedHost: a consumer given a node's p2p host and discovery uses
// them (same peer id, same cache, no listener of its own) and leaves them
// running when it closes; the later subtests run on that host.
func testSharedHost(t *testing.T, ctx context.Context, d *Devnet, c *Consumer) {
	listen := len(c.P2P.Host.Network().ListenAddresses())
	c2, err := StartConsumer(ctx, ConsumerConfig{
		DataDir: t.TempDir(), Signer: d.ConsumerSigner, Chain: d.Client, Hermes: d.Chain.Deployment().Hermes,
		P2P: c.P2P, Discovery: c.Discovery, Log: testLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if c2.P2P.ID() != c.P2P.ID() || c2.Discovery != c.Discovery {
		t.Fatalf("shared consumer runs host %s, want the node's %s", c2.P2P.ID(), c.P2P.ID())
	}
	if got := len(c2.Proposals(ctx, market.Filter{})); got != 3 {
		t.Fatalf("shared consumer sees %d proposals, want the node's 3", got)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(c.P2P.Host.Network().ListenAddresses()); got != listen || got == 0 {
		t.Fatalf("node host listens on %d addresses after the shared consumer closed, want %d", got, listen)
	}
	if _, err := StartConsumer(ctx, ConsumerConfig{DataDir: t.TempDir(), Signer: d.ConsumerSigner, Chain: d.Client, P2P: c.P2P}); err == nil {
		t.Fatal("a consumer with a host but no discovery service started")
	}
}

// testTopUpAfterStart: a consumer started on an empty channel (ledger
// balance 0) is topped up afterwards; its next session pays invoices from
// the new balance instead of refusing the first one.
func testTopUpAfterStart(t *testing.T, ctx context.Context, d *Devnet, c *Consumer) {
	k := keytest.Key(t)
	signer := identity.NewKeySigner(k)
	hermesID := d.Chain.Deployment().Hermes
	// Registration pays its transactor fee out of the pre-funded channel:
	// consumer paid (the whole pre-fund) = transactor fee.
	channel := d.Client.ChannelAddress(signer.Address(), hermesID)
	if _, err := d.Client.Mint(ctx, channel, e2eRegistrationFee); err != nil {
		t.Fatal(err)
	}
	tx := d.Client.Transactor().Address()
	// The transactor's balance also moves with the hermes' background
	// settlements (their fees), so the fee is read from the token's
	// Transfer events from this channel to the transactor instead of from
	// the transactor's balance (which made this check flaky).
	head, err := d.Client.Backend().HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureRegisteredFee(ctx, d.Client, signer, hermesID, e2eRegistrationFee, nil); err != nil {
		t.Fatal(err)
	}
	st, err := d.Client.ChannelState(ctx, channel)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := bindings.NewMystTokenFilterer(d.Chain.Deployment().Token, d.Client.Backend())
	if err != nil {
		t.Fatal(err)
	}
	it, err := tok.FilterTransfer(&bind.FilterOpts{Start: head.Number.Uint64() + 1, Context: ctx}, []common.Address{channel}, []common.Address{tx})
	if err != nil {
		t.Fatal(err)
	}
	got := new(big.Int)
	for it.Next() {
		got.Add(got, it.Event.Value)
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	it.Close()
	if st.Balance.Sign() != 0 || got.Cmp(e2eRegistrationFee) != 0 {
		t.Fatalf("registration: channel left %s, transactor got %s from it, want 0 and the %s fee", st.Balance, got, e2eRegistrationFee)
	}
	c2, err := StartConsumer(ctx, ConsumerConfig{
		DataDir: t.TempDir(), Signer: signer, Chain: d.Client, Hermes: hermesID, MaxFee: d.cfg.HermesMinFee,
		P2P: c.P2P, Discovery: c.Discovery, Log: testLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := d.Client.Mint(ctx, c2.ChannelAddress, money.MYST(1)); err != nil {
		t.Fatal(err)
	}
	conn, err := c2.Connect(ctx, market.Filter{Country: "DE"}, consumer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitInvoices(t, conn, 2)
	if err := conn.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.Err(); err != nil {
		t.Fatalf("session on the topped-up channel ended with %v", err)
	}
	promised, err := c2.Channel.Promised(ctx)
	if err != nil || promised.Sign() <= 0 || promised.Cmp(conn.PayerStats().Paid) != 0 {
		t.Fatalf("ledger promised %v (%v), session paid %s", promised, err, conn.PayerStats().Paid)
	}
}

// connectionAPI is a ConnectionAPI on c whose connection is closed when
// the test ends (with ctx's values, not its cancellation: the test's
// deferred cancel runs before its cleanups). The close is bounded: a
// connection that cannot close fails this (sub)test, not the next ones
// through the shared context.
func connectionAPI(ctx context.Context, t *testing.T, c *Consumer) *ConnectionAPI {
	api := &ConnectionAPI{Consumer: func(context.Context) (*Consumer, error) { return c, nil }, Log: testLog()}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := api.Close(cctx); err != nil {
			t.Errorf("close the connection: %v", err)
		}
	})
	return api
}

func testReconnect(t *testing.T, ctx context.Context, d *Devnet, c *Consumer, target string, body []byte) {
	api := connectionAPI(ctx, t, c)
	st, err := api.Connect(ctx, tequilapi.ConnectRequest{Country: "DE", SOCKSListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Provider != d.Providers[0].Address().Hex() || !st.Running || st.Country != "DE" {
		t.Fatalf("status %+v", st)
	}
	// The public address through the tunnel is the provider's exit
	// (loopback on the devnet), confirmed first by the tunnel's peer
	// address, then by the devnet relay's STUN server, which sees the
	// request the consumer sends through the tunnel come from the exit's
	// egress: loopback, the exit's own address, on the devnet.
	want := d.Providers[0].Exit.Endpoint().Addr().String()
	if st.PublicIP != want || (st.PublicIPCheck != consumer.IPMatchesPeer && st.PublicIPCheck != consumer.IPConfirmedSTUN) {
		t.Fatalf("public ip %q (%s), want the provider's exit %s (%s)", st.PublicIP, st.PublicIPCheck, want, consumer.IPMatchesPeer)
	}
	for seen := time.Now().Add(15 * time.Second); st.PublicIPSeen == "" && time.Now().Before(seen); time.Sleep(50 * time.Millisecond) {
		if st, err = api.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st.PublicIPSeen != want || st.PublicIPCheck != consumer.IPConfirmedSTUN {
		t.Fatalf("seen by STUN %q (%s), want the provider's exit egress %s (%s)", st.PublicIPSeen, st.PublicIPCheck, want, consumer.IPConfirmedSTUN)
	}
	// SOCKSListen ":0" picks a new port per session; fetch through the
	// tunnel instead.
	if _, err := d.RestartProvider(ctx, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var now tequilapi.ConnectionStatus
	for {
		if now, err = api.Status(ctx); err != nil {
			t.Fatal(err)
		}
		if now.Reconnects == 1 && now.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reconnected: %+v", now)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if now.SessionID == st.SessionID || now.Provider != st.Provider {
		t.Fatalf("after reconnect %+v, before %+v", now, st)
	}
	sa, err := net.ResolveTCPAddr("tcp", now.SOCKS)
	if err != nil {
		t.Fatal(err)
	}
	got, err := watchedDownload(t, ctx, sa, target, func() string {
		var conn *consumer.Connection
		api.mu.Lock()
		if api.cur != nil {
			conn = api.cur.conn
		}
		api.mu.Unlock()
		return sessionState(conn, d.Providers[0])
	})
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("download after reconnect (session %s, first session %s): %d bytes, %v", now.SessionID, st.SessionID, len(got), err)
	}
	if err := api.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Status(ctx); !errors.Is(err, tequilapi.ErrNotConnected) {
		t.Fatalf("status after disconnect: %v", err)
	}
}

// waitInvoices waits until conn has paid n invoices. A session that ends
// first fails at once with the reason it ended (a provider that ended it
// for a payment that did not settle in time, ...), not after the wait.
func waitInvoices(t *testing.T, conn *consumer.Connection, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for conn.PayerStats().Invoices < n {
		select {
		case <-conn.Done():
			if conn.PayerStats().Invoices >= n {
				return
			}
			t.Fatalf("session %s ended after %d paid invoices, want %d: %v", conn.ID(), conn.PayerStats().Invoices, n, conn.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d invoices paid, want %d (session %s: %s)", conn.PayerStats().Invoices, n, conn.ID(), sessionState(conn, nil))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// payingSession connects c to d's first provider and waits until n
// invoices are paid. It returns the provider, its ended sessions (watched
// from before the connect), its earnings before the session, and the
// connection.
func payingSession(t *testing.T, ctx context.Context, d *Devnet, c *Consumer, n int) (*Provider, <-chan provider.Ended, Earnings, *consumer.Connection) {
	t.Helper()
	prov := d.Providers[0]
	ended := endedWatcher(prov)
	before, err := prov.Earnings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.Connect(ctx, market.Filter{ProviderID: prov.Address()}, consumer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitInvoices(t, conn, n)
	return prov, ended, before, conn
}

func testHermesOutage(t *testing.T, ctx context.Context, d *Devnet, c *Consumer) {
	prov, ended, before, conn := payingSession(t, ctx, d, c, 2)
	d.Hermes.StopAPI()
	restarted := false
	defer func() {
		if !restarted {
			_ = d.Hermes.StartAPI()
		}
	}()
	// The consumer keeps paying, but no payment settles: the provider
	// ends the session after the grace period.
	select {
	case <-conn.Done():
	case <-time.After(testPayment.Interval + testPayment.Grace + 10*time.Second):
		t.Fatal("session outlived the hermes outage by more than the grace period")
	}
	var perr *sessionproto.Error
	if err := conn.Err(); !errors.As(err, &perr) || perr.Code != sessionproto.CodePaymentTimeout {
		t.Fatalf("consumer saw %v, want payment_timeout", err)
	}
	paid := conn.PayerStats().Paid
	if err := d.Hermes.StartAPI(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	e := waitEnded(t, ended, conn.ID(), 20*time.Second)
	if !errors.Is(e.Err, pingpong.ErrPaymentTimeout) {
		t.Fatalf("provider ended with %v, want a payment timeout", e.Err)
	}
	after, err := prov.Earnings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Everything the provider accepted reached the hermes.
	if got := new(big.Int).Sub(after.Earned, before.Earned); got.Cmp(e.Stats.Accepted) != 0 {
		t.Fatalf("hermes credited %s after the outage, provider accepted %s", got, e.Stats.Accepted)
	}
	checkInFlight(t, prov, paid, e.Stats.Accepted)
	rec, _, err := prov.History.Get(ctx, e.ID)
	if err != nil || rec.PaidInt().Cmp(e.Stats.Accepted) != 0 {
		t.Fatalf("history paid %s (%v), provider accepted %s", rec.Paid, err, e.Stats.Accepted)
	}
}

// checkInFlight: the consumer may have paid one invoice more than the
// provider accepted (an exchange message in flight when the provider ended
// the session); never more than one interval's worth.
func checkInFlight(t *testing.T, prov *Provider, paid, accepted *big.Int) {
	t.Helper()
	gap := new(big.Int).Sub(paid, accepted)
	p, _ := prov.Proposal()
	price := pingpong.Price{PerHour: p.Price.PerHour.Int(), PerGiB: p.Price.PerGiB.Int()}
	limit := pingpong.DefaultTolerance.Allowed(price, testPayment.Interval+testPayment.CheckEvery, 1<<20)
	if gap.Sign() < 0 || gap.Cmp(limit) > 0 {
		t.Fatalf("consumer paid %s, provider accepted %s: gap %s outside [0, %s]", paid, accepted, gap, limit)
	}
	if gap.Sign() > 0 {
		t.Logf("an exchange message of %s wei was in flight when the session ended", gap)
	}
}

func testProviderRestart(t *testing.T, ctx context.Context, d *Devnet, c *Consumer) {
	_, ended, before, conn := payingSession(t, ctx, d, c, 3)
	np, err := d.RestartProvider(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("consumer session survived the provider going away")
	}
	paid := conn.PayerStats().Paid
	e := waitEnded(t, ended, conn.ID(), 10*time.Second)
	checkInFlight(t, np, paid, e.Stats.Accepted)
	paid = e.Stats.Accepted
	// Everything the provider accepted reaches the hermes: what the old
	// process had not forwarded is recovered by the new one at start.
	deadline := time.Now().Add(15 * time.Second)
	var after Earnings
	for {
		if after, err = np.Earnings(ctx); err != nil {
			t.Fatal(err)
		}
		if new(big.Int).Sub(after.Earned, before.Earned).Cmp(paid) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := new(big.Int).Sub(after.Earned, before.Earned); got.Cmp(paid) != 0 {
		t.Fatalf("hermes credited %s across the restart, consumer paid %s", got, paid)
	}
	if _, err := d.Hermes.Service.SettleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	balBefore, err := d.Client.TokenBalance(ctx, np.Address())
	if err != nil {
		t.Fatal(err)
	}
	s, err := np.Settle(ctx)
	if err != nil {
		t.Fatalf("settle after restart: %v", err)
	}
	if s.Amount.Cmp(after.Earned) != 0 {
		t.Fatalf("settled %s, hermes promised %s", s.Amount, after.Earned)
	}
	balAfter, err := d.Client.TokenBalance(ctx, np.Address())
	if err != nil {
		t.Fatal(err)
	}
	hs, err := d.Client.HermesState(ctx, d.Chain.Deployment().Hermes)
	if err != nil {
		t.Fatal(err)
	}
	delta := new(big.Int).Sub(after.Earned, after.Settled)
	want := new(big.Int).Sub(delta, new(big.Int).Div(new(big.Int).Mul(delta, big.NewInt(int64(hs.FeeBps))), big.NewInt(10000)))
	want.Sub(want, e2eProviderFee) // the settlement's transactor fee
	if got := new(big.Int).Sub(balAfter, balBefore); got.Cmp(want) != 0 {
		t.Fatalf("provider received %s after restart, want %s (minus the hermes fee and the %s transactor fee)", got, want, e2eProviderFee)
	}
}

func endedWatcher(p *Provider) <-chan provider.Ended {
	ch := make(chan provider.Ended, 8)
	p.Sessions.OnEnded(func(e provider.Ended) {
		select {
		case ch <- e:
		default:
		}
	})
	return ch
}

// waitEnded returns the provider's end of session id, skipping the ends
// of other sessions (an earlier subtest's session with the same provider
// may end after this one's watcher started), within the given time.
func waitEnded(t *testing.T, ch <-chan provider.Ended, id string, within time.Duration) provider.Ended {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case e := <-ch:
			if e.ID == id {
				return e
			}
			t.Logf("skipped the end of session %s (not %s): accepted %s", e.ID, id, e.Stats.Accepted)
		case <-timeout:
			t.Fatalf("provider session %s did not end within %s", id, within)
			return provider.Ended{}
		}
	}
}

func testPaidSession(t *testing.T, ctx context.Context, d *Devnet, c *Consumer, target string, body []byte) {
	prov := d.Providers[0]
	ended := endedWatcher(prov)
	dep := d.Chain.Deployment()
	cl := d.Client
	chBefore, err := cl.ChannelState(ctx, c.ChannelAddress)
	if err != nil {
		t.Fatal(err)
	}
	provBefore := tokenBalance(t, ctx, cl, prov.Address(), prov.Address())
	hermesBefore := tokenBalance(t, ctx, cl, dep.Hermes, dep.Hermes)
	tx := cl.Transactor().Address()
	txBefore := tokenBalance(t, ctx, cl, tx, tx)

	conn, err := c.Connect(ctx, market.Filter{Country: "DE"}, consumer.Options{SOCKSListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if conn.Proposal().ProviderID != prov.Address() {
		t.Fatalf("connected to %s, want the DE provider %s", conn.Proposal().ProviderID.Hex(), prov.Address().Hex())
	}
	got, err := watchedDownload(t, ctx, conn.SOCKSAddr(), target, func() string { return sessionState(conn, prov) })
	if err != nil {
		t.Fatalf("download through the tunnel: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(body) {
		t.Fatalf("downloaded %d bytes, not the %d-byte payload", len(got), len(body))
	}
	// Let a few invoices be paid.
	deadline := time.Now().Add(20 * time.Second)
	for conn.PayerStats().Invoices < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d invoices paid", conn.PayerStats().Invoices)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := conn.Status()
	if !st.Running || st.RxBytes < uint64(len(body)) {
		t.Fatalf("status %+v: want running with at least %d bytes received", st, len(body))
	}
	// The devnet runs ICE (its relay's STUN and TURN, loopback host
	// candidates): the tunnel went over the direct ICE pair, on both sides.
	if st.Path != ice.PathDirect {
		t.Fatalf("consumer session path %q, want %q", st.Path, ice.PathDirect)
	}
	if ss := prov.Sessions.Sessions(); len(ss) != 1 || ss[0].Path != ice.PathDirect {
		t.Fatalf("provider sessions %+v, want one on the %q path", ss, ice.PathDirect)
	}
	e := disconnectCleanly(t, ctx, conn, ended)
	paid := conn.PayerStats().Paid
	if paid.Sign() <= 0 {
		t.Fatal("consumer paid nothing")
	}
	promised, err := c.Channel.Promised(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if promised.Cmp(paid) != 0 {
		t.Fatalf("channel ledger %s, session paid %s", promised, paid)
	}
	if e.Stats.Settled.Cmp(paid) != 0 {
		t.Fatalf("provider settled with hermes %s, consumer paid %s", e.Stats.Settled, paid)
	}
	// The provider's bytes and the consumer's agree within the tolerance.
	if e.Bytes < uint64(len(body)) {
		t.Fatalf("provider counted %d bytes for a %d-byte download", e.Bytes, len(body))
	}
	rec, ok, err := prov.History.Get(ctx, e.ID)
	if err != nil || !ok || rec.End.IsZero() || rec.PaidInt().Cmp(paid) != 0 {
		t.Fatalf("provider history %+v %v %v, want ended with paid %s", rec, ok, err, paid)
	}
	if rec.Path != ice.PathDirect {
		t.Fatalf("provider history path %q, want %q", rec.Path, ice.PathDirect)
	}
	if crec, ok, err := c.History.Get(ctx, e.ID); err != nil || !ok || crec.Path != ice.PathDirect {
		t.Fatalf("consumer history %+v %v %v, want the %q path", crec, ok, err, ice.PathDirect)
	}

	// The hermes claims the consumer's promise, the provider settles.
	if _, err := d.Hermes.Service.SettleOnce(ctx); err != nil {
		t.Fatalf("hermes settlement: %v", err)
	}
	earn, err := prov.Earnings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if earn.Earned.Cmp(paid) != 0 {
		t.Fatalf("hermes earned %s for the provider, consumer paid %s", earn.Earned, paid)
	}
	s := testAutoSettle(t, ctx, prov, paid)
	if _, err := prov.Settle(ctx); !errors.Is(err, ErrNothingToSettle) {
		t.Fatalf("second settle: %v, want ErrNothingToSettle", err)
	}

	chAfter, err := cl.ChannelState(ctx, c.ChannelAddress)
	if err != nil {
		t.Fatal(err)
	}
	provAfter := tokenBalance(t, ctx, cl, prov.Address(), prov.Address())
	hermesAfter := tokenBalance(t, ctx, cl, dep.Hermes, dep.Hermes)
	txAfter := tokenBalance(t, ctx, cl, tx, tx)
	consumerPaid := new(big.Int).Sub(chBefore.Balance, chAfter.Balance)
	providerGot := new(big.Int).Sub(provAfter, provBefore)
	// The hermes keeps its fee but paid the consumer settlement's
	// transactor fee out of what the consumer's channel sent it.
	hermesNet := new(big.Int).Sub(hermesAfter, hermesBefore)
	transactorGot := new(big.Int).Sub(txAfter, txBefore)
	if consumerPaid.Cmp(paid) != 0 {
		t.Fatalf("consumer channel paid %s on chain, promised %s", consumerPaid, paid)
	}
	hs, err := cl.HermesState(ctx, dep.Hermes)
	if err != nil {
		t.Fatal(err)
	}
	hermesFee := new(big.Int).Div(new(big.Int).Mul(paid, big.NewInt(int64(hs.FeeBps))), big.NewInt(10000))
	if want := new(big.Int).Sub(hermesFee, e2eConsumerFee); hermesNet.Cmp(want) != 0 {
		t.Fatalf("hermes kept %s, want its %d bps fee %s minus the consumer settlement's transactor fee %s", hermesNet, hs.FeeBps, hermesFee, e2eConsumerFee)
	}
	// One consumer settlement and one provider settlement.
	if want := new(big.Int).Add(e2eConsumerFee, e2eProviderFee); transactorGot.Cmp(want) != 0 {
		t.Fatalf("transactor got %s, want the two settlement fees %s", transactorGot, want)
	}
	// consumer paid = provider received + hermes fee + transactor fees
	// (the consumer settlement's fee reached the transactor through the
	// hermes: hermesNet + transactorGot = hermes fee + both fees).
	sum := new(big.Int).Add(providerGot, hermesNet)
	sum.Add(sum, transactorGot)
	if sum.Cmp(consumerPaid) != 0 {
		t.Fatalf("consumer paid %s but provider got %s + hermes %s + transactor fees %s = %s", consumerPaid, providerGot, hermesNet, transactorGot, sum)
	}
	if want := new(big.Int).Sub(paid, hermesFee); want.Sub(want, e2eProviderFee).Cmp(providerGot) != 0 {
		t.Fatalf("provider got %s, want paid %s - hermes fee %s - transactor fee %s", providerGot, paid, hermesFee, e2eProviderFee)
	}
	t.Logf("paid %s wei for %d bytes in %d invoices; provider got %s, hermes fee %s, transactor fees %s, settlement tx %s",
		paid, e.Bytes, conn.PayerStats().Invoices, providerGot, hermesFee, transactorGot, s.Tx.Hex())
}

// testAutoSettle: the auto-settlement policy against the real chain and
// hermes. It refuses below the threshold and above the fee share (nothing
// recorded), then settles everything, recording the attempt durably with
// its fees and beneficiary.
func testAutoSettle(t *testing.T, ctx context.Context, prov *Provider, paid *big.Int) Settlement {
	t.Helper()
	st := prov.settler()
	high := SettlePolicy{Threshold: new(big.Int).Add(paid, big.NewInt(1)), MaxFeeShareBps: 10000, Interval: time.Second}
	if ok, why, err := st.AutoSettleOnce(ctx, prov.Settlements, high, TriggerAuto); err != nil || ok || !strings.Contains(why, "below the threshold") {
		t.Fatalf("above the earnings threshold: settled %v (%q, %v)", ok, why, err)
	}
	stingy := SettlePolicy{Threshold: big.NewInt(1), MaxFeeShareBps: 0, Interval: time.Second}
	if ok, why, err := st.AutoSettleOnce(ctx, prov.Settlements, stingy, TriggerAuto); err != nil || ok || !strings.Contains(why, "more than 0 bps") {
		t.Fatalf("fees above a 0 bps share: settled %v (%q, %v)", ok, why, err)
	}
	if h, err := prov.SettlementHistory(ctx, 0); err != nil || len(h) != 0 {
		t.Fatalf("history after two skipped checks: %+v %v", h, err)
	}
	pol := SettlePolicy{Threshold: big.NewInt(1), MaxFeeShareBps: 5000, Interval: time.Second}
	if ok, why, err := st.AutoSettleOnce(ctx, prov.Settlements, pol, TriggerAuto); err != nil || !ok {
		t.Fatalf("auto-settlement: settled %v (%q, %v)", ok, why, err)
	}
	h, err := prov.SettlementHistory(ctx, 0)
	if err != nil || len(h) != 1 {
		t.Fatalf("history %+v %v, want one record", h, err)
	}
	terms, err := prov.cfg.Chain.HermesTerms(ctx, prov.cfg.Hermes)
	if err != nil {
		t.Fatal(err)
	}
	hermesFee := new(big.Int).Div(new(big.Int).Mul(paid, big.NewInt(int64(terms.FeeBps))), big.NewInt(10000))
	r := h[0]
	if r.Status != StatusSettled || r.Trigger != TriggerAuto || r.Attempt != 1 || r.Amount != paid.String() || r.Unsettled != paid.String() ||
		r.HermesFee != hermesFee.String() || r.TransactorFee != e2eProviderFee.String() || r.Beneficiary != prov.Address().Hex() || len(r.Tx) != 66 || r.Error != "" {
		t.Fatalf("history record %+v, want settled %s (hermes fee %s, transactor fee %s) to %s", r, paid, hermesFee, e2eProviderFee, prov.Address().Hex())
	}
	return Settlement{Tx: common.HexToHash(r.Tx), Amount: paid}
}

// disconnectCleanly disconnects conn, which must end without an error,
// and waits (10 s) for the provider's end of the session on ended, which
// must be clean or the consumer's leaving; it returns that end. The ends
// of other sessions are skipped: a session of an earlier subtest on the
// same provider ends after its consumer disconnected (the provider
// settles it first), possibly after ended was set up.
func disconnectCleanly(t *testing.T, ctx context.Context, conn *consumer.Connection, ended <-chan provider.Ended) provider.Ended {
	t.Helper()
	if err := conn.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.Err(); err != nil {
		t.Fatalf("clean disconnect ended with %v", err)
	}
	e := waitEnded(t, ended, conn.ID(), 10*time.Second)
	if e.Err != nil && !isPeerEnded(e.Err) {
		t.Fatalf("provider session ended with %v", e.Err)
	}
	return e
}

func isPeerEnded(err error) bool { return errors.Is(err, paystream.ErrPeerEnded) }

func testStopPaying(t *testing.T, ctx context.Context, d *Devnet, c *Consumer) {
	prov := d.Providers[0]
	ended := endedWatcher(prov)
	before, err := c.Channel.Promised(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	conn, err := c.Connect(ctx, market.Filter{ProviderID: prov.Address()}, consumer.Options{PayLoop: notPaying})
	if err != nil {
		t.Fatal(err)
	}
	// Bound: first invoice after Interval, cut off Grace later, noticed
	// within CheckEvery; plus generous scheduling slack.
	bound := testPayment.Interval + testPayment.Grace + testPayment.CheckEvery
	e := waitEnded(t, ended, conn.ID(), bound+10*time.Second)
	took := time.Since(start)
	if !errors.Is(e.Err, pingpong.ErrPaymentTimeout) {
		t.Fatalf("provider ended the session with %v, want a payment timeout", e.Err)
	}
	<-conn.Done()
	var perr *sessionproto.Error
	if err := conn.Err(); !errors.As(err, &perr) || perr.Code != sessionproto.CodePaymentTimeout {
		t.Fatalf("consumer saw %v, want a payment_timeout error", err)
	}
	if e.Stats.Settled.Sign() != 0 {
		t.Fatalf("settled %s from a consumer that never paid", e.Stats.Settled)
	}
	// Unpaid exposure: what the session was worth when cut off, which is
	// at most the price of bound plus the time it took to be noticed.
	p, _ := prov.Proposal()
	price := pingpong.Price{PerHour: p.Price.PerHour.Int(), PerGiB: p.Price.PerGiB.Int()}
	limit := price.Total(took+time.Second, e.Bytes)
	if e.Stats.Owed.Cmp(limit) > 0 {
		t.Fatalf("unpaid %s above the bound %s", e.Stats.Owed, limit)
	}
	after, err := c.Channel.Promised(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Cmp(before) != 0 {
		t.Fatalf("consumer promised %s more while not paying", new(big.Int).Sub(after, before))
	}
	t.Logf("cut off after %s (bound %s + slack), unpaid %s wei", took.Round(time.Millisecond), bound, e.Stats.Owed)
}

func testOvercharge(t *testing.T, ctx context.Context, d *Devnet, c *Consumer) {
	prov := d.Providers[1]
	before, err := c.Channel.Promised(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.Connect(ctx, market.Filter{ProviderID: prov.Address()}, consumer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("consumer did not disconnect from the overcharging provider")
	}
	if err := conn.Err(); !errors.Is(err, pingpong.ErrOvercharge) {
		t.Fatalf("consumer ended with %v, want ErrOvercharge", err)
	}
	if paid := conn.PayerStats().Paid; paid != nil && paid.Sign() != 0 {
		t.Fatalf("paid %s to an overcharging provider", paid)
	}
	after, err := c.Channel.Promised(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Cmp(before) != 0 {
		t.Fatalf("promised %s more to an overcharging provider", new(big.Int).Sub(after, before))
	}
	// The refused invoice proves the overcharge: the consumer published
	// the proof and every node, the bootstrap included, blacklists the
	// provider and stops listing it.
	deadline := time.Now().Add(30 * time.Second)
	for !c.Trust.Service.Blocked(prov.Address()) || !d.bootTrust.Service.Blocked(prov.Address()) {
		if time.Now().After(deadline) {
			t.Fatalf("overcharger not blacklisted: consumer %v, bootstrap %v",
				c.Trust.Service.Blocked(prov.Address()), d.bootTrust.Service.Blocked(prov.Address()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := c.Discovery.Cache().Get(prov.Address()); ok {
		t.Fatal("the consumer still lists the blacklisted provider")
	}
	if _, err := c.Connect(ctx, market.Filter{ProviderID: prov.Address()}, consumer.Options{}); !errors.Is(err, consumer.ErrNoProposal) {
		t.Fatalf("connect to the blacklisted provider: %v, want no proposal", err)
	}
}

// testQualityReport: the consumer's signed report on its paid session
// (backed by its exchange message and its funded channel on the chain)
// is counted by its own node and the bootstrap, and sort=quality puts
// that provider first although another one is cheaper.
func testQualityReport(t *testing.T, d *Devnet, c *Consumer) {
	de := d.Providers[0].Address()
	deadline := time.Now().Add(30 * time.Second)
	for c.Trust.Service.Score(de).Reports == 0 || d.bootTrust.Service.Score(de).Reports == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("report not counted: consumer %+v, bootstrap %+v (stats %+v)", c.Trust.Service.Score(de),
				d.bootTrust.Service.Score(de), d.bootTrust.Service.ReportStats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := d.bootTrust.Service.Score(de); s.Value <= d.bootTrust.Service.Score(common.Address{}).Value || s.SuccessRate != 1 || s.MedianConnectMs == 0 {
		t.Fatalf("bootstrap's score of the paid provider: %+v", s)
	}
	byPrice := c.Discovery.Cache().Query(market.Filter{})
	byQuality := c.Discovery.Cache().Query(market.Filter{Sort: market.SortQuality})
	if byPrice[0].ProviderID == de || byQuality[0].ProviderID != de {
		t.Fatalf("first by price %s, by quality %s; want a cheaper one by price and %s by quality",
			byPrice[0].ProviderID.Hex(), byQuality[0].ProviderID.Hex(), de.Hex())
	}
}

// overcharging makes a provider play a cheat: every invoice is changed by
// tamper and signed again before it is sent.
func overcharging(tamper func(*payments.Invoice)) func(*ProviderConfig) {
	return func(pc *ProviderConfig) {
		signer := pc.Signer
		pc.SendInvoice = func(w *sessionproto.Writer) func(context.Context, *payments.Invoice) error {
			send := paystream.InvoiceSender(w)
			return func(ctx context.Context, inv *payments.Invoice) error {
				c := *inv
				tamper(&c)
				if err := c.Sign(signer); err != nil {
					return err
				}
				return send(ctx, &c)
			}
		}
	}
}

// notPaying is a consumer.Options.PayLoop that keeps a session's stream
// alive (a keepalive per testPayment.Keepalive, as the devnet's consumers
// send) without paying anything, to test the provider's cut-off. With
// paystream.DefaultKeepalive (10 s) it sent nothing within the
// provider's 5 s ReadTimeout, and on a loaded machine the read deadline
// ended the session before the payment timeout did.
func notPaying(ctx context.Context, r *sessionproto.Reader, w *sessionproto.Writer) error {
	keepalive := testPayment.Keepalive
	var wg sync.WaitGroup
	kctx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(keepalive)
		defer t.Stop()
		var seq uint64
		for {
			select {
			case <-kctx.Done():
				return
			case <-t.C:
				seq++
				_ = w.WriteMessage(kctx, &sessionproto.Keepalive{Seq: seq})
			}
		}
	}()
	for {
		msg, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		switch v := msg.(type) {
		case *sessionproto.Destroy:
			return fmt.Errorf("%w: %s", paystream.ErrPeerEnded, v.Reason)
		case *sessionproto.Error:
			return v
		}
	}
}
