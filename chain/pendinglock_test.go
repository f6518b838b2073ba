package chain

import (
	"context"
	"log/slog"
	"math/big"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/money"
)

// lockedTransactor is a Transactor for key on e's non-mining backend
// keeping its pending transactions through PendingFileLock(path), never
// replacing, and a client sending through it.
func lockedTransactor(t *testing.T, s *stuckEnv, path string) (*Transactor, *Client) {
	t.Helper()
	tx, err := NewTransactor(s.ctx, s.backend.Client, s.tx.key, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tx.ReplaceAfter = time.Hour
	tx.SetPendingLock(PendingFileLock(path, nil))
	c, err := NewClient(s.ctx, s.backend.Client, s.dep, tx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return tx, c
}

// waitPendingNonce waits until the pool holds nonces below n for s's key.
func (s *stuckEnv) waitPendingNonce(t *testing.T, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got, err := s.backend.PendingNonceAt(s.ctx, s.tx.Address())
		if err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
	}
	t.Fatalf("pending nonce never reached %d", n)
}

// headAndNonce returns the chain's head block and the transactor's
// mined nonce.
func (s *stuckEnv) headAndNonce(t *testing.T) (head, nonce uint64) {
	t.Helper()
	head, err := s.backend.BlockNumber(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if nonce, err = s.backend.NonceAt(s.ctx, s.tx.Address(), nil); err != nil {
		t.Fatal(err)
	}
	return head, nonce
}

// sentFrom lists the nonces of the mined transactions from addr in blocks
// after from.
func (s *stuckEnv) sentFrom(t *testing.T, addr common.Address, from uint64) []uint64 {
	t.Helper()
	head, err := s.backend.BlockNumber(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	signer := types.LatestSignerForChainID(s.tx.chainID)
	var nonces []uint64
	for n := from + 1; n <= head; n++ {
		b, err := s.backend.BlockByNumber(s.ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range b.Transactions() {
			if f, err := types.Sender(signer, tx); err == nil && f == addr {
				nonces = append(nonces, tx.Nonce())
			}
		}
	}
	return nonces
}

// wantNoRecordsIn fails unless the pending file at path is empty.
func (s *stuckEnv) wantNoRecordsIn(t *testing.T, path string) {
	t.Helper()
	st, err := LockStateDB(s.ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ps, err := st.PendingTxs(s.ctx, s.tx.Address()); err != nil || len(ps) != 0 {
		t.Fatalf("pending records left: %d, %v", len(ps), err)
	}
}

// TestPendingLockTakesTurns: two processes sending from one key through
// one pending file (a daemon and a command on one data dir) take turns:
// while the first waits for its transaction the second does not send;
// when the first dies before its transaction is mined, the second takes
// the file, finishes that transaction under its nonce, then sends its own
// with the next nonce. Each operation is mined exactly once.
func TestPendingLockTakesTurns(t *testing.T) {
	s := newStuckEnv(t)
	path := filepath.Join(t.TempDir(), "pending.db")
	_, ca := lockedTransactor(t, s, path)
	_, cb := lockedTransactor(t, s, path)
	head, n := s.headAndNonce(t)
	to := common.Address{0x51}

	actx, kill := context.WithCancel(s.ctx)
	a := s.mintAsync(actx, ca, to)
	s.waitPendingNonce(t, n+1) // a's transaction is in the pool, unmined
	b := s.mintAsync(s.ctx, cb, to)
	time.Sleep(300 * time.Millisecond)
	if got, err := s.backend.PendingNonceAt(s.ctx, s.tx.Address()); err != nil || got != n+1 {
		t.Fatalf("pending nonce %d (%v) while the first process holds the file, want %d: the second sent", got, err, n+1)
	}
	kill() // the first process dies before its transaction is mined
	if res := <-a; res.err == nil {
		t.Fatal("first send finished without a block")
	}
	var res sendResult
	s.whileMining(func() { res = <-b })
	if res.err != nil {
		t.Fatalf("second send: %v", res.err)
	}
	if got := s.minedTx(t, res.r).Nonce(); got != n+1 {
		t.Fatalf("second send mined with nonce %d, want %d", got, n+1)
	}
	if got := s.sentFrom(t, s.tx.Address(), head); len(got) != 2 || got[0] != n || got[1] != n+1 {
		t.Fatalf("mined nonces %v, want [%d %d]", got, n, n+1)
	}
	if bal := s.balance(to); bal.Cmp(money.MYST(2)) != 0 {
		t.Fatalf("minted %s MYST, want 2 (each operation once)", money.FormatMYST(bal))
	}
	s.wantNoRecordsIn(t, path)
}

// TestResumeDropsRecordsBeyondAGap: a record whose nonce lies above one
// nobody holds (the data dir outlived a dev chain) can never be mined;
// Resume drops it, and the next send takes the chain's nonce instead of
// queueing behind it forever.
func TestResumeDropsRecordsBeyondAGap(t *testing.T) {
	s := newStuckEnv(t)
	from := s.tx.Address()
	n, err := s.backend.PendingNonceAt(s.ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	to := common.Address{0x52}
	s.storeUnsent(t, n+3, to)
	rs := resumeWhileMining(t, s, s.tx)
	if len(rs) != 0 {
		t.Fatalf("resumed %d receipts, want none", len(rs))
	}
	s.wantNoPending(t)
	var res sendResult
	s.whileMining(func() { res = <-s.mintAsync(s.ctx, s.client, to) })
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got := s.minedTx(t, res.r).Nonce(); got != n {
		t.Fatalf("next send nonce %d, want the chain's %d", got, n)
	}
}

// TestPendingLockConcurrentSends: sends of one process share the file
// while any of them runs (they join the holder instead of waiting for
// it): concurrent sends get distinct consecutive nonces and leave no
// record.
func TestPendingLockConcurrentSends(t *testing.T) {
	s := newStuckEnv(t)
	path := filepath.Join(t.TempDir(), "pending.db")
	tx, c := lockedTransactor(t, s, path)
	tx.ReplaceAfter = 100 * time.Millisecond
	head, n := s.headAndNonce(t)
	const sends = 4
	to := common.Address{0x53}
	s.whileMining(func() {
		res := make([]chan sendResult, sends)
		for i := range res {
			res[i] = s.mintAsync(s.ctx, c, to)
		}
		for _, r := range res {
			if got := <-r; got.err != nil {
				t.Errorf("send: %v", got.err)
			}
		}
	})
	got := s.sentFrom(t, s.tx.Address(), head)
	slices.Sort(got)
	if len(got) != sends || got[0] != n || got[sends-1] != n+sends-1 {
		t.Fatalf("mined nonces %v, want %d from %d", got, sends, n)
	}
	if bal := s.balance(to); bal.Cmp(money.MYST(sends)) != 0 {
		t.Fatalf("minted %s MYST, want %d", money.FormatMYST(bal), sends)
	}
	s.wantNoRecordsIn(t, path)
}
