package simtest

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/openmyst/openmyst/internal/keytest"
)

// TestSendMinesAndTimeMoves: a sent transaction is mined at once, and
// AdjustTime moves the next block's time forward.
func TestSendMinesAndTimeMoves(t *testing.T) {
	ctx := context.Background()
	k := keytest.Key(t)
	b := New(t, params.AllDevChainProtocolChanges, k)
	from := crypto.PubkeyToAddress(k.PublicKey)
	if bal, err := b.BalanceAt(ctx, from, nil); err != nil || bal.Cmp(new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))) != 0 {
		t.Fatalf("funded balance %v %v, want 1000 ETH", bal, err)
	}
	chainID, err := b.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head, err := b.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tip, _ := b.SuggestGasTipCap(ctx)
	tx, err := types.SignNewTx(k, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: 0, GasTipCap: tip, GasFeeCap: new(big.Int).Add(head.BaseFee, big.NewInt(2e9)), Gas: 21000, To: &from, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if r, err := b.TransactionReceipt(ctx, tx.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receipt %+v %v: want the transaction mined at once", r, err)
	}
	before, err := b.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.AdjustTime(t, time.Hour)
	after, err := b.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.Time < before.Time+3600 {
		t.Fatalf("block time %d after AdjustTime(1h), was %d", after.Time, before.Time)
	}
}
