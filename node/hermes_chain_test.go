package node

import (
	"log/slog"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/identity"
)

// TestHermesResumesPendingTransactionsAtStart: a settlement transaction the
// last run stored but never got mined (here: never broadcast) is sent with
// its stored nonce when the hermes starts again, and its record is dropped
// once it is mined.
func TestHermesResumesPendingTransactionsAtStart(t *testing.T) {
	ctx, dc := testDevChain(t)
	log := slog.New(slog.DiscardHandler)
	cl, err := dc.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	key := devchain.DevKey(9)
	tx, err := chain.NewTransactor(ctx, cl, key, log)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.NewClient(ctx, cl, dc.Deployment(), tx, log)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	statePath := filepath.Join(dir, "chain-state.db")
	st, err := chain.OpenStateDB(statePath)
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := cl.PendingNonceAt(ctx, tx.Address())
	if err != nil {
		t.Fatal(err)
	}
	to := devchain.DevAddress(5)
	signed, err := types.SignNewTx(key, types.LatestSignerForChainID(tx.ChainID()), &types.DynamicFeeTx{
		ChainID: tx.ChainID(), Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e11), Gas: 21000, To: &to, Value: big.NewInt(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutPending(ctx, &chain.PendingTx{From: tx.Address(), Nonce: nonce, Op: "settle consumer promise", Txs: []*types.Transaction{signed}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	h, err := StartHermes(ctx, HermesConfig{
		Chain: c, Hermes: dc.Deployment().Hermes, Operator: identity.NewKeySigner(devchain.DevKey(devchain.HermesAccount)),
		DSN: filepath.Join(dir, "hermes.db"), Log: log, CommitDelay: 7 * time.Millisecond, CPUSlots: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The operator's --hermes.commit-delay and --hermes.cpu-slots reach
	// the service (neither is its default).
	if got := h.Service.Config(); got.CommitDelay != 7*time.Millisecond || got.CPUSlots != 3 {
		t.Fatalf("service commit delay %v, cpu slots %d; want 7ms, 3", got.CommitDelay, got.CPUSlots)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := cl.TransactionReceipt(ctx, signed.Hash())
		if err == nil && r != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stored transaction was not resumed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A new send waits for the resume and takes the next nonce.
	r, err := c.Mint(ctx, to, big.NewInt(1))
	if err != nil {
		t.Fatal(err)
	}
	if mined, _, err := cl.TransactionByHash(ctx, r.TxHash); err != nil || mined.Nonce() != nonce+1 {
		t.Fatalf("send after the resume: %v (%v), want nonce %d", mined, err, nonce+1)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = chain.OpenStateDB(statePath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ps, err := st.PendingTxs(ctx, tx.Address()); err != nil || len(ps) != 0 {
		t.Fatalf("%d pending records after resume (%v), want none", len(ps), err)
	}
	if n, _ := cl.NonceAt(ctx, tx.Address(), nil); n != nonce+2 {
		t.Fatalf("account nonce %d, want %d", n, nonce+2)
	}
}
