package node

import (
	"context"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/storage/storagetest"
)

func TestSettlePolicyDecide(t *testing.T) {
	pol := SettlePolicy{Threshold: big.NewInt(1000), MaxFeeShareBps: 1000, Interval: time.Minute}
	if err := pol.Validate(); err != nil {
		t.Fatal(err)
	}
	q := func(unsettled, hermesFee, txFee int64) SettleQuote {
		return SettleQuote{Amount: big.NewInt(unsettled), Unsettled: big.NewInt(unsettled), HermesFee: big.NewInt(hermesFee), TransactorFee: big.NewInt(txFee)}
	}
	for _, c := range []struct {
		q    SettleQuote
		ok   bool
		want string
	}{
		{q(0, 0, 0), false, "nothing to settle"},
		{q(999, 0, 0), false, "below the threshold"},
		{q(1000, 50, 50), true, ""}, // exactly 10%
		{q(1000, 50, 51), false, "more than 1000 bps"},
		{q(2000, 100, 100), true, ""},
		{q(2000, 0, 201), false, "more than"},
	} {
		ok, why := pol.Decide(c.q)
		if ok != c.ok || !strings.Contains(why, c.want) {
			t.Errorf("Decide(unsettled %s, fees %s) = %v %q, want %v %q", c.q.Unsettled, c.q.Fees(), ok, why, c.ok, c.want)
		}
	}
	for _, bad := range []SettlePolicy{
		{Threshold: nil, MaxFeeShareBps: 1, Interval: time.Minute},
		{Threshold: big.NewInt(0), MaxFeeShareBps: 1, Interval: time.Minute},
		{Threshold: big.NewInt(1), MaxFeeShareBps: 10001, Interval: time.Minute},
		{Threshold: big.NewInt(1), MaxFeeShareBps: 1, Interval: time.Millisecond},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("policy %+v accepted", bad)
		}
	}
}

// TestSettlementHistory: records survive a reopen, list newest first,
// count retries at the same amount and keep at most maxHistory.
func TestSettlementHistory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "provider.db")
	db := storagetest.Open(t, path)
	h, err := NewSettlementHistory(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := h.begin(ctx, SettlementRecord{Trigger: TriggerAuto, Amount: "100"})
	if err != nil || r1.Attempt != 1 || r1.Status != StatusPending {
		t.Fatalf("begin: %+v %v", r1, err)
	}
	if err := h.finish(ctx, r1, Settlement{}, errors.New("gas price too high")); err != nil {
		t.Fatal(err)
	}
	r2, err := h.begin(ctx, SettlementRecord{Trigger: TriggerAuto, Amount: "100"})
	if err != nil || r2.Attempt != 2 {
		t.Fatalf("retry: %+v %v", r2, err)
	}
	if err := h.finish(ctx, r2, Settlement{Amount: big.NewInt(100)}, nil); err != nil {
		t.Fatal(err)
	}
	r3, err := h.begin(ctx, SettlementRecord{Trigger: TriggerShutdown, Amount: "200"})
	if err != nil || r3.Attempt != 1 {
		t.Fatalf("new amount: %+v %v", r3, err)
	}
	db = storagetest.Reopen(t, db, path)
	h, err = NewSettlementHistory(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	list, err := h.List(ctx, 0)
	if err != nil || len(list) != 3 {
		t.Fatalf("list %+v %v", list, err)
	}
	if list[0].ID != r3.ID || list[0].Status != StatusPending || list[1].Status != StatusSettled || list[2].Status != StatusFailed || list[2].Error != "gas price too high" {
		t.Fatalf("list after reopen: %+v", list)
	}
	if l, _ := h.List(ctx, 1); len(l) != 1 || l[0].ID != r3.ID {
		t.Fatalf("limit 1: %+v", l)
	}
	defer func(n int) { maxHistory = n }(maxHistory)
	maxHistory = 3
	r4, err := h.begin(ctx, SettlementRecord{Trigger: TriggerManual, Amount: "300"})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := h.List(ctx, 0); len(l) != 3 || l[0].ID != r4.ID || l[2].ID != r2.ID {
		t.Fatalf("bounded to 3: %+v", l)
	}
}
