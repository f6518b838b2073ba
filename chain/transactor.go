package chain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/openmyst/openmyst/internal/retry"
)

// Backend is what the client needs from a chain: ethclient.Client and the
// simulated backend's client both satisfy it.
type Backend interface {
	bind.ContractBackend
	bind.DeployBackend
	ethereum.ChainIDReader
	BalanceAt(ctx context.Context, account common.Address, blockNumber *big.Int) (*big.Int, error)
	NonceAt(ctx context.Context, account common.Address, blockNumber *big.Int) (uint64, error)
}

// Defaults of the Transactor's waiting and replacement settings.
const (
	// DefaultReceiptTimeout bounds how long Send waits for one transaction
	// (all its fee-bumped versions) to be mined.
	DefaultReceiptTimeout = 10 * time.Minute
	// DefaultReplaceAfter is how long a version may stay unmined before it
	// is replaced by one with higher fees.
	DefaultReplaceAfter = time.Minute
	// MinPriceBumpPercent is the least fee increase a replacement carries:
	// go-ethereum's txpool (and most others) refuse a replacement that does
	// not raise both the tip and the fee cap by 10%.
	MinPriceBumpPercent = 10
	// DefaultFeeCeilingMultiplier sets the fee ceiling when MaxFeeCap is
	// nil: this many times the first version's fee cap (gas price).
	DefaultFeeCeilingMultiplier = 5
)

// ErrFeeCeiling is returned (wrapped) by Send when a transaction was not
// mined and the next replacement would pay more per gas than the ceiling.
// Its last version stays pending (and persisted): it may still be mined.
var ErrFeeCeiling = errors.New("chain: fee ceiling reached before the transaction was mined")

// ErrNonceTaken is returned (wrapped) when a transaction's nonce was used by
// a transaction this Transactor did not send (another process with the
// same key), so none of its versions can be mined any more.
var ErrNonceTaken = errors.New("chain: nonce was used by another transaction")

// Transactor sends transactions from one key. It hands out nonces itself
// so that concurrent calls from many goroutines do not collide, and
// resynchronises with the chain after a failed send. A transaction not
// mined within ReplaceAfter is replaced by one with the same nonce and
// bumped fees (EIP-1559 replacement rules) until one version is mined or
// the fee ceiling is reached. With a PendingStore, every version is stored
// before it is broadcast and Resume takes over what a previous run left
// pending. The key is never logged.
type Transactor struct {
	key     *ecdsa.PrivateKey
	addr    common.Address
	backend Backend
	chainID *big.Int
	signer  types.Signer
	log     *slog.Logger
	// ReceiptTimeout bounds the wait for each transaction, all versions
	// included (DefaultReceiptTimeout if zero).
	ReceiptTimeout time.Duration
	// ReplaceAfter is how long a version may stay unmined before it is
	// replaced (DefaultReplaceAfter if zero).
	ReplaceAfter time.Duration
	// PriceBumpPercent is the fee increase per replacement
	// (MinPriceBumpPercent if lower).
	PriceBumpPercent uint64
	// MaxFeeCap is the fee ceiling in wei per gas: no version pays a fee
	// cap (legacy: gas price) above it. Nil means DefaultFeeCeilingMultiplier
	// times the first version's.
	MaxFeeCap *big.Int

	mu        sync.Mutex
	nextNonce uint64
	synced    bool
	store     PendingStore
	resuming  chan struct{}         // closed when the running Resume ends
	stuck     map[uint64]*PendingTx // unmined at the fee ceiling, by nonce

	// With a PendingLock the store is held only while there is work:
	lock       PendingLock
	holders    int           // sends (and resumes) holding the store
	taking     chan struct{} // closed when the running take ends
	closeStore func() error  // releases the store taken through lock
}

// PendingLock takes an account's PendingStore for this process alone,
// waiting (bounded by ctx) while another process holds it; release gives
// it back (see LockStateDB).
type PendingLock func(ctx context.Context) (store PendingStore, release func() error, err error)

// NewTransactor returns a Transactor for key on backend (chain id read once).
func NewTransactor(ctx context.Context, backend Backend, key *ecdsa.PrivateKey, log *slog.Logger) (*Transactor, error) {
	id, err := backend.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("chain: read chain id: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	addr := crypto.PubkeyToAddress(key.PublicKey)
	return &Transactor{key: key, addr: addr, backend: backend, chainID: id, signer: types.LatestSignerForChainID(id), log: log.With("sender", addr.Hex())}, nil
}

// SetPendingStore makes the Transactor store every transaction version
// before broadcasting it. Set it before the first Send, then call Resume.
// It replaces a PendingLock.
func (t *Transactor) SetPendingStore(s PendingStore) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.store, t.synced, t.lock = s, false, nil
}

// SetPendingLock makes the Transactor keep its pending transactions in the
// store lock gives, and share the account with other processes taking the
// same lock: the store is taken by the first Send (or Resume) and given
// back when the last one ends, so only one process at a time hands out
// nonces. Each time it is taken the Transactor reads the nonce again and
// first finishes (Resume) what the store holds, whichever process left it
// there. Set it before the first Send.
func (t *Transactor) SetPendingLock(l PendingLock) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lock, t.store, t.synced = l, nil, false
}

// hold takes the pending store through the lock (when there is one) for
// the caller, resuming what it holds when this call is the one taking it.
// release must be called once the caller's transactions are done.
// The receipts and errors of that resume come back as rs and resumeErr.
func (t *Transactor) hold(ctx context.Context) (rs []*types.Receipt, resumeErr error, release func(), err error) {
	t.mu.Lock()
	for {
		if t.lock == nil {
			t.mu.Unlock()
			return nil, nil, func() {}, nil
		}
		if t.holders > 0 {
			t.holders++
			t.mu.Unlock()
			return nil, nil, t.unhold, nil
		}
		if t.taking == nil {
			break
		}
		taking := t.taking
		t.mu.Unlock()
		select {
		case <-taking:
		case <-ctx.Done():
			return nil, nil, nil, fmt.Errorf("chain: waiting for the pending store: %w", ctx.Err())
		}
		t.mu.Lock()
	}
	taking := make(chan struct{})
	t.taking = taking
	lock := t.lock
	t.mu.Unlock()
	st, closeStore, err := lock(ctx)
	t.mu.Lock()
	t.taking = nil
	close(taking)
	if err != nil {
		t.mu.Unlock()
		return nil, nil, nil, fmt.Errorf("chain: take the pending store of %s: %w", t.addr.Hex(), err)
	}
	// Another process may have sent since this one last held it.
	t.store, t.closeStore, t.synced, t.holders = st, closeStore, false, 1
	done := make(chan struct{})
	t.resuming = done // joiners wait for the resume below
	t.mu.Unlock()
	rs, resumeErr = t.resume(ctx, st, done)
	return rs, resumeErr, t.unhold, nil
}

// unhold ends one hold; the last gives the store back.
func (t *Transactor) unhold() {
	t.mu.Lock()
	t.holders--
	if t.holders > 0 {
		t.mu.Unlock()
		return
	}
	closeStore := t.closeStore
	// What stays pending (stuck at the ceiling, timed out) is in the
	// store: the next holder resumes it.
	t.store, t.closeStore, t.synced, t.stuck = nil, nil, false, nil
	t.mu.Unlock()
	if err := closeStore(); err != nil {
		t.log.Error("chain: release the pending store", "err", err)
	}
}

// Address is the account paying for the transactions.
func (t *Transactor) Address() common.Address { return t.addr }

// ChainID is the chain id of the backend.
func (t *Transactor) ChainID() *big.Int { return new(big.Int).Set(t.chainID) }

// Backend is the chain backend transactions are sent to.
func (t *Transactor) Backend() Backend { return t.backend }

// Send runs build with transact options carrying the next nonce, stores
// and broadcasts the signed transaction, and waits until it (or a
// fee-bumped replacement) is mined. A revert (at gas estimation or once
// mined) comes back as a *RevertError for op. build may broadcast the
// transaction itself; the Transactor's own broadcast then reports "already
// known", which is fine.
func (t *Transactor) Send(ctx context.Context, op string, build func(*bind.TransactOpts) (*types.Transaction, error)) (*types.Receipt, error) {
	_, resumeErr, release, err := t.hold(ctx)
	if err != nil {
		return nil, fmt.Errorf("chain: %s: not sent: %w", op, err)
	}
	defer release()
	if resumeErr != nil && ctx.Err() == nil {
		// What stays pending stays stored; nonces go above it.
		t.log.Warn("chain: resume pending transactions", "op", op, "err", resumeErr)
	}
	t.mu.Lock()
	resuming := t.resuming
	t.mu.Unlock()
	if resuming != nil {
		// The work of resumed transactions may be what op is about to
		// redo: let them land first, so build sees their effects.
		select {
		case <-resuming:
		case <-ctx.Done():
			return nil, fmt.Errorf("chain: %s: waiting for resumed transactions: %w", op, ctx.Err())
		}
	}
	if err := t.checkStuck(ctx, op); err != nil {
		return nil, err
	}
	p, err := t.send(ctx, op, build)
	if err != nil {
		return nil, err
	}
	return t.await(ctx, p)
}

func (t *Transactor) send(ctx context.Context, op string, build func(*bind.TransactOpts) (*types.Transaction, error)) (*PendingTx, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// A nonce clash (another process sending from the same key) resyncs
	// from the pending nonce and retries once.
	for attempt := 0; ; attempt++ {
		if !t.synced {
			if err := t.syncNonce(ctx); err != nil {
				return nil, fmt.Errorf("chain: %s: %w", op, err)
			}
		}
		opts, err := bind.NewKeyedTransactorWithChainID(t.key, t.chainID)
		if err != nil {
			return nil, fmt.Errorf("chain: %s: %w", op, err)
		}
		opts.Context = ctx
		opts.Nonce = new(big.Int).SetUint64(t.nextNonce)
		opts.NoSend = true
		tx, err := build(opts)
		if err == nil {
			p := &PendingTx{From: t.addr, Nonce: tx.Nonce(), Op: op, Txs: []*types.Transaction{tx}, Created: time.Now().UTC()}
			if err = t.persist(ctx, p); err != nil {
				return nil, err
			}
			err = t.broadcast(ctx, tx)
			if err == nil || !isRejection(err) {
				t.nextNonce = tx.Nonce() + 1
				if err != nil {
					// The node may have it (the connection failed after
					// the request went out): keep the record and the
					// nonce; if it never arrived, the replacement after
					// ReplaceAfter (or Resume after a restart) sends it.
					t.log.Warn("chain: broadcast failed, the transaction may be out", "op", op, "tx", tx.Hash().Hex(), "nonce", tx.Nonce(), "err", err)
					if ctx.Err() != nil {
						return nil, fmt.Errorf("chain: %s: broadcast %s: %w", op, tx.Hash().Hex(), err)
					}
				}
				t.log.Debug("chain: transaction sent", "op", op, "tx", tx.Hash().Hex(), "nonce", tx.Nonce())
				return p, nil
			}
			t.forget(p)
		}
		if isNonceError(err) {
			t.synced = false
			if attempt == 0 {
				t.log.Warn("chain: nonce clash, resyncing", "op", op, "nonce", t.nextNonce)
				continue
			}
		}
		return nil, wrapCallError(op, err)
	}
}

// syncNonce reads the account's pending nonce; with a store, nonces of
// stored transactions are never handed out again. Called with t.mu held.
func (t *Transactor) syncNonce(ctx context.Context) error {
	n, err := t.backend.PendingNonceAt(ctx, t.addr)
	if err != nil {
		return fmt.Errorf("read nonce: %w", err)
	}
	if t.store != nil {
		ps, err := t.store.PendingTxs(ctx, t.addr)
		if err != nil {
			return err
		}
		next := n
		for _, p := range ps {
			if p.Nonce >= n {
				// Ours, but the node does not know it (a broadcast that
				// failed, a node that lost its pool): send it again so
				// it does not leave a gap before the next nonces.
				if err := t.broadcast(ctx, p.Latest()); err != nil {
					t.log.Warn("chain: rebroadcast stored transaction", "op", p.Op, "nonce", p.Nonce, "err", err)
				}
				next = max(next, p.Nonce+1)
			}
		}
		n = next
	}
	t.nextNonce, t.synced = n, true
	return nil
}

func (t *Transactor) persist(ctx context.Context, p *PendingTx) error {
	if t.store == nil {
		return nil
	}
	if err := t.store.PutPending(ctx, p); err != nil {
		return fmt.Errorf("chain: %s: not sent: %w", p.Op, err)
	}
	return nil
}

// forget deletes p's record (the transaction was refused or is settled).
func (t *Transactor) forget(p *PendingTx) {
	if t.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := t.store.DeletePending(ctx, p.From, p.Nonce); err != nil {
		t.log.Error("chain: delete pending transaction record", "op", p.Op, "nonce", p.Nonce, "err", err)
	}
}

// broadcast sends tx; a node that already has it, or has mined it (build
// may have broadcast it itself), is not an error.
func (t *Transactor) broadcast(ctx context.Context, tx *types.Transaction) error {
	err := t.backend.SendTransaction(ctx, tx)
	if err == nil || strings.Contains(strings.ToLower(err.Error()), "already known") {
		return nil
	}
	if r, rerr := t.backend.TransactionReceipt(ctx, tx.Hash()); rerr == nil && r != nil {
		return nil
	}
	return err
}

// isRejection reports whether err is the node's answer refusing a
// transaction (a JSON-RPC error), as opposed to a failed connection after
// which the node may or may not have it.
func isRejection(err error) bool {
	var re rpc.Error
	return errors.As(err, &re)
}

func isNonceError(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "nonce") || strings.Contains(s, "replacement transaction")
}

// Resume takes over the transactions a previous run of this account left
// pending in the store: each is rebroadcast (newest version) and waited for
// with the usual replacements, in nonce order. It returns the receipts of
// those mined and the errors of the others, joined. Nothing is sent with a
// new nonce. Send calls wait until Resume has ended (a call made before
// Resume starts gets a nonce above the stored ones). With a PendingLock it
// takes the store (waiting for another process to give it back) and gives
// it back when done; while this process holds it already, it returns at
// once (the holder resumed when it took it).
func (t *Transactor) Resume(ctx context.Context) ([]*types.Receipt, error) {
	t.mu.Lock()
	if t.lock != nil {
		t.mu.Unlock()
		rs, resumeErr, release, err := t.hold(ctx)
		if err != nil {
			return nil, err
		}
		release()
		return rs, resumeErr
	}
	st := t.store
	if st == nil || t.resuming != nil {
		t.mu.Unlock()
		return nil, nil
	}
	done := make(chan struct{})
	t.resuming = done
	t.mu.Unlock()
	return t.resume(ctx, st, done)
}

// resume is Resume on st; done is t.resuming, closed at the end.
func (t *Transactor) resume(ctx context.Context, st PendingStore, done chan struct{}) ([]*types.Receipt, error) {
	defer func() {
		t.mu.Lock()
		t.resuming = nil
		t.mu.Unlock()
		close(done)
	}()
	ps, err := st.PendingTxs(ctx, t.addr)
	if err != nil {
		return nil, err
	}
	ps = t.dropBeyondGap(ctx, st, ps)
	var rs []*types.Receipt
	var errs []error
	for _, p := range ps {
		t.log.Info("chain: resuming pending transaction", "op", p.Op, "nonce", p.Nonce, "versions", len(p.Txs), "tx", p.Latest().Hash().Hex())
		if err := t.broadcast(ctx, p.Latest()); err != nil {
			// Mined already ("nonce too low") or a node that lost it
			// refuses it for now: await finds out which.
			t.log.Debug("chain: rebroadcast pending transaction", "op", p.Op, "nonce", p.Nonce, "err", err)
		}
		r, err := t.await(ctx, p)
		if r != nil {
			rs = append(rs, r)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("nonce %d: %w", p.Nonce, err))
		}
	}
	return rs, errors.Join(errs...)
}

// dropBeyondGap deletes the records (ps in nonce order) that can never be
// mined: above a nonce that neither the node's pool nor the store holds.
// Every transaction this account signs is stored until it is mined, so
// such a gap means the chain is not the one the records were sent to (a
// dev chain started afresh under the same data dir); their nonces would
// block every later transaction. It returns the others.
func (t *Transactor) dropBeyondGap(ctx context.Context, st PendingStore, ps []*PendingTx) []*PendingTx {
	if len(ps) == 0 {
		return ps
	}
	next, err := t.backend.PendingNonceAt(ctx, t.addr)
	if err != nil {
		return ps // the waits below find out
	}
	for i, p := range ps {
		switch {
		case p.Nonce < next:
			continue
		case p.Nonce == next:
			next++
			continue
		}
		for _, q := range ps[i:] {
			t.log.Warn("chain: dropping a stored transaction that cannot be mined: the chain has no transaction at an earlier nonce (a new chain?)",
				"op", q.Op, "nonce", q.Nonce, "missing_nonce", next, "tx", q.Latest().Hash().Hex())
			if err := st.DeletePending(ctx, q.From, q.Nonce); err != nil {
				t.log.Error("chain: delete pending transaction record", "op", q.Op, "nonce", q.Nonce, "err", err)
			}
		}
		return ps[:i]
	}
	return ps
}

// pollBackoff spaces the polls for a receipt or a spent nonce: 10ms,
// doubling up to 500ms.
var pollBackoff = retry.Backoff{Initial: 10 * time.Millisecond, Max: 500 * time.Millisecond}

// Wait waits for tx's receipt (bounded by ctx and ReceiptTimeout) and turns
// a failed transaction into an error, recovering the revert reason by
// replaying the call when possible. It does not replace tx.
func (t *Transactor) Wait(ctx context.Context, op string, tx *types.Transaction) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, t.receiptTimeout())
	defer cancel()
	var lastErr error
	for n := 1; ; n++ {
		r, err := t.backend.TransactionReceipt(ctx, tx.Hash())
		if err == nil && r != nil {
			if r.Status != types.ReceiptStatusSuccessful {
				return r, t.failure(ctx, op, tx, r)
			}
			return r, nil
		}
		// Not mined yet, "transaction indexing is in progress", or a
		// transient RPC error: keep polling until the deadline.
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			lastErr = err
		}
		if retry.Sleep(ctx, pollBackoff.Delay(n)) != nil {
			return nil, waitError(op, tx, ctx.Err(), lastErr)
		}
	}
}

func waitError(op string, tx *types.Transaction, err, last error) error {
	if last != nil {
		return fmt.Errorf("chain: %s: waiting for %s: %w (last error: %v)", op, tx.Hash().Hex(), err, last)
	}
	return fmt.Errorf("chain: %s: waiting for %s: %w", op, tx.Hash().Hex(), err)
}

func (t *Transactor) receiptTimeout() time.Duration {
	if t.ReceiptTimeout > 0 {
		return t.ReceiptTimeout
	}
	return DefaultReceiptTimeout
}

// await waits until one version of p is mined, replacing the newest with
// a fee-bumped version each ReplaceAfter. Each round reads the account
// nonce and looks for receipts only once the nonce is spent (one call per
// round while nothing is mined). The record is deleted once a version is
// mined or the nonce stays spent by someone else for a whole ReplaceAfter;
// it is kept when waiting ends otherwise (Resume continues it).
func (t *Transactor) await(ctx context.Context, p *PendingTx) (*types.Receipt, error) {
	return t.awaitFrom(ctx, p, false)
}

// awaitFrom is await; replaceNow makes the first replacement at once.
func (t *Transactor) awaitFrom(ctx context.Context, p *PendingTx, replaceNow bool) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, t.receiptTimeout())
	defer cancel()
	replaceAfter := t.ReplaceAfter
	if replaceAfter <= 0 {
		replaceAfter = DefaultReplaceAfter
	}
	sentAt := time.Now()
	if replaceNow {
		sentAt = time.Time{}
	}
	var spentAt time.Time // when the nonce was first seen spent without our receipt
	var lastErr error
	for round := 1; ; round++ {
		n, nerr := t.backend.NonceAt(ctx, t.addr, nil)
		if nerr != nil {
			lastErr = nerr
		}
		if nerr != nil || n > p.Nonce {
			tx, r, err := t.minedVersion(ctx, p)
			if r != nil {
				t.forget(p)
				t.unstick(p.Nonce)
				if len(p.Txs) > 1 {
					t.log.Info("chain: replaced transaction mined", "op", p.Op, "nonce", p.Nonce, "tx", tx.Hash().Hex(), "version", slices.Index(p.Txs, tx)+1, "of", len(p.Txs))
				}
				if r.Status != types.ReceiptStatusSuccessful {
					return r, t.failure(ctx, p.Op, tx, r)
				}
				return r, nil
			}
			if err != nil {
				lastErr = err
			}
			if nerr == nil && spentAt.IsZero() {
				spentAt = time.Now() // receipts may lag the state a moment
			}
		}
		switch {
		case !spentAt.IsZero() && time.Since(spentAt) >= replaceAfter:
			t.forget(p)
			t.unstick(p.Nonce)
			hs := make([]string, len(p.Txs))
			for i, tx := range p.Txs {
				hs[i] = tx.Hash().Hex()
			}
			return nil, fmt.Errorf("chain: %s: nonce %d (transactions %s): %w", p.Op, p.Nonce, strings.Join(hs, ", "), ErrNonceTaken)
		case spentAt.IsZero() && time.Since(sentAt) >= replaceAfter:
			if err := t.replace(ctx, p); err != nil && ctx.Err() == nil {
				if errors.Is(err, ErrFeeCeiling) {
					t.markStuck(p)
				}
				return nil, err
			}
			sentAt = time.Now()
		}
		if retry.Sleep(ctx, min(pollBackoff.Delay(round), replaceAfter)) != nil {
			return nil, waitError(p.Op, p.Latest(), ctx.Err(), lastErr)
		}
	}
}

// markStuck remembers that p reached the fee ceiling unmined: until it is
// mined, new sends fail rather than queue behind it.
func (t *Transactor) markStuck(p *PendingTx) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stuck == nil {
		t.stuck = map[uint64]*PendingTx{}
	}
	t.stuck[p.Nonce] = p
}

func (t *Transactor) unstick(nonce uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.stuck, nonce)
}

// checkStuck runs before a send: a transaction stuck at the fee ceiling
// is replaced again at once (the ceiling or the market may have moved) and
// waited for. While one stays unmined, the send fails (ErrFeeCeiling)
// instead of queueing a transaction behind it, which could not be mined
// first and might redo its work.
func (t *Transactor) checkStuck(ctx context.Context, op string) error {
	t.mu.Lock()
	stuck := make([]*PendingTx, 0, len(t.stuck))
	for _, p := range t.stuck {
		stuck = append(stuck, p)
	}
	t.stuck = nil // claimed: concurrent sends do not work on the same records
	t.mu.Unlock()
	slices.SortFunc(stuck, func(a, b *PendingTx) int { return cmpU64(a.Nonce, b.Nonce) })
	for i, p := range stuck {
		r, err := t.awaitFrom(ctx, p, true)
		if r != nil || err == nil || errors.Is(err, ErrNonceTaken) {
			continue // the nonce is spent: the way is free
		}
		for _, q := range stuck[i:] {
			t.markStuck(q)
		}
		return fmt.Errorf("chain: %s: not sent: nonce %d (%s) is still pending: %w", op, p.Nonce, p.Op, err)
	}
	return nil
}

// minedVersion looks for a receipt of any version of p, newest first.
func (t *Transactor) minedVersion(ctx context.Context, p *PendingTx) (*types.Transaction, *types.Receipt, error) {
	var lastErr error
	for i := len(p.Txs) - 1; i >= 0; i-- {
		r, err := t.backend.TransactionReceipt(ctx, p.Txs[i].Hash())
		if err == nil && r != nil {
			return p.Txs[i], r, nil
		}
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			lastErr = err
		}
	}
	return nil, nil, lastErr
}

// replace signs, stores and broadcasts a fee-bumped version of p. It
// fails with ErrFeeCeiling when the bump would cross the ceiling.
func (t *Transactor) replace(ctx context.Context, p *PendingTx) error {
	next, err := t.bumped(ctx, p)
	if err != nil {
		return err
	}
	p.Txs = append(p.Txs, next)
	if err := t.persist(ctx, p); err != nil {
		p.Txs = p.Txs[:len(p.Txs)-1]
		return err
	}
	old := p.Txs[len(p.Txs)-2]
	t.log.Warn("chain: transaction not mined in time, replacing with higher fees", "op", p.Op, "nonce", p.Nonce,
		"old", old.Hash().Hex(), "new", next.Hash().Hex(), "fee_cap", next.GasFeeCap(), "tip", next.GasTipCap())
	if err := t.broadcast(ctx, next); err != nil {
		// "nonce too low": an older version was mined; the next round
		// finds its receipt. Anything else: the next round tries again.
		t.log.Warn("chain: broadcast replacement", "op", p.Op, "nonce", p.Nonce, "tx", next.Hash().Hex(), "err", err)
	}
	return nil
}

// bumped returns p's newest version re-signed with fees raised by at least
// PriceBumpPercent (both tip and fee cap, as txpools require), and up to
// what the chain asks for now, within the ceiling.
func (t *Transactor) bumped(ctx context.Context, p *PendingTx) (*types.Transaction, error) {
	pct := max(t.PriceBumpPercent, MinPriceBumpPercent)
	old := p.Latest()
	ceiling := t.MaxFeeCap
	if ceiling == nil {
		ceiling = new(big.Int).Mul(p.Txs[0].GasFeeCap(), big.NewInt(DefaultFeeCeilingMultiplier))
	}
	overCeiling := func(fee *big.Int) error {
		return fmt.Errorf("chain: %s: nonce %d not mined; a replacement would pay %s wei/gas, above the ceiling %s (last version %s stays pending): %w",
			p.Op, p.Nonce, fee, ceiling, old.Hash().Hex(), ErrFeeCeiling)
	}
	var inner types.TxData
	switch old.Type() {
	case types.DynamicFeeTxType:
		tip, feeCap := bump(old.GasTipCap(), pct), bump(old.GasFeeCap(), pct)
		if feeCap.Cmp(ceiling) > 0 {
			return nil, overCeiling(feeCap)
		}
		// Catch up with the market when it moved further than the bump.
		if st, err := t.backend.SuggestGasTipCap(ctx); err == nil && st.Cmp(tip) > 0 {
			tip = st
		}
		if h, err := t.backend.HeaderByNumber(ctx, nil); err == nil && h.BaseFee != nil {
			if want := new(big.Int).Add(new(big.Int).Mul(h.BaseFee, big.NewInt(2)), tip); want.Cmp(feeCap) > 0 {
				feeCap = want
			}
		}
		feeCap = bigMin(feeCap, ceiling)
		tip = bigMin(tip, feeCap)
		inner = &types.DynamicFeeTx{ChainID: t.chainID, Nonce: old.Nonce(), GasTipCap: tip, GasFeeCap: feeCap, Gas: old.Gas(), To: old.To(), Value: old.Value(), Data: old.Data(), AccessList: old.AccessList()}
	case types.LegacyTxType:
		price := bump(old.GasPrice(), pct)
		if price.Cmp(ceiling) > 0 {
			return nil, overCeiling(price)
		}
		if sp, err := t.backend.SuggestGasPrice(ctx); err == nil && sp.Cmp(price) > 0 {
			price = bigMin(sp, ceiling)
		}
		inner = &types.LegacyTx{Nonce: old.Nonce(), GasPrice: price, Gas: old.Gas(), To: old.To(), Value: old.Value(), Data: old.Data()}
	default:
		return nil, fmt.Errorf("chain: %s: cannot replace a type %d transaction", p.Op, old.Type())
	}
	tx, err := types.SignNewTx(t.key, t.signer, inner)
	if err != nil {
		return nil, fmt.Errorf("chain: %s: sign replacement: %w", p.Op, err)
	}
	return tx, nil
}

// bump is v raised by pct percent, rounded up, and at least v+1.
func bump(v *big.Int, pct uint64) *big.Int {
	n := new(big.Int).Mul(v, new(big.Int).SetUint64(100+pct))
	n.Add(n, big.NewInt(99))
	n.Div(n, big.NewInt(100))
	if n.Cmp(v) <= 0 {
		n.Add(v, big.NewInt(1))
	}
	return n
}

func bigMin(a, b *big.Int) *big.Int {
	if a.Cmp(b) <= 0 {
		return a
	}
	return b
}

func (t *Transactor) failure(ctx context.Context, op string, tx *types.Transaction, r *types.Receipt) error {
	msg := ethereum.CallMsg{From: t.addr, To: tx.To(), Gas: tx.Gas(), Value: tx.Value(), Data: tx.Data()}
	var at *big.Int
	if r.BlockNumber != nil && r.BlockNumber.Sign() > 0 {
		at = new(big.Int).Sub(r.BlockNumber, big.NewInt(1))
	}
	if _, err := t.backend.CallContract(ctx, msg, at); err != nil {
		var re *RevertError
		if errors.As(wrapCallError(op, err), &re) {
			return re
		}
	}
	return fmt.Errorf("chain: %s: %s (gas used %d of %d): %w", op, tx.Hash().Hex(), r.GasUsed, tx.Gas(), ErrTxFailed)
}
