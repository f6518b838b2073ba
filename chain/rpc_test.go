package chain_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/internal/retry"
)

// Proxy modes: how a flakyRPC answers.
const (
	modeOK       = iota
	mode500      // 500 without forwarding
	mode429      // 429 without forwarding
	modeHang     // never answers (until the request ends)
	modeClose    // closes the connection without an answer
	modeSentLost // forwards eth_sendRawTransaction, then answers 502
	modeQuota    // a 200 answer with EIP-1474's "limit exceeded" error
)

// flakyRPC is a public RPC in front of a real dev chain that starts
// failing when told to.
type flakyRPC struct {
	srv      *httptest.Server
	upstream string
	mode     atomic.Int32
	hits     atomic.Int64 // requests received, answered or not
	served   atomic.Int64 // requests answered from upstream
	sent     atomic.Int64 // eth_sendRawTransaction forwarded
}

func newFlakyRPC(t testing.TB, upstream string) *flakyRPC {
	f := &flakyRPC{upstream: upstream}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *flakyRPC) serve(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	send := bytes.Contains(body, []byte("eth_sendRawTransaction"))
	switch f.mode.Load() {
	case mode500:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case mode429:
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	case modeHang:
		<-r.Context().Done()
		return
	case modeQuota:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"daily request count exceeded"}}`)
		return
	case modeClose:
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
		return
	case modeSentLost:
		if !send {
			break
		}
		if _, err := f.forward(r.Context(), body); err == nil {
			f.sent.Add(1)
		}
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	out, err := f.forward(r.Context(), body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if send {
		f.sent.Add(1)
	}
	f.served.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (f *flakyRPC) forward(ctx context.Context, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.upstream, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fastFailover fails over within a test's patience.
func fastFailover(urls []string, chainID uint64) chain.RPCConfig {
	return chain.RPCConfig{URLs: urls, ChainID: chainID, AttemptTimeout: 2 * time.Second,
		Backoff: retry.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}, Log: quietLog()}
}

// TestRPCFailover runs reads and transactions through two RPCs in front
// of one dev chain while the first, then the second, fails in every way a
// public RPC does: each call still succeeds, and every transaction is
// mined exactly once, with consecutive nonces.
func TestRPCFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dc := devchaintest.Start(ctx, t, devchain.Config{Log: quietLog()})
	dep := dc.Deployment()
	a, b := newFlakyRPC(t, dc.URL()), newFlakyRPC(t, dc.URL())

	eth, err := chain.DialRPC(ctx, fastFailover([]string{a.srv.URL, b.srv.URL}, dep.ChainID))
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	key := devchain.DevKey(devchain.TransactorAccount)
	tx, err := chain.NewTransactor(ctx, eth, key, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	st, err := chain.OpenStateDB(filepath.Join(t.TempDir(), "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tx.SetPendingStore(st)
	c, err := chain.NewClient(ctx, eth, dep, tx, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	startNonce, err := eth.NonceAt(ctx, from, nil)
	if err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000fa11e")
	amount := big.NewInt(1e15)
	mints := 0
	step := func(name string, bad *flakyRPC, mode int32) {
		t.Helper()
		var hits int64
		if bad != nil {
			bad.mode.Store(mode)
			hits = bad.hits.Load()
		}
		if _, err := c.TokenBalance(ctx, to); err != nil {
			t.Fatalf("%s: read: %v", name, err)
		}
		if _, err := c.Mint(ctx, to, amount); err != nil {
			t.Fatalf("%s: transaction: %v", name, err)
		}
		mints++
		if bad != nil {
			bad.mode.Store(modeOK)
			if bad.hits.Load() == hits {
				t.Fatalf("%s: the failing RPC was never asked (the step tested nothing)", name)
			}
		}
	}
	a0, b0 := a.served.Load(), b.served.Load() // the dial's chain id checks
	step("both up", nil, modeOK)
	if a.served.Load() == a0 || b.served.Load() != b0 {
		t.Fatalf("with both up, the first RPC serves: a %d, b %d requests", a.served.Load()-a0, b.served.Load()-b0)
	}
	step("first answers 500", a, mode500)
	if b.served.Load() == b0 {
		t.Fatal("the second RPC served nothing while the first answered 500")
	}
	step("second hangs", b, modeHang)
	step("first closes connections", a, modeClose)
	step("second rate-limits", b, mode429)
	// The transaction reaches the chain through the first RPC, whose
	// answer is lost: the failover resends the same signed transaction
	// to the second, which must not become a second transaction.
	sentBefore := a.sent.Load() + b.sent.Load()
	step("first loses the answer of a send", a, modeSentLost)
	if got := a.sent.Load() + b.sent.Load() - sentBefore; got < 2 {
		t.Fatalf("the lost send reached the chain %d times through the RPCs, want the same transaction twice", got)
	}
	step("second is over its quota", b, modeQuota)
	// Every RPC loses the answer of the send: the broadcast fails as a
	// whole, yet the transaction is out. The Transactor keeps its record
	// and nonce and waits for it; nothing is signed with a new nonce.
	sentBefore = a.sent.Load() + b.sent.Load()
	a.mode.Store(modeSentLost)
	step("both lose the answer of a send", b, modeSentLost)
	a.mode.Store(modeOK)
	if got := a.sent.Load() + b.sent.Load() - sentBefore; got < 2 {
		t.Fatalf("the send both RPCs lost reached them %d times, want at least twice", got)
	}

	nonce, err := eth.NonceAt(ctx, from, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nonce-startNonce != uint64(mints) {
		t.Fatalf("%d transactions mined for %d sends: nonces were skipped or reused", nonce-startNonce, mints)
	}
	if ps, err := st.PendingTxs(ctx, from); err != nil || len(ps) != 0 {
		t.Fatalf("pending records left after every send was mined: %d, %v", len(ps), err)
	}
	bal, err := c.TokenBalance(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	if want := new(big.Int).Mul(amount, big.NewInt(int64(mints))); bal.Cmp(want) != 0 {
		t.Fatalf("balance %s after %d mints of %s, want %s (a mint ran twice or not at all)", bal, mints, amount, want)
	}

	// Both down: a clear error, which names no RPC's path or query (an
	// API key in the URL stays out of errors).
	keyed, err := chain.DialRPC(ctx, fastFailover([]string{a.srv.URL + "/v3/SECRETKEY?k=SECRETKEY", b.srv.URL + "/SECRETKEY"}, dep.ChainID))
	if err != nil {
		t.Fatal(err)
	}
	defer keyed.Close()
	a.mode.Store(mode500)
	b.mode.Store(mode500)
	if _, err := eth.BlockNumber(ctx); !errors.Is(err, chain.ErrNoRPCEndpoint) {
		t.Fatalf("both RPCs failing: %v, want ErrNoRPCEndpoint", err)
	}
	if _, err := keyed.BlockNumber(ctx); !errors.Is(err, chain.ErrNoRPCEndpoint) || strings.Contains(err.Error(), "SECRETKEY") {
		t.Fatalf("both RPCs failing: %v, want ErrNoRPCEndpoint without the URLs' paths", err)
	}
}

// wrongChainRPC answers eth_chainId with chain 1 and nothing else.
func wrongChainRPC(t *testing.T, up *atomic.Bool) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if up != nil && !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), "eth_chainId") {
			http.Error(w, "unexpected request "+string(body), http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x1"}`)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestRPCWrongChain: an RPC on another chain is refused, at dial time when
// it answers then, else before it would serve its first request.
func TestRPCWrongChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dc := devchaintest.Start(ctx, t, devchain.Config{Log: quietLog()})
	id := dc.Deployment().ChainID
	good := newFlakyRPC(t, dc.URL())
	wrong := wrongChainRPC(t, nil)

	_, err := chain.DialRPC(ctx, fastFailover([]string{good.srv.URL, wrong.URL}, id))
	if !errors.Is(err, chain.ErrWrongChain) || !strings.Contains(err.Error(), "chain 1, want 1337") {
		t.Fatalf("dial with an RPC on chain 1: %v, want ErrWrongChain naming both chains", err)
	}
	if _, err := chain.DialRPC(ctx, fastFailover([]string{wrong.URL}, id)); !errors.Is(err, chain.ErrWrongChain) {
		t.Fatalf("dial the one RPC on chain 1: %v, want ErrWrongChain", err)
	}
	// Unknown chain id: the first answer sets it, the others must match.
	if _, err := chain.DialRPC(ctx, fastFailover([]string{good.srv.URL, wrong.URL}, 0)); !errors.Is(err, chain.ErrWrongChain) {
		t.Fatalf("dial with chain id 0 and RPCs on two chains: %v, want ErrWrongChain", err)
	}

	// Down at dial time, on the wrong chain when the good RPC fails.
	var up atomic.Bool
	late := wrongChainRPC(t, &up)
	eth, err := chain.DialRPC(ctx, fastFailover([]string{good.srv.URL, late.URL}, id))
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	up.Store(true)
	good.mode.Store(mode500)
	_, err = eth.BlockNumber(ctx)
	if !errors.Is(err, chain.ErrNoRPCEndpoint) || !strings.Contains(err.Error(), "wrong chain") {
		t.Fatalf("only an RPC on the wrong chain left: %v, want ErrNoRPCEndpoint saying wrong chain", err)
	}
	good.mode.Store(modeOK)
	if _, err := eth.BlockNumber(ctx); err != nil {
		t.Fatalf("the good RPC is back: %v", err)
	}
}

func TestValidateRPCURLs(t *testing.T) {
	for _, tc := range []struct {
		urls []string
		ok   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"ws://127.0.0.1:8546"}, true},
		{[]string{"/run/geth.ipc"}, true},
		{[]string{"http://a:1", "https://b/key"}, true},
		{[]string{"http://a:1", "ws://b:2"}, false},
		{[]string{"http://a:1", "http://a:1"}, false},
		{[]string{"http://a:1", "http://"}, false},
		{strings.Split(strings.Repeat("http://a,", chain.MaxRPCEndpoints+1), ",")[:chain.MaxRPCEndpoints+1], false},
	} {
		if err := chain.ValidateRPCURLs(tc.urls); (err == nil) != tc.ok {
			t.Errorf("ValidateRPCURLs(%q) = %v, want ok %v", tc.urls, err, tc.ok)
		}
	}
	if got := chain.SplitRPCURLs(" http://a:1, ,https://b "); len(got) != 2 || got[0] != "http://a:1" || got[1] != "https://b" {
		t.Errorf("SplitRPCURLs = %q", got)
	}
	// An API key in a URL stays out of errors.
	err := chain.ValidateRPCURLs([]string{"https://rpc.example/v3/SECRETKEY", "ws://x/SECRETKEY"})
	if err == nil || strings.Contains(err.Error(), "SECRETKEY") {
		t.Errorf("error %v: want one without the URL's path", err)
	}
}

// FuzzRPCURLs: a comma-separated --chain.rpc value never panics the
// parser, and a list it accepts keeps its promises.
func FuzzRPCURLs(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8545", "http://a:1,https://b:2", "ws://x,http://y", "http://a,http://a", ",,", "http://%zz,http://b", "/ipc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		urls := chain.SplitRPCURLs(s)
		for _, u := range urls {
			if u == "" || strings.Contains(u, ",") || strings.TrimSpace(u) != u {
				t.Fatalf("SplitRPCURLs(%q) gave %q", s, u)
			}
		}
		if chain.ValidateRPCURLs(urls) != nil {
			return
		}
		if len(urls) == 0 || len(urls) > chain.MaxRPCEndpoints {
			t.Fatalf("accepted %d URLs", len(urls))
		}
		if len(urls) > 1 {
			for _, u := range urls {
				if l := strings.ToLower(u); !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") {
					t.Fatalf("accepted %q among several", u)
				}
			}
		}
	})
}

// TestRPCFailoverShortDeadline: a caller whose deadline is shorter than
// the attempt timeout still gets its answer from the second RPC when the
// first hangs (a hung RPC must not make a 5 s liveness check fail).
func TestRPCFailoverShortDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dc := devchaintest.Start(ctx, t, devchain.Config{Log: quietLog()})
	a, b := newFlakyRPC(t, dc.URL()), newFlakyRPC(t, dc.URL())
	cfg := fastFailover([]string{a.srv.URL, b.srv.URL}, dc.Deployment().ChainID)
	cfg.AttemptTimeout = time.Hour
	eth, err := chain.DialRPC(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	a.mode.Store(modeHang)
	for i := range 3 {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second) // the daemon's liveness check
		_, err := eth.BlockNumber(cctx)
		ccancel()
		if err != nil {
			t.Fatalf("call %d with the first RPC hanging: %v", i, err)
		}
	}
	if b.served.Load() < 3 {
		t.Fatalf("the second RPC served %d requests", b.served.Load())
	}
}

// BenchmarkRPCFailover compares a read (eth_blockNumber, and eth_call of
// the token balance) through go-ethereum's plain HTTP client with the same
// read through DialRPC's failover transport (two endpoints, the first
// healthy), against one dev chain: the price of the failover layer.
func BenchmarkRPCFailover(b *testing.B) {
	ctx := context.Background()
	dc := devchaintest.Start(ctx, b, devchain.Config{Log: quietLog()})
	dep := dc.Deployment()
	second := newFlakyRPC(b, dc.URL())
	for _, bc := range []struct {
		name string
		urls []string
	}{{"direct", []string{dc.URL()}}, {"failover", []string{dc.URL(), second.srv.URL}}} {
		b.Run(bc.name, func(b *testing.B) {
			eth, err := chain.DialRPC(ctx, chain.RPCConfig{URLs: bc.urls, ChainID: dep.ChainID, Log: quietLog()})
			if err != nil {
				b.Fatal(err)
			}
			defer eth.Close()
			c, err := chain.NewClient(ctx, eth, dep, nil, quietLog())
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := eth.BlockNumber(ctx); err != nil {
					b.Fatal(err)
				}
				if _, err := c.TokenBalance(ctx, dep.Token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
