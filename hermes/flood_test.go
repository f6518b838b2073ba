package hermes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/clocktest"
	"github.com/openmyst/openmyst/payments"
)

// countingChain counts the consumer channel reads that reach the chain.
type countingChain struct {
	Chain
	reads atomic.Int64
}

func (c *countingChain) ConsumerChannel(ctx context.Context, consumer common.Address) (ChannelInfo, error) {
	c.reads.Add(1)
	return c.Chain.ConsumerChannel(ctx, consumer)
}

// newCountingEnv runs a Service over a counting wrapper of a fake chain,
// on a settable clock, with a fresh SQLite store.
func newCountingEnv(t *testing.T, mod func(*Config)) (*env, *countingChain, *clocktest.Clock) {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hermes.db"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Unix(1_800_000_000, 0))
	e := &env{st: st, chain: newFakeChain(testHermes), op: testSigner("operator"), reg: prometheus.NewRegistry()}
	cc := &countingChain{Chain: e.chain}
	cfg := Config{ChainID: testChainID, HermesID: testHermes, Operator: e.op, SettleInterval: time.Hour, Metrics: NewMetrics(e.reg), MaxBatch: 64, clock: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	if e.svc, err = New(cfg, st, cc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = st.Close()
	})
	return e, cc, clk
}

// TestNegativeCache: a second message from an unregistered identity, or
// from one without a channel with this hermes, costs no chain read until
// NegativeCacheTTL has passed.
func TestNegativeCache(t *testing.T) {
	const ttl = 10 * time.Second
	e, cc, clk := newCountingEnv(t, func(c *Config) { c.Limits.NegativeCacheTTL = ttl })
	ctx := context.Background()
	prov := testSigner("p").Address()

	stranger := testSigner("stranger")
	for i := int64(1); i <= 3; i++ {
		_, err := e.svc.Exchange(ctx, msg(t, stranger, prov, 1, i, i, secret(fmt.Sprint("s", i))))
		if CodeOf(err) != CodeNotRegistered {
			t.Fatalf("message %d of an unregistered identity: %v", i, err)
		}
		if n := cc.reads.Load(); n != 1 {
			t.Fatalf("after %d messages of one unregistered identity: %d chain reads, want 1", i, n)
		}
	}

	// Registered, but with another hermes: also a negative answer.
	other := testSigner("other hermes consumer")
	e.chain.mu.Lock()
	e.chain.channels[other.Address()] = &ChannelInfo{Channel: fakeChannelAddress(other.Address(), testHermes), Registered: true,
		Hermes: common.HexToAddress("0x0101010101010101010101010101010101010101"), Balance: big.NewInt(1000), Settled: new(big.Int)}
	e.chain.mu.Unlock()
	for i := int64(1); i <= 2; i++ {
		if _, err := e.svc.Exchange(ctx, msg(t, other, prov, 1, i, i, secret(fmt.Sprint("o", i)))); CodeOf(err) != CodeNotRegistered {
			t.Fatalf("message %d for another hermes: %v", i, err)
		}
	}
	if n := cc.reads.Load(); n != 2 {
		t.Fatalf("two identities' negative answers took %d chain reads, want 2", n)
	}

	// The stranger registers: after the TTL it is read again and accepted.
	e.chain.register(stranger.Address(), 1000)
	clk.Add(ttl - time.Second)
	if _, err := e.svc.Exchange(ctx, msg(t, stranger, prov, 1, 4, 4, secret("s4"))); CodeOf(err) != CodeNotRegistered || cc.reads.Load() != 2 {
		t.Fatalf("within the TTL: %v, %d chain reads", err, cc.reads.Load())
	}
	clk.Add(time.Second)
	if _, err := e.svc.Exchange(ctx, msg(t, stranger, prov, 1, 5, 5, secret("s5"))); err != nil {
		t.Fatalf("registered after the TTL: %v", err)
	}
	if n := cc.reads.Load(); n != 3 {
		t.Fatalf("%d chain reads, want 3", n)
	}
	// A registered consumer is cached for ChannelCacheTTL, not the
	// negative TTL.
	clk.Add(ttl)
	if _, err := e.svc.Exchange(ctx, msg(t, stranger, prov, 1, 6, 6, secret("s6"))); err != nil || cc.reads.Load() != 3 {
		t.Fatalf("registered consumer within ChannelCacheTTL: %v, %d chain reads", err, cc.reads.Load())
	}
}

// TestStateBoundedUnderManyIdentities: however many distinct identities
// (registered or not) write, every map keyed by them stays within
// MaxTracked, and a consumer whose cached state was forgotten still gets
// the right cumulative promise (its state is reloaded from the store).
func TestStateBoundedUnderManyIdentities(t *testing.T) {
	const maxTracked, n = 8, 60
	e, _, _ := newCountingEnv(t, func(c *Config) { c.Limits.MaxTracked = maxTracked })
	e.chain.autoBalance = big.NewInt(1_000_000)
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		e.svc.chMu.Lock()
		channels := e.svc.chCache.Len()
		e.svc.chMu.Unlock()
		for name, got := range map[string]int{"consumers": e.svc.consumers.len(), "providers": e.svc.providers.len(),
			"channel cache": channels, "identity limiters": e.svc.identities.Len()} {
			if got > maxTracked {
				t.Fatalf("%s: %s holds %d entries, cap %d", when, name, got, maxTracked)
			}
		}
	}
	first := testSigner("consumer 0")
	for i := 0; i < n; i++ {
		c := testSigner(fmt.Sprint("consumer ", i))
		p := testSigner(fmt.Sprint("provider ", i)).Address()
		if _, err := e.svc.Exchange(ctx, msg(t, c, p, 1, 10, 10, secret(fmt.Sprint("r", i)))); err != nil {
			t.Fatalf("consumer %d: %v", i, err)
		}
		check(fmt.Sprintf("after %d registered consumers", i+1))
	}
	e.chain.autoBalance = nil
	for i := 0; i < n; i++ {
		c := testSigner(fmt.Sprint("stranger ", i))
		if _, err := e.svc.Exchange(ctx, msg(t, c, testSigner("p").Address(), 1, 1, 1, secret(fmt.Sprint("x", i)))); CodeOf(err) != CodeNotRegistered {
			t.Fatalf("stranger %d: %v", i, err)
		}
		check(fmt.Sprintf("after %d strangers", i+1))
	}
	// consumer 0 was forgotten long ago; its next promise builds on the
	// stored state.
	res, err := e.svc.Exchange(ctx, msg(t, first, testSigner("provider 0").Address(), 1, 25, 25, secret("again")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Promise.Amount.Int64() != 25 {
		t.Fatalf("provider 0 promised %s after its consumer's state was reloaded, want 25", res.Promise.Amount)
	}
	if _, err := e.svc.Exchange(ctx, msg(t, first, testSigner("provider 0").Address(), 1, 20, 30, secret("lower"))); CodeOf(err) != CodeAmountDecreased {
		t.Fatalf("a lower agreement total after reload: %v", err)
	}
}

// TestIdentityRateLimit: one consumer over its burst is refused with
// rate_limited and a retry delay; replays of its accepted messages take no
// token; another consumer is not affected, and the first is accepted again
// once its bucket refilled.
func TestIdentityRateLimit(t *testing.T) {
	e, _, clk := newCountingEnv(t, func(c *Config) { c.Limits.IdentityRate, c.Limits.IdentityBurst = 2, 3 })
	ctx := context.Background()
	c, d := testSigner("c"), testSigner("d")
	e.chain.register(c.Address(), 1000)
	e.chain.register(d.Address(), 1000)
	p := testSigner("p").Address()
	var first *payments.ExchangeMessage
	for i := int64(1); i <= 3; i++ {
		m := msg(t, c, p, 1, i, i, secret(fmt.Sprint("c", i)))
		if _, err := e.svc.Exchange(ctx, m); err != nil {
			t.Fatalf("message %d within the burst: %v", i, err)
		}
		if first == nil {
			first = m
		}
	}
	// Replays of old messages (what a provider holds) cost no token: they
	// cannot exhaust the consumer's limit.
	for i := 0; i < 10; i++ {
		if res, err := e.svc.Exchange(ctx, first); err != nil || !res.Replayed {
			t.Fatalf("replay %d: %+v %v", i, res, err)
		}
	}
	_, err := e.svc.Exchange(ctx, msg(t, c, p, 1, 4, 4, secret("c4")))
	var re *Error
	if CodeOf(err) != CodeRateLimited || !errors.As(err, &re) || re.RetryAfter != 500*time.Millisecond {
		t.Fatalf("4th message in a burst of 3 at 2/s: %v (want rate_limited, retry after 500ms)", err)
	}
	if _, err := e.svc.Exchange(ctx, msg(t, d, p, 2, 1, 1, secret("d1"))); err != nil {
		t.Fatalf("another consumer: %v", err)
	}
	clk.Add(500 * time.Millisecond)
	if _, err := e.svc.Exchange(ctx, msg(t, c, p, 1, 4, 4, secret("c4"))); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
}

// serveSourceLimited serves a hermes over loopback HTTP whose sources
// get 50 requests a second, burst at once, and whose rejected requests
// cost penalty more tokens; consumer c is registered with 1,000,000. It
// returns the env, the server's address, its exchange URL and c.
func serveSourceLimited(t *testing.T, burst, penalty int) (e *env, addr, url string, c *identity.KeySigner) {
	t.Helper()
	e, _, _ = newCountingEnv(t, func(c *Config) {
		c.Limits.SourceRate, c.Limits.SourceBurst, c.Limits.RejectPenalty = 50, burst, penalty
	})
	c = testSigner("c")
	e.chain.register(c.Address(), 1_000_000)
	addr = serveLoopback(t, e.svc)
	return e, addr, "http://" + addr + "/v1/exchange", c
}

// TestSourceRateLimit: over HTTP, a source address over its burst gets 429
// with the JSON error body and Retry-After, before its body is read, while
// honest traffic from another address still passes.
func TestSourceRateLimit(t *testing.T) {
	const burst = 5
	e, addr, url, c := serveSourceLimited(t, burst, -1)
	flooder, honest := clientFrom("127.0.0.2", 1), clientFrom("127.0.0.3", 1)
	defer flooder.CloseIdleConnections()
	defer honest.CloseIdleConnections()

	for i := 0; i < 2*burst; i++ {
		res, err := flooder.Post(url, "application/json", bytes.NewReader([]byte(`{"junk":true}`)))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var eb api.ErrorBody
		if err := json.Unmarshal(raw, &eb); err != nil {
			t.Fatalf("request %d: status %d, body %q is not the JSON error shape", i, res.StatusCode, raw)
		}
		if i < burst {
			if res.StatusCode != http.StatusBadRequest || eb.Error.Code != CodeBadRequest {
				t.Fatalf("junk %d within the burst: %d %s", i, res.StatusCode, raw)
			}
			continue
		}
		if res.StatusCode != http.StatusTooManyRequests || eb.Error.Code != CodeRateLimited {
			t.Fatalf("junk %d over the burst: %d %s", i, res.StatusCode, raw)
		}
		if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra != 1 {
			t.Fatalf("Retry-After %q, want 1 (20 ms, rounded up)", res.Header.Get("Retry-After"))
		}
	}
	for i := int64(1); i <= burst; i++ {
		r, err := postExchange(honest, addr, msg(t, c, testSigner("p").Address(), 1, i, i, secret(fmt.Sprint(i))))
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("honest message %d from another address: %+v %v", i, r, err)
		}
	}
	if got := testutilCounter(t, e, "hermes_rate_limited_total"); got != burst {
		t.Fatalf("hermes_rate_limited_total %v, want %d", got, burst)
	}
}

// testutilCounter sums a counter family in the env's registry.
func testutilCounter(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.2:4000":                  "127.0.0.2",
		"[::ffff:10.1.2.3]:80":            "10.1.2.3",
		"[2001:db8:1:2:aaaa:bbbb:c:d]:80": "2001:db8:1:2::",
		"[2001:db8:1:2::1]:81":            "2001:db8:1:2::",
		"pipe":                            "invalid IP",
	} {
		if got := sourceOf(in).String(); got != want {
			t.Errorf("sourceOf(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestSourceRejectPenalty: requests rejected as junk cost their source
// RejectPenalty more tokens, so a junk sender is limited after a few
// requests while an honest source is not.
func TestSourceRejectPenalty(t *testing.T) {
	_, addr, url, c := serveSourceLimited(t, 20, 10)
	junk, honest := clientFrom("127.0.0.4", 1), clientFrom("127.0.0.5", 1)
	defer junk.CloseIdleConnections()
	defer honest.CloseIdleConnections()
	// 20 tokens: two junk requests (1 + 10 each) go through, the third is
	// over the limit.
	for i, want := range []int{http.StatusBadRequest, http.StatusBadRequest, http.StatusTooManyRequests} {
		res, err := junk.Post(url, "application/json", bytes.NewReader([]byte(`{`)))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("junk request %d: status %d, want %d", i, res.StatusCode, want)
		}
	}
	// An honest source sends its whole burst.
	for i := int64(1); i <= 20; i++ {
		r, err := postExchange(honest, addr, msg(t, c, testSigner("p").Address(), 1, i, i, secret(fmt.Sprint(i))))
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("honest message %d: %+v %v", i, r, err)
		}
	}
}

// serveLoopback serves svc's API on a loopback port until the test ends and
// returns its address.
func serveLoopback(t *testing.T, svc *Service) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = Serve(ctx, ln, svc.Handler(prometheus.NewRegistry())) }()
	t.Cleanup(func() { cancel(); <-served })
	return ln.Addr().String()
}

// gatedChain holds every consumer channel read until gate is closed.
type gatedChain struct {
	Chain
	gate  chan struct{}
	reads atomic.Int64
}

func (c *gatedChain) ConsumerChannel(ctx context.Context, consumer common.Address) (ChannelInfo, error) {
	c.reads.Add(1)
	<-c.gate
	return c.Chain.ConsumerChannel(ctx, consumer)
}

// TestConcurrentMissesShareOneRead: while a consumer's channel is being
// read from the chain, more requests for it wait for that read instead of
// starting their own (a burst of one fresh key costs one chain read).
func TestConcurrentMissesShareOneRead(t *testing.T) {
	e := newEnv(t, nil)
	gc := &gatedChain{Chain: e.chain, gate: make(chan struct{})}
	svc, err := New(e.svc.Config(), e.st, gc)
	if err != nil {
		t.Fatal(err)
	}
	stranger := testSigner("stranger").Address()
	const n = 8
	errs := make(chan error, n)
	read := func() {
		info, err := svc.channel(context.Background(), stranger, false)
		if err == nil && info.Registered {
			err = errors.New("stranger registered")
		}
		errs <- err
	}
	go read()
	for gc.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < n; i++ {
		go read()
	}
	// Give the others time to start reads of their own, if they would.
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) && gc.reads.Load() == 1 {
		time.Sleep(5 * time.Millisecond)
	}
	close(gc.gate)
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := gc.reads.Load(); got != 1 {
		t.Fatalf("%d concurrent requests for one consumer made %d chain reads, want 1", n, got)
	}
}
