package chain

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/openmyst/openmyst/money"
)

// stuckEnv is a funded transactor on the env's chain that mines nothing on
// its own: blocks come only from commit.
type stuckEnv struct {
	*env
	tx     *Transactor
	client *Client
	state  *StateDB
	path   string
}

func newStuckEnv(t *testing.T) *stuckEnv {
	t.Helper()
	return newStuckEnvWith(t, newEnv(t, hermesOpts{}), func(b Backend) Backend { return b })
}

// commit mines one block with whatever the pool holds.
func (s *stuckEnv) commit() {
	s.backend.Commit()
}

// waitVersions waits until the store holds a record with at least n
// versions (with inPool: the newest of them in the node's pool).
func (s *stuckEnv) waitVersions(t *testing.T, n int, inPool bool) *PendingTx {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ps, err := s.state.PendingTxs(s.ctx, s.tx.Address())
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 1 && len(ps[0].Txs) >= n {
			if _, pending, err := s.backend.TransactionByHash(s.ctx, ps[0].Latest().Hash()); !inPool || (err == nil && pending) {
				return ps[0]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pending record with %d versions", n)
	return nil
}

func (s *stuckEnv) wantNoPending(t *testing.T) {
	t.Helper()
	ps, err := s.state.PendingTxs(s.ctx, s.tx.Address())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 0 {
		t.Fatalf("%d pending records left, want none", len(ps))
	}
}

type sendResult struct {
	r   *types.Receipt
	err error
}

func (s *stuckEnv) mintAsync(ctx context.Context, c *Client, to common.Address) chan sendResult {
	done := make(chan sendResult, 1)
	go func() {
		r, err := c.Mint(ctx, to, money.MYST(1))
		done <- sendResult{r, err}
	}()
	return done
}

func (s *stuckEnv) minedTx(t *testing.T, r *types.Receipt) *types.Transaction {
	t.Helper()
	tx, _, err := s.backend.TransactionByHash(s.ctx, r.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func (s *stuckEnv) wantUnmined(t *testing.T, h common.Hash) {
	t.Helper()
	if _, err := s.backend.TransactionReceipt(s.ctx, h); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("receipt of %s: %v, want not found", h.Hex(), err)
	}
}

// TestStuckTransactionIsReplacedWithSameNonce: a transaction that is not
// mined within ReplaceAfter is replaced by a version with the same nonce
// and tip and fee cap raised by at least 10%; the replacement is what gets
// mined, and the record is gone afterwards.
func TestStuckTransactionIsReplacedWithSameNonce(t *testing.T) {
	s := newStuckEnv(t)
	to := common.Address{0x42}
	done := s.mintAsync(s.ctx, s.client, to)
	p := s.waitVersions(t, 2, true) // nothing mined: the first version was replaced
	first := p.Txs[0]
	s.commit()
	res := <-done
	if res.err != nil {
		t.Fatalf("send: %v", res.err)
	}
	mined := s.minedTx(t, res.r)
	if mined.Hash() == first.Hash() {
		t.Fatal("the first version was mined; want a replacement")
	}
	if mined.Nonce() != first.Nonce() {
		t.Fatalf("replacement nonce %d, first %d", mined.Nonce(), first.Nonce())
	}
	for what, pair := range map[string][2]*big.Int{"tip": {first.GasTipCap(), mined.GasTipCap()}, "fee cap": {first.GasFeeCap(), mined.GasFeeCap()}} {
		least := new(big.Int).Div(new(big.Int).Mul(pair[0], big.NewInt(110)), big.NewInt(100))
		if pair[1].Cmp(least) < 0 {
			t.Fatalf("replacement %s %s, want ≥ 110%% of %s", what, pair[1], pair[0])
		}
	}
	s.wantUnmined(t, first.Hash())
	if b := s.balance(to); b.Cmp(money.MYST(1)) != 0 {
		t.Fatalf("minted %s MYST, want 1", money.FormatMYST(b))
	}
	if n, _ := s.backend.NonceAt(s.ctx, s.tx.Address(), nil); n != first.Nonce()+1 {
		t.Fatalf("account nonce %d, want %d", n, first.Nonce()+1)
	}
	s.wantNoPending(t)
}

// dropReplacements forwards only the first version of each nonce, as a node
// that accepts replacements but never propagates them.
type dropReplacements struct {
	Backend
	mu   sync.Mutex
	seen map[uint64]bool
}

func (d *dropReplacements) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	d.mu.Lock()
	first := !d.seen[tx.Nonce()]
	d.seen[tx.Nonce()] = true
	d.mu.Unlock()
	if !first {
		return nil
	}
	return d.Backend.SendTransaction(ctx, tx)
}

// TestOlderVersionMinedCountsAsSuccess: when an older version is mined
// after a replacement was sent, Send watches every hash and succeeds.
func TestOlderVersionMinedCountsAsSuccess(t *testing.T) {
	s := newStuckEnvWith(t, newEnv(t, hermesOpts{}), func(b Backend) Backend {
		return &dropReplacements{Backend: b, seen: map[uint64]bool{}}
	})
	done := s.mintAsync(s.ctx, s.client, common.Address{0x43})
	p := s.waitVersions(t, 3, false)
	s.commit()
	res := <-done
	if res.err != nil {
		t.Fatalf("send: %v", res.err)
	}
	if res.r.TxHash != p.Txs[0].Hash() {
		t.Fatalf("mined %s, want the first version %s", res.r.TxHash.Hex(), p.Txs[0].Hash().Hex())
	}
	s.wantNoPending(t)
}

// newStuckEnvWith is newStuckEnv on e with the non-mining backend wrapped.
func newStuckEnvWith(t *testing.T, e *env, wrap func(Backend) Backend) *stuckEnv {
	t.Helper()
	b := wrap(e.backend.Client)
	tx, err := NewTransactor(e.ctx, b, mustKeyWithETH(t, e), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tx.ReplaceAfter = 100 * time.Millisecond
	path := filepath.Join(t.TempDir(), "chain.db")
	st, err := OpenStateDB(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tx.SetPendingStore(st)
	c, err := NewClient(e.ctx, b, e.dep, tx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &stuckEnv{env: e, tx: tx, client: c, state: st, path: path}
}

// TestFeeCeilingStopsReplacing: replacements stop with ErrFeeCeiling once
// the next bump would cross MaxFeeCap; the last version stays stored, and
// a restarted transactor with a higher ceiling resumes the same nonce.
func TestFeeCeilingStopsReplacing(t *testing.T) {
	s := newStuckEnv(t)
	gwei := big.NewInt(1e9)
	s.tx.MaxFeeCap = new(big.Int).Mul(big.NewInt(12), gwei) // allows 10 -> 11 gwei, not 12.1
	fixedFees := func(o *bind.TransactOpts) {
		o.GasTipCap = new(big.Int).Set(gwei)
		o.GasFeeCap = new(big.Int).Mul(big.NewInt(10), gwei)
	}
	_, err := s.tx.Send(s.ctx, "mint", func(o *bind.TransactOpts) (*types.Transaction, error) {
		fixedFees(o)
		return s.client.token.Mint(o, common.Address{0x44}, money.MYST(1))
	})
	if !errors.Is(err, ErrFeeCeiling) {
		t.Fatalf("send: %v, want ErrFeeCeiling", err)
	}
	ps, err := s.state.PendingTxs(s.ctx, s.tx.Address())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || len(ps[0].Txs) != 2 {
		t.Fatalf("pending records %+v, want one with 2 versions", ps)
	}
	if fc := ps[0].Latest().GasFeeCap(); fc.Cmp(s.tx.MaxFeeCap) > 0 {
		t.Fatalf("last fee cap %s above the ceiling", fc)
	}
	nonce := ps[0].Nonce

	// A new process with a higher ceiling takes over the same nonce.
	tx2, err := NewTransactor(s.ctx, s.backend.Client, s.tx.key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tx2.ReplaceAfter = 100 * time.Millisecond
	tx2.SetPendingStore(s.state)
	rs := resumeWhileMining(t, s, tx2)
	if len(rs) != 1 {
		t.Fatalf("resumed %d receipts, want 1", len(rs))
	}
	if got := s.minedTx(t, rs[0]).Nonce(); got != nonce {
		t.Fatalf("resumed nonce %d, want %d", got, nonce)
	}
	s.wantNoPending(t)
}

// resumeWhileMining runs tx.Resume while blocks are mined.
func resumeWhileMining(t *testing.T, s *stuckEnv, tx *Transactor) []*types.Receipt {
	t.Helper()
	var rs []*types.Receipt
	var err error
	s.whileMining(func() { rs, err = tx.Resume(s.ctx) })
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	return rs
}

// whileMining runs fn while a block is mined every 50 ms.
func (s *stuckEnv) whileMining(fn func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				s.commit()
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
}

// TestRestartResumesPendingTransaction: a process that stored and sent a
// transaction stops before it is mined; the next process with the same
// store resumes that nonce (it is mined once) and hands out the following
// nonce to new transactions, never sending the operation again.
func TestRestartResumesPendingTransaction(t *testing.T) {
	s := newStuckEnv(t)
	s.tx.ReplaceAfter = time.Hour // the first process never replaces
	to := common.Address{0x45}
	ctx, cancel := context.WithCancel(s.ctx)
	done := s.mintAsync(ctx, s.client, to)
	p := s.waitVersions(t, 1, true)
	cancel() // the process stops waiting (as if killed)
	if res := <-done; res.err == nil {
		t.Fatal("send finished without a block")
	}
	if err := s.state.Close(); err != nil {
		t.Fatal(err)
	}

	st, err := OpenStateDB(s.path)
	if err != nil {
		t.Fatal(err)
	}
	s.state = st
	tx2, err := NewTransactor(s.ctx, s.backend.Client, s.tx.key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tx2.ReplaceAfter = 100 * time.Millisecond
	tx2.SetPendingStore(st)
	rs := resumeWhileMining(t, s, tx2)
	if len(rs) != 1 || !slices.ContainsFunc(p.Txs, func(tx *types.Transaction) bool { return tx.Hash() == rs[0].TxHash }) {
		t.Fatalf("resumed receipts %v, want one of the stored versions", rs)
	}
	if got := s.minedTx(t, rs[0]).Nonce(); got != p.Nonce {
		t.Fatalf("mined nonce %d, want the stored %d", got, p.Nonce)
	}
	if b := s.balance(to); b.Cmp(money.MYST(1)) != 0 {
		t.Fatalf("minted %s MYST, want exactly 1 (sent once)", money.FormatMYST(b))
	}
	s.wantNoPending(t)

	// New work gets the next nonce.
	c2, err := NewClient(s.ctx, s.backend.Client, s.dep, tx2, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done = s.mintAsync(s.ctx, c2, to)
	s.waitVersions(t, 1, true)
	s.commit()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got := s.minedTx(t, res.r).Nonce(); got != p.Nonce+1 {
		t.Fatalf("next send nonce %d, want %d", got, p.Nonce+1)
	}
}

// TestResumeBroadcastsStoredButUnsentTransaction: a process that stored a
// transaction and died before broadcasting it leaves a record; Resume
// broadcasts it with its stored nonce, and new sends do not reuse that nonce
// even before Resume ran.
func TestResumeBroadcastsStoredButUnsentTransaction(t *testing.T) {
	s := newStuckEnv(t)
	from := s.tx.Address()
	n, err := s.backend.PendingNonceAt(s.ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	to := common.Address{0x46}
	raw := s.storeUnsent(t, n, to)
	tx2, err := NewTransactor(s.ctx, s.backend.Client, s.tx.key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tx2.SetPendingStore(s.state)
	// A send before Resume takes the nonce after the stored one.
	other, err := tx2.send(s.ctx, "pay more", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return types.SignNewTx(s.tx.key, types.LatestSignerForChainID(s.tx.chainID), &types.DynamicFeeTx{
			ChainID: s.tx.chainID, Nonce: o.Nonce.Uint64(), GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e10), Gas: 21000, To: &to, Value: big.NewInt(1),
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if other.Nonce != n+1 {
		t.Fatalf("send before resume got nonce %d, want %d", other.Nonce, n+1)
	}
	rs := resumeWhileMining(t, s, tx2)
	if len(rs) != 2 || rs[0].TxHash != raw.Hash() {
		t.Fatalf("resumed %v, want the stored transaction first", rs)
	}
	bal, err := s.backend.BalanceAt(s.ctx, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bal.Int64() != 8 {
		t.Fatalf("recipient has %s wei, want 8", bal)
	}
	s.wantNoPending(t)
}

// storeUnsent stores, as a process that died before broadcasting it
// would, a transaction paying to 7 wei at nonce.
func (s *stuckEnv) storeUnsent(t *testing.T, nonce uint64, to common.Address) *types.Transaction {
	t.Helper()
	raw, err := types.SignNewTx(s.tx.key, types.LatestSignerForChainID(s.tx.chainID), &types.DynamicFeeTx{
		ChainID: s.tx.chainID, Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e10), Gas: 21000, To: &to, Value: big.NewInt(7),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.state.PutPending(s.ctx, &PendingTx{From: s.tx.Address(), Nonce: nonce, Op: "pay", Txs: []*types.Transaction{raw}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestBumpMeetsTxpoolRule checks the replacement arithmetic on edge values.
func TestBumpMeetsTxpoolRule(t *testing.T) {
	for _, v := range []int64{0, 1, 9, 10, 11, 99, 100, 101, 1e9, 7_777_777_777} {
		b := bump(big.NewInt(v), 10)
		// go-ethereum's legacypool: new ≥ old*110/100 and new > old.
		if b.Cmp(big.NewInt(v*110/100)) < 0 || b.Int64() <= v {
			t.Fatalf("bump(%d) = %s", v, b)
		}
	}
}

// TestSendWaitsForResume: while Resume finishes what a previous run left
// pending, new sends wait, so they see its effects before building.
func TestSendWaitsForResume(t *testing.T) {
	s := newStuckEnv(t)
	s.tx.ReplaceAfter = time.Hour
	ctx, cancel := context.WithCancel(s.ctx)
	done := s.mintAsync(ctx, s.client, common.Address{0x47})
	p := s.waitVersions(t, 1, true)
	cancel()
	<-done

	tx2, err := NewTransactor(s.ctx, s.backend.Client, s.tx.key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tx2.SetPendingStore(s.state)
	c2, err := NewClient(s.ctx, s.backend.Client, s.dep, tx2, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	resumed := make(chan error, 1)
	go func() { _, err := tx2.Resume(s.ctx); resumed <- err }()
	for { // Resume has started once it holds the gate
		tx2.mu.Lock()
		started := tx2.resuming != nil
		tx2.mu.Unlock()
		if started {
			break
		}
		time.Sleep(time.Millisecond)
	}
	sent := s.mintAsync(s.ctx, c2, common.Address{0x48})
	time.Sleep(300 * time.Millisecond)
	ps, err := s.state.PendingTxs(s.ctx, tx2.Address())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Nonce != p.Nonce {
		t.Fatalf("a send went out while Resume was running: %d records", len(ps))
	}
	s.commit()
	if err := <-resumed; err != nil {
		t.Fatal(err)
	}
	s.waitVersions(t, 1, true)
	s.commit()
	res := <-sent
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got := s.minedTx(t, res.r).Nonce(); got != p.Nonce+1 {
		t.Fatalf("send after resume got nonce %d, want %d", got, p.Nonce+1)
	}
}

// lostReply delivers the first transaction to the node, then reports a
// broken connection, as when a reply is lost after the request went out.
type lostReply struct {
	Backend
	mu   sync.Mutex
	done bool
}

func (l *lostReply) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	if err := l.Backend.SendTransaction(ctx, tx); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		return errors.New("write tcp 127.0.0.1:50000->127.0.0.1:8545: connection reset by peer")
	}
	return nil
}

// TestLostBroadcastReplyStillTracksTheTransaction: a broadcast whose reply
// is lost is not taken for a refusal: the record stays, Send waits for the
// transaction and it is mined once, with its nonce.
func TestLostBroadcastReplyStillTracksTheTransaction(t *testing.T) {
	s := newStuckEnvWith(t, newEnv(t, hermesOpts{}), func(b Backend) Backend { return &lostReply{Backend: b} })
	s.tx.ReplaceAfter = time.Hour
	to := common.Address{0x49}
	done := s.mintAsync(s.ctx, s.client, to)
	p := s.waitVersions(t, 1, true)
	s.commit()
	res := <-done
	if res.err != nil {
		t.Fatalf("send: %v", res.err)
	}
	if res.r.TxHash != p.Txs[0].Hash() {
		t.Fatalf("mined %s, want %s", res.r.TxHash.Hex(), p.Txs[0].Hash().Hex())
	}
	if b := s.balance(to); b.Cmp(money.MYST(1)) != 0 {
		t.Fatalf("minted %s MYST, want 1", money.FormatMYST(b))
	}
	s.wantNoPending(t)
}

// TestSendAfterFeeCeilingDoesNotQueueBehind: while a transaction is stuck
// at the fee ceiling, a new send fails with ErrFeeCeiling instead of
// queueing behind it; once the ceiling is raised, the next send gets the
// stuck one mined first (same nonce) and then goes out with the next nonce.
func TestSendAfterFeeCeilingDoesNotQueueBehind(t *testing.T) {
	s := newStuckEnv(t)
	gwei := big.NewInt(1e9)
	s.tx.MaxFeeCap = new(big.Int).Mul(big.NewInt(12), gwei)
	_, err := s.tx.Send(s.ctx, "mint", func(o *bind.TransactOpts) (*types.Transaction, error) {
		o.GasTipCap = new(big.Int).Set(gwei)
		o.GasFeeCap = new(big.Int).Mul(big.NewInt(10), gwei)
		return s.client.token.Mint(o, common.Address{0x50}, money.MYST(1))
	})
	if !errors.Is(err, ErrFeeCeiling) {
		t.Fatalf("send: %v, want ErrFeeCeiling", err)
	}
	stuck := s.waitVersions(t, 2, true)
	if _, err := s.client.Mint(s.ctx, common.Address{0x51}, money.MYST(1)); !errors.Is(err, ErrFeeCeiling) {
		t.Fatalf("send behind the stuck nonce: %v, want ErrFeeCeiling", err)
	}
	if ps, _ := s.state.PendingTxs(s.ctx, s.tx.Address()); len(ps) != 1 || ps[0].Nonce != stuck.Nonce {
		t.Fatalf("pending records %v, want only the stuck nonce %d", ps, stuck.Nonce)
	}

	s.tx.MaxFeeCap = new(big.Int).Mul(big.NewInt(100), gwei)
	var r *types.Receipt
	s.whileMining(func() { r, err = s.client.Mint(s.ctx, common.Address{0x51}, money.MYST(1)) })
	if err != nil {
		t.Fatalf("send after raising the ceiling: %v", err)
	}
	if got := s.minedTx(t, r).Nonce(); got != stuck.Nonce+1 {
		t.Fatalf("new send nonce %d, want %d", got, stuck.Nonce+1)
	}
	if b := s.balance(common.Address{0x50}); b.Cmp(money.MYST(1)) != 0 {
		t.Fatalf("the stuck mint paid %s MYST, want 1", money.FormatMYST(b))
	}
	s.wantNoPending(t)
}
