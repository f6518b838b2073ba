package devchain

import (
	"context"
	"errors"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/bindings"
)

// startDev starts a dev chain whose eth_getLogs refuses ranges above
// rangeLimit blocks (go-ethereum's own --rpc.rangelimit) and that mines
// every period (0: per transaction), and dials it.
func startDev(t *testing.T, ctx context.Context, rangeLimit uint64, period time.Duration) (*Chain, *ethclient.Client) {
	t.Helper()
	dc, err := Start(ctx, Config{LogRangeLimit: rangeLimit, Period: period, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dc.Close() })
	cl, err := dc.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return dc, cl
}

// TestLogWatcherOverJSONRPC: over JSON-RPC against a geth that refuses
// eth_getLogs ranges above 3 blocks, the watcher splits its ranges,
// delivers every transfer once, and after a restart with its state file
// delivers exactly the transfers mined while it was stopped.
func TestLogWatcherOverJSONRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dc, cl := startDev(t, ctx, 3, 0)
	tx, err := chain.NewTransactor(ctx, cl, DevKey(TransactorAccount), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.NewClient(ctx, cl, dc.Deployment(), tx, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	head, err := cl.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := head.Number.Uint64() + 1
	mint := func(n int) {
		for i := range n {
			if _, err := c.Mint(ctx, DevAddress(6), big.NewInt(int64(i+1))); err != nil {
				t.Fatal(err)
			}
		}
	}
	mint(8)
	// The endpoint really refuses a wide range.
	q := ethereum.FilterQuery{Addresses: []common.Address{dc.Deployment().Token}, Topics: [][]common.Hash{{crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))}}}
	wide := q
	wide.FromBlock, wide.ToBlock = new(big.Int).SetUint64(start), new(big.Int).SetUint64(start+7)
	if _, err := cl.FilterLogs(ctx, wide); err == nil || !chain.IsLogRangeError(err) {
		t.Fatalf("wide eth_getLogs: %v, want a range refusal", err)
	}

	path := filepath.Join(t.TempDir(), "chain.db")
	st, err := chain.OpenStateDB(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := chain.WatcherConfig{Name: "transfers", Queries: []ethereum.FilterQuery{q}, Start: &start, Store: st}
	var got []types.Log
	handle := func(_ context.Context, logs []types.Log) error { got = append(got, logs...); return nil }
	if err := chain.NewLogWatcher(cl, cfg, quietLog()).Poll(ctx, handle); err != nil {
		t.Fatalf("poll: %v", err)
	}
	if len(got) != 8 {
		t.Fatalf("%d transfers delivered, want 8", len(got))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	mint(4) // while the watcher is stopped
	if st, err = chain.OpenStateDB(path); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg.Store = st
	got = nil
	if err := chain.NewLogWatcher(cl, cfg, quietLog()).Poll(ctx, handle); err != nil {
		t.Fatalf("poll after restart: %v", err)
	}
	if len(got) != 4 {
		t.Fatalf("%d transfers after restart, want the 4 mined meanwhile", len(got))
	}
	for i, l := range got {
		if v := new(big.Int).SetBytes(l.Data); v.Int64() != int64(i+1) {
			t.Fatalf("transfer %d carries %s, want %d", i, v, i+1)
		}
	}
}

// recorder is the real client, noting every transaction sent.
type recorder struct {
	*ethclient.Client
	mu   sync.Mutex
	sent []*types.Transaction
}

func (r *recorder) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	r.mu.Lock()
	r.sent = append(r.sent, tx)
	r.mu.Unlock()
	return r.Client.SendTransaction(ctx, tx)
}

// underpriced returns a build that mints with a fee cap far below the
// current base fee, so the dev chain does not mine the first version for
// dozens of blocks.
func underpriced(t *testing.T, ctx context.Context, cl *ethclient.Client, token *bindings.MystToken) func(*bind.TransactOpts) (*types.Transaction, error) {
	return func(o *bind.TransactOpts) (*types.Transaction, error) {
		h, err := cl.HeaderByNumber(ctx, nil)
		if err != nil {
			return nil, err
		}
		if h.BaseFee.Cmp(big.NewInt(1000)) < 0 {
			t.Errorf("base fee %s too low to underprice", h.BaseFee)
			return nil, errors.New("base fee too low")
		}
		o.GasTipCap = big.NewInt(1)
		o.GasFeeCap = new(big.Int).Div(h.BaseFee, big.NewInt(100))
		o.GasLimit = 100_000
		return token.Mint(o, DevAddress(7), big.NewInt(1))
	}
}

// TestStuckTransactionOverJSONRPC: over JSON-RPC, a transaction priced
// below the base fee is replaced with bumped fees and the same nonce until
// mined; a process that stops while it is pending leaves it to the next
// one, which resumes that nonce instead of sending a new transaction.
func TestStuckTransactionOverJSONRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Blocks every second: on demand, the dev chain would keep sealing
	// empty blocks until the base fee falls under the first version.
	dc, cl := startDev(t, ctx, 0, time.Second)
	token, err := bindings.NewMystToken(dc.Deployment().Token, cl)
	if err != nil {
		t.Fatal(err)
	}
	key := DevKey(8)
	path := filepath.Join(t.TempDir(), "chain.db")
	st, err := chain.OpenStateDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &recorder{Client: cl}
	newTx := func(replaceAfter time.Duration) *chain.Transactor {
		tx, err := chain.NewTransactor(ctx, rec, key, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		tx.ReplaceAfter = replaceAfter
		tx.MaxFeeCap = big.NewInt(100e9) // the first version is far below the market
		tx.SetPendingStore(st)
		return tx
	}
	nonceOf := func(h common.Hash) uint64 {
		tx, _, err := cl.TransactionByHash(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		return tx.Nonce()
	}

	// Replacement in one process.
	tx := newTx(200 * time.Millisecond)
	n0, err := cl.PendingNonceAt(ctx, tx.Address())
	if err != nil {
		t.Fatal(err)
	}
	r, err := tx.Send(ctx, "mint", underpriced(t, ctx, cl, token))
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := nonceOf(r.TxHash); got != n0 {
		t.Fatalf("mined nonce %d, want %d", got, n0)
	}
	if len(rec.sent) < 2 || rec.sent[0].Hash() == r.TxHash {
		t.Fatalf("%d versions sent, mined %s: want a replacement mined", len(rec.sent), r.TxHash.Hex())
	}
	for _, v := range rec.sent {
		if v.Nonce() != n0 {
			t.Fatalf("a version with nonce %d, want all %d", v.Nonce(), n0)
		}
	}
	if n, _ := cl.NonceAt(ctx, tx.Address(), nil); n != n0+1 {
		t.Fatalf("account nonce %d after one send, want %d", n, n0+1)
	}
	if tr, _, err := cl.TransactionByHash(ctx, r.TxHash); err != nil || tr.GasFeeCap().Cmp(big.NewInt(1)) <= 0 {
		t.Fatalf("mined version %v (%v)", tr, err)
	}
	if ps, _ := st.PendingTxs(ctx, tx.Address()); len(ps) != 0 {
		t.Fatalf("%d pending records after mining", len(ps))
	}

	// A process stops while its transaction is pending; the next resumes it.
	tx1 := newTx(time.Hour)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := tx1.Send(sctx, "mint", underpriced(t, ctx, cl, token)); done <- err }()
	var stored *chain.PendingTx
	for stored == nil {
		ps, err := st.PendingTxs(ctx, tx1.Address())
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 1 {
			if _, pending, err := cl.TransactionByHash(ctx, ps[0].Latest().Hash()); err == nil && pending {
				stored = ps[0]
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err == nil {
		t.Fatal("underpriced send was mined without a replacement")
	}
	if ps, err := st.PendingTxs(ctx, tx1.Address()); err != nil || len(ps) != 1 {
		t.Fatalf("after the stop: %d pending records (%v), want 1", len(ps), err)
	}
	tx2 := newTx(200 * time.Millisecond)
	rs, err := tx2.Resume(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("resume: %v (%d receipts)", err, len(rs))
	}
	if got := nonceOf(rs[0].TxHash); got != stored.Nonce {
		t.Fatalf("resumed nonce %d, want the stored %d", got, stored.Nonce)
	}
	if n, _ := cl.NonceAt(ctx, tx2.Address(), nil); n != stored.Nonce+1 {
		t.Fatalf("account nonce %d, want %d: something else was sent", n, stored.Nonce+1)
	}
}
