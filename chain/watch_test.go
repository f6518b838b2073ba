package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// transferTopic is the ERC-20 Transfer event id.
var transferTopic = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))

func transferQuery(e *env) []ethereum.FilterQuery {
	return []ethereum.FilterQuery{{Addresses: []common.Address{e.dep.Token}, Topics: [][]common.Hash{{transferTopic}}}}
}

// logKey identifies one log on one branch.
type logKey struct {
	block common.Hash
	index uint
}

// liveLogs applies delivered logs like a consumer would: a log is added,
// a removed log is taken away again.
type liveLogs struct {
	mu      sync.Mutex
	live    map[logKey]types.Log
	removed []types.Log
	batches int
}

func newLiveLogs() *liveLogs { return &liveLogs{live: map[logKey]types.Log{}} }

func (l *liveLogs) handle(_ context.Context, logs []types.Log) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches++
	for _, lg := range logs {
		k := logKey{lg.BlockHash, lg.Index}
		if lg.Removed {
			if _, ok := l.live[k]; !ok {
				return fmt.Errorf("removed log %v was never delivered", k)
			}
			delete(l.live, k)
			l.removed = append(l.removed, lg)
			continue
		}
		if _, ok := l.live[k]; ok {
			return fmt.Errorf("log %v delivered twice", k)
		}
		l.live[k] = lg
	}
	return nil
}

// wantCanonical checks the live set equals the chain's logs of [from, to].
func (l *liveLogs) wantCanonical(t *testing.T, e *env, from, to uint64) {
	t.Helper()
	q := transferQuery(e)[0]
	q.FromBlock, q.ToBlock = new(big.Int).SetUint64(from), new(big.Int).SetUint64(to)
	want, err := e.backend.FilterLogs(e.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(want) != len(l.live) {
		t.Fatalf("%d live logs, chain has %d in blocks %d-%d", len(l.live), len(want), from, to)
	}
	for _, w := range want {
		if _, ok := l.live[logKey{w.BlockHash, w.Index}]; !ok {
			t.Fatalf("chain log block %d #%d (%s) was not delivered", w.BlockNumber, w.Index, w.BlockHash.Hex())
		}
	}
}

func (e *env) head(t *testing.T) uint64 {
	t.Helper()
	h, err := e.backend.HeaderByNumber(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h.Number.Uint64()
}

// mintBlocks mines n blocks with one MYST transfer event each.
func (e *env) mintBlocks(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		if _, err := e.client.Mint(e.ctx, common.Address{0x77, byte(i)}, big.NewInt(int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
}

// rangeLimited is a thin wrapper of a real endpoint that refuses
// eth_getLogs ranges above maxBlocks, or results above maxResults, with
// the error text a public RPC provider returns.
type rangeLimited struct {
	LogSource
	maxBlocks  uint64
	maxResults int
	msg        string

	mu              sync.Mutex
	calls, refusals int
}

func (r *rangeLimited) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	refuse := func() ([]types.Log, error) {
		r.mu.Lock()
		r.refusals++
		r.mu.Unlock()
		return nil, errors.New(r.msg)
	}
	if r.maxBlocks > 0 && q.ToBlock.Uint64()-q.FromBlock.Uint64()+1 > r.maxBlocks {
		return refuse()
	}
	logs, err := r.LogSource.FilterLogs(ctx, q)
	if err == nil && r.maxResults > 0 && len(logs) > r.maxResults {
		return refuse()
	}
	return logs, err
}

// TestWatcherSplitsRefusedRanges: ranges an endpoint refuses with any of
// the common providers' errors are bisected, every log is delivered once,
// and the number of calls stays bounded.
func TestWatcherSplitsRefusedRanges(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	start := e.head(t) + 1
	e.mintBlocks(t, 24)
	end := e.head(t)
	cases := []struct {
		name       string
		maxBlocks  uint64
		maxResults int
		msg        string
	}{
		{"infura results", 0, 5, "query returned more than 10000 results. Try with this block range [0x1, 0x2]."},
		{"alchemy size", 0, 3, "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response."},
		{"geth rangelimit", 4, 0, "exceed maximum block range 4"},
		{"ankr", 7, 0, "block range is too wide"},
		{"quicknode", 5, 0, "eth_getLogs is limited to a 10,000 range"},
		{"chainstack", 3, 0, "Block range limit exceeded."},
		{"generic", 6, 0, "eth_getLogs range too large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &rangeLimited{LogSource: e.backend, maxBlocks: c.maxBlocks, maxResults: c.maxResults, msg: c.msg}
			w := NewLogWatcher(src, WatcherConfig{Name: c.name, Queries: transferQuery(e), Start: &start}, slog.New(slog.DiscardHandler))
			got := newLiveLogs()
			if err := w.Poll(e.ctx, got.handle); err != nil {
				t.Fatalf("poll: %v", err)
			}
			got.wantCanonical(t, e, start, end)
			if src.refusals == 0 {
				t.Fatal("the endpoint never refused a range; the test tests nothing")
			}
			if src.calls > 40 {
				t.Fatalf("%d eth_getLogs calls for %d blocks", src.calls, end-start+1)
			}
			if w.Next() != e.head(t)+1 {
				t.Fatalf("next block %d, want %d", w.Next(), e.head(t)+1)
			}
		})
	}
}

// TestWatcherGivesUpOnARefusedSingleBlock: a block whose logs the endpoint
// refuses even alone is a clear error, not an endless retry, and the
// position does not move past it.
func TestWatcherGivesUpOnARefusedSingleBlock(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	start := e.head(t) + 1
	e.mintBlocks(t, 3)
	refuseAll := &refuseAll{LogSource: e.backend, msg: "query returned more than 10000 results"}
	w := NewLogWatcher(refuseAll, WatcherConfig{Name: "w", Queries: transferQuery(e), Start: &start}, slog.New(slog.DiscardHandler))
	err := w.Poll(e.ctx, newLiveLogs().handle)
	if err == nil || !IsLogRangeError(err) {
		t.Fatalf("poll: %v, want the refusal", err)
	}
	if w.Next() != start {
		t.Fatalf("position moved to %d past refused block %d", w.Next(), start)
	}
	if refuseAll.calls > 8 {
		t.Fatalf("%d calls for 3 blocks", refuseAll.calls)
	}
}

type refuseAll struct {
	LogSource
	msg   string
	calls int
}

func (r *refuseAll) FilterLogs(context.Context, ethereum.FilterQuery) ([]types.Log, error) {
	r.calls++
	return nil, errors.New(r.msg)
}

// TestWatcherWaitsForConfirmations: a log is delivered only once its block
// has Confirmations blocks on top.
func TestWatcherWaitsForConfirmations(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	start := e.head(t) + 1
	w := NewLogWatcher(e.backend, WatcherConfig{Name: "w", Queries: transferQuery(e), Confirmations: 3, Start: &start}, slog.New(slog.DiscardHandler))
	got := newLiveLogs()
	if err := w.Poll(e.ctx, got.handle); err != nil {
		t.Fatal(err)
	}
	e.mintBlocks(t, 1)
	block := e.head(t)
	for i := range 3 {
		if err := w.Poll(e.ctx, got.handle); err != nil {
			t.Fatal(err)
		}
		if len(got.live) != 0 {
			t.Fatalf("log of block %d delivered with %d confirmations, want 3", block, i)
		}
		e.backend.Sim.Commit()
	}
	if err := w.Poll(e.ctx, got.handle); err != nil {
		t.Fatal(err)
	}
	got.wantCanonical(t, e, block, block)
	if len(got.live) != 1 {
		t.Fatalf("%d logs after 3 confirmations, want 1", len(got.live))
	}
}

// TestWatcherHandlesReorg: blocks the watcher delivered are dropped by a
// reorg (simulated backend Fork); their logs come back as removed, the new
// branch's logs are delivered, and the result equals the canonical chain.
// The position and reorg window survive a restart in between.
func TestWatcherHandlesReorg(t *testing.T) {
	for _, conf := range []uint64{0, 2} {
		t.Run(fmt.Sprintf("confirmations=%d", conf), func(t *testing.T) {
			e := newEnv(t, hermesOpts{})
			start := e.head(t) + 1
			e.mintBlocks(t, 2)
			fork, err := e.backend.HeaderByNumber(e.ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			e.mintBlocks(t, 3) // the branch that will be dropped
			for range conf {
				e.backend.Sim.Commit()
			}
			path := filepath.Join(t.TempDir(), "chain.db")
			st, err := OpenStateDB(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg := WatcherConfig{Name: "transfers", Queries: transferQuery(e), Confirmations: conf, Start: &start, Store: st}
			got := newLiveLogs()
			if err := NewLogWatcher(e.backend, cfg, slog.New(slog.DiscardHandler)).Poll(e.ctx, got.handle); err != nil {
				t.Fatal(err)
			}
			if len(got.live) != 5 {
				t.Fatalf("delivered %d logs before the reorg, want 5", len(got.live))
			}
			dropped := got.live
			if err := st.Close(); err != nil { // restart
				t.Fatal(err)
			}

			if err := e.backend.Sim.Fork(fork.Hash()); err != nil {
				t.Fatal(err)
			}
			// The new branch: one different transfer, then enough blocks
			// to be longer and confirmed. (The pool may re-include the
			// dropped transfers; the check below compares with whatever
			// the chain holds.)
			// Sent by another key: the dropped branch's nonces of the
			// env transactor may or may not come back into the pool.
			other, err := NewClient(e.ctx, e.backend, e.dep, e.opTx, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Mint(e.ctx, common.Address{0x99}, big.NewInt(99)); err != nil {
				t.Fatal(err)
			}
			for range 5 + conf {
				e.backend.Sim.Commit()
			}
			if h, _ := e.backend.HeaderByNumber(e.ctx, new(big.Int).SetUint64(fork.Number.Uint64()+1)); h == nil {
				t.Fatal("no new branch")
			}

			st, err = OpenStateDB(path)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			cfg.Store = st
			got2 := &liveLogs{live: dropped}
			if err := NewLogWatcher(e.backend, cfg, slog.New(slog.DiscardHandler)).Poll(e.ctx, got2.handle); err != nil {
				t.Fatal(err)
			}
			if len(got2.removed) != 3 {
				t.Fatalf("%d logs removed, want the dropped branch's 3", len(got2.removed))
			}
			for _, r := range got2.removed {
				if r.BlockNumber <= fork.Number.Uint64() {
					t.Fatalf("removed a log of block %d, at or below the fork point %d", r.BlockNumber, fork.Number)
				}
			}
			head := e.head(t)
			got2.wantCanonical(t, e, start, head-conf)
		})
	}
}

// TestWatcherResumesAfterRestart: logs mined while the watcher is stopped
// are delivered after it restarts with its store, none twice.
func TestWatcherResumesAfterRestart(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	path := filepath.Join(t.TempDir(), "chain.db")
	st, err := OpenStateDB(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := WatcherConfig{Name: "transfers", Queries: transferQuery(e), Store: st}
	start := e.head(t) + 1
	got := newLiveLogs()
	if err := NewLogWatcher(e.backend, cfg, slog.New(slog.DiscardHandler)).Poll(e.ctx, got.handle); err != nil {
		t.Fatal(err)
	}
	e.mintBlocks(t, 2)
	if err := NewLogWatcher(e.backend, cfg, slog.New(slog.DiscardHandler)).Poll(e.ctx, got.handle); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	e.mintBlocks(t, 3) // while stopped
	st, err = OpenStateDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg.Store = st
	if err := NewLogWatcher(e.backend, cfg, slog.New(slog.DiscardHandler)).Poll(e.ctx, got.handle); err != nil {
		t.Fatal(err)
	}
	got.wantCanonical(t, e, start, e.head(t))
	if len(got.live) != 5 {
		t.Fatalf("%d logs, want 5", len(got.live))
	}
}

// TestIsLogRangeError keeps rate limits and lagging nodes out of splitting.
func TestIsLogRangeError(t *testing.T) {
	for msg, want := range map[string]bool{
		"query returned more than 10000 results":             true,
		"exceed maximum block range 5000":                    true,
		"block range extends beyond current head block":      false,
		"daily request count exceeded, request rate limited": false,
		"connection refused":                                 false,
	} {
		if got := IsLogRangeError(errors.New(msg)); got != want {
			t.Errorf("IsLogRangeError(%q) = %v", msg, got)
		}
	}
}

// TestWatcherRecordsDeliveryDespiteCancel: when ctx ends right after the
// handler took a range, the position is still saved, so a restart does
// not deliver the range again.
func TestWatcherRecordsDeliveryDespiteCancel(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	start := e.head(t) + 1
	e.mintBlocks(t, 2)
	st, err := OpenStateDB(filepath.Join(t.TempDir(), "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := WatcherConfig{Name: "w", Queries: transferQuery(e), Start: &start, Store: st}
	ctx, cancel := context.WithCancel(e.ctx)
	got := newLiveLogs()
	err = NewLogWatcher(e.backend, cfg, slog.New(slog.DiscardHandler)).Poll(ctx, func(ctx context.Context, logs []types.Log) error {
		cancel() // the process is stopping
		return got.handle(ctx, logs)
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if err := NewLogWatcher(e.backend, cfg, slog.New(slog.DiscardHandler)).Poll(e.ctx, got.handle); err != nil {
		t.Fatalf("after restart: %v", err) // a log delivered twice fails in handle
	}
	got.wantCanonical(t, e, start, e.head(t))
}
