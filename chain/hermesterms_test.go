package chain

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/chain/bindings"
)

// TestHermesTerms reads a hermes's operator and fee, an announced change
// with its time, the change in force once its time has come, and refuses
// an address the Registry did not create.
func TestHermesTerms(t *testing.T) {
	e := newEnv(t, hermesOpts{feeBps: 100})
	tm, err := e.client.HermesTerms(e.ctx, e.hermes)
	if err != nil {
		t.Fatal(err)
	}
	if tm.Operator != e.operator.Address() || tm.FeeBps != 100 || !tm.FeeEffectiveAt.IsZero() || tm.FeeNoticeDelay != testFeeDelay || tm.BlockTime.IsZero() {
		t.Fatalf("terms %+v", tm)
	}
	h, _ := bindings.NewHermes(e.hermes, e.backend)
	if _, err := e.opTx.Send(e.ctx, "set fee", func(o *bind.TransactOpts) (*types.Transaction, error) { return h.SetFee(o, 500) }); err != nil {
		t.Fatal(err)
	}
	tm, err = e.client.HermesTerms(e.ctx, e.hermes)
	if err != nil || tm.FeeBps != 100 || tm.PendingFeeBps != 500 || tm.FeeEffectiveAt.Sub(tm.BlockTime) != testFeeDelay {
		t.Fatalf("announced change: %+v %v", tm, err)
	}
	e.backend.AdjustTime(t, testFeeDelay+time.Second)
	if tm, err = e.client.HermesTerms(e.ctx, e.hermes); err != nil || tm.FeeBps != 500 {
		t.Fatalf("after the notice delay: %+v %v", tm, err)
	}
	if _, err := e.client.HermesTerms(e.ctx, common.HexToAddress("0x1234")); !errors.Is(err, ErrUnknownHermes) {
		t.Fatalf("not a hermes: %v", err)
	}
}
