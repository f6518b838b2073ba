package chain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Backend is what the client needs from a chain: ethclient.Client and the
// simulated backend's client both satisfy it.
type Backend interface {
	bind.ContractBackend
	bind.DeployBackend
	ethereum.ChainIDReader
	BalanceAt(ctx context.Context, account common.Address, blockNumber *big.Int) (*big.Int, error)
}

// DefaultReceiptTimeout bounds how long a transaction may take to be mined.
const DefaultReceiptTimeout = 2 * time.Minute

// Transactor sends transactions from one key. It hands out nonces itself
// so that concurrent calls from many goroutines do not collide, and
// resynchronises with the chain after a failed send. The key is never logged.
type Transactor struct {
	key     *ecdsa.PrivateKey
	addr    common.Address
	backend Backend
	chainID *big.Int
	log     *slog.Logger
	// ReceiptTimeout bounds the wait for each receipt (DefaultReceiptTimeout if zero).
	ReceiptTimeout time.Duration

	mu        sync.Mutex
	nextNonce uint64
	synced    bool
}

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
	return &Transactor{key: key, addr: addr, backend: backend, chainID: id, log: log.With("sender", addr.Hex())}, nil
}

// Address is the account paying for the transactions.
func (t *Transactor) Address() common.Address { return t.addr }

// ChainID is the chain id of the backend.
func (t *Transactor) ChainID() *big.Int { return new(big.Int).Set(t.chainID) }

// Backend is the chain backend transactions are sent to.
func (t *Transactor) Backend() Backend { return t.backend }

// Send runs build with transact options carrying the next nonce, then waits
// for the receipt. A revert (at gas estimation or once mined) comes back as
// a *RevertError for op.
func (t *Transactor) Send(ctx context.Context, op string, build func(*bind.TransactOpts) (*types.Transaction, error)) (*types.Receipt, error) {
	tx, err := t.send(ctx, op, build)
	if err != nil {
		return nil, err
	}
	return t.Wait(ctx, op, tx)
}

func (t *Transactor) send(ctx context.Context, op string, build func(*bind.TransactOpts) (*types.Transaction, error)) (*types.Transaction, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// A nonce clash (another process sending from the same key) resyncs
	// from the pending nonce and retries once.
	for attempt := 0; ; attempt++ {
		if !t.synced {
			n, err := t.backend.PendingNonceAt(ctx, t.addr)
			if err != nil {
				return nil, fmt.Errorf("chain: %s: read nonce: %w", op, err)
			}
			t.nextNonce, t.synced = n, true
		}
		opts, err := bind.NewKeyedTransactorWithChainID(t.key, t.chainID)
		if err != nil {
			return nil, fmt.Errorf("chain: %s: %w", op, err)
		}
		opts.Context = ctx
		opts.Nonce = new(big.Int).SetUint64(t.nextNonce)
		tx, err := build(opts)
		if err != nil {
			if isNonceError(err) {
				t.synced = false
				if attempt == 0 {
					t.log.Warn("chain: nonce clash, resyncing", "op", op, "nonce", t.nextNonce)
					continue
				}
			}
			return nil, wrapCallError(op, err)
		}
		t.nextNonce++
		t.log.Debug("chain: transaction sent", "op", op, "tx", tx.Hash().Hex(), "nonce", tx.Nonce())
		return tx, nil
	}
}

func isNonceError(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "nonce") || strings.Contains(s, "replacement transaction")
}

// Wait waits for tx's receipt (bounded by ctx and ReceiptTimeout) and turns
// a failed transaction into an error, recovering the revert reason by
// replaying the call when possible.
func (t *Transactor) Wait(ctx context.Context, op string, tx *types.Transaction) (*types.Receipt, error) {
	timeout := t.ReceiptTimeout
	if timeout == 0 {
		timeout = DefaultReceiptTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 10 * time.Millisecond
	var lastErr error
	for {
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
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("chain: %s: waiting for %s: %w (last error: %v)", op, tx.Hash().Hex(), ctx.Err(), lastErr)
			}
			return nil, fmt.Errorf("chain: %s: waiting for %s: %w", op, tx.Hash().Hex(), ctx.Err())
		case <-time.After(delay):
		}
		if delay < 500*time.Millisecond {
			delay *= 2
		}
	}
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
