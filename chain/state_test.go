package chain

import (
	"context"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/storage"
)

func openTestState(t testing.TB) *StateDB {
	t.Helper()
	st, err := OpenStateDB(filepath.Join(t.TempDir(), "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestStateDBRoundTrip: pending records and watcher states come back as
// stored, per sender and in nonce order, and deleting works.
func TestStateDBRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := openTestState(t)
	key := keytest.Key(t)
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	from := common.Address{1}
	sign := func(nonce uint64, fee int64) *types.Transaction {
		tx, err := types.SignNewTx(key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(fee), Gas: 21000, To: &from})
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	for _, n := range []uint64{7, 3} {
		if err := st.PutPending(ctx, &PendingTx{From: from, Nonce: n, Op: "op", Txs: []*types.Transaction{sign(n, 10), sign(n, 11)}, Created: time.Unix(1, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutPending(ctx, &PendingTx{From: common.Address{2}, Nonce: 1, Op: "other", Txs: []*types.Transaction{sign(1, 10)}}); err != nil {
		t.Fatal(err)
	}
	ps, err := st.PendingTxs(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Nonce != 3 || ps[1].Nonce != 7 || len(ps[1].Txs) != 2 || ps[1].Latest().GasFeeCap().Int64() != 11 || ps[0].Op != "op" {
		t.Fatalf("pending records %+v", ps)
	}
	if err := st.DeletePending(ctx, from, 3); err != nil {
		t.Fatal(err)
	}
	if ps, _ := st.PendingTxs(ctx, from); len(ps) != 1 || ps[0].Nonce != 7 {
		t.Fatalf("after delete %+v", ps)
	}

	if _, ok, err := st.LoadWatch(ctx, "w"); ok || err != nil {
		t.Fatalf("empty watcher state: %v %v", ok, err)
	}
	want := WatchState{Next: 9, Recent: []BlockRef{{8, common.Hash{8}}}, Logs: []types.Log{{Address: from, Topics: []common.Hash{{1}}, Data: []byte{2}, BlockNumber: 8, BlockHash: common.Hash{8}, Index: 3}}}
	if err := st.SaveWatch(ctx, "w", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := st.LoadWatch(ctx, "w")
	if err != nil || !ok || got.Next != 9 || len(got.Recent) != 1 || got.Recent[0] != want.Recent[0] || len(got.Logs) != 1 || got.Logs[0].Index != 3 || got.Logs[0].BlockHash != want.Logs[0].BlockHash {
		t.Fatalf("watcher state %+v %v %v", got, ok, err)
	}
}

// FuzzStateRecords: whatever bytes a damaged state file holds, reading it
// gives records or an error, never a panic or a record whose versions
// disagree on the nonce.
func FuzzStateRecords(f *testing.F) {
	f.Add([]byte(`{"op":"x","txs":["0x00"]}`), []byte(`{"next":1}`))
	f.Add([]byte(`{"op":"x","txs":[]}`), []byte(`{"next":1,"logs":[{}]}`))
	f.Add([]byte(`not json`), []byte(`{"recent":[{"number":"x"}]}`))
	st := openTestState(f)
	ctx := context.Background()
	from := common.Address{9}
	f.Fuzz(func(t *testing.T, pending, watch []byte) {
		if err := st.db.Update(ctx, func(tx *storage.Tx) error {
			if err := tx.Put(bucketPending, pendingKey(from, 5), pending); err != nil {
				return err
			}
			return tx.Put(bucketWatch, []byte("w"), watch)
		}); err != nil {
			t.Fatal(err)
		}
		if ps, err := st.PendingTxs(ctx, from); err == nil {
			for _, p := range ps {
				if len(p.Txs) == 0 {
					t.Fatal("record without versions accepted")
				}
				for _, tx := range p.Txs {
					if tx.Nonce() != p.Nonce {
						t.Fatalf("version nonce %d in record %d", tx.Nonce(), p.Nonce)
					}
				}
			}
		}
		_, _, _ = st.LoadWatch(ctx, "w")
	})
}
