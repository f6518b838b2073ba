package chain

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain/bindings"
)

// HermesTerms is what a provider trusts about a hermes, read from one
// block: the operator that signs its promises and its fee, with any
// announced fee change.
type HermesTerms struct {
	// Operator signs the hermes's promises (set once at registration).
	Operator common.Address
	// FeeBps is the fee in force at the block (the contract's fee()).
	FeeBps uint16
	// PendingFeeBps is the announced fee; FeeEffectiveAt when it applies
	// (zero: no change announced).
	PendingFeeBps  uint16
	FeeEffectiveAt time.Time
	// FeeNoticeDelay is how long any new fee announcement waits.
	FeeNoticeDelay time.Duration
	// BlockTime is the time of the block the terms were read at.
	BlockTime time.Time
}

// HermesTerms reads the terms of hermes at the latest block. It fails with
// ErrUnknownHermes when the Registry did not create hermes.
func (c *Client) HermesTerms(ctx context.Context, hermes common.Address) (HermesTerms, error) {
	var t HermesTerms
	head, err := c.backend.HeaderByNumber(ctx, nil)
	if err != nil {
		return t, fmt.Errorf("chain: latest block: %w", err)
	}
	o := &bind.CallOpts{Context: ctx, BlockNumber: head.Number}
	ok, err := c.registry.IsHermes(o, hermes)
	if err != nil {
		return t, wrapCallError("is hermes", err)
	}
	if !ok {
		return t, fmt.Errorf("%w: %s", ErrUnknownHermes, hermes.Hex())
	}
	h, err := bindings.NewHermes(hermes, c.backend)
	if err != nil {
		return t, fmt.Errorf("chain: bind hermes: %w", err)
	}
	var at, delay uint64
	for _, step := range []func() error{
		func() (e error) { t.Operator, e = h.Operator(o); return },
		func() (e error) { t.FeeBps, e = h.Fee(o); return },
		func() (e error) { t.PendingFeeBps, e = h.PendingFeeBps(o); return },
		func() error {
			v, e := h.FeeEffectiveAt(o)
			if e == nil {
				at = v.Uint64()
			}
			return e
		},
		func() (e error) { delay, e = h.FeeNoticeDelay(o); return },
	} {
		if err := step(); err != nil {
			return t, wrapCallError("hermes terms", err)
		}
	}
	if at != 0 {
		t.FeeEffectiveAt = time.Unix(int64(at), 0)
	}
	t.FeeNoticeDelay = time.Duration(delay) * time.Second
	t.BlockTime = time.Unix(int64(head.Time), 0)
	return t, nil
}
