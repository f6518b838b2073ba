package chain

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// ProviderPayout is what Hermes.settlePromise moves for one provider
// promise: Paid leaves the hermes's channel accounting (the channel's
// settled amount rises by it), HermesFee stays with the hermes,
// TransactorFee goes to the caller, RegistrationFee (up to the provider's
// deferred registration fee) to the transactor that registered it, and
// Beneficiary to the provider's beneficiary (Paid - HermesFee -
// TransactorFee - RegistrationFee).
type ProviderPayout struct {
	Paid, HermesFee, TransactorFee, RegistrationFee, Beneficiary *big.Int
}

// ProviderPayoutOf is the Go twin of Hermes.settlePromise's arithmetic: it
// returns what settling p on the provider channel ch of the hermes in state
// h pays, or the error the contract reverts with (wrapping the same
// sentinel a RevertError would: ErrNotActive, ErrFeeAboveAmount,
// ErrAmountTooLarge, ErrNothingToSettle, ErrZeroChannelLimit,
// ErrInsufficientHermesBalance), checked in the contract's order. It does
// not check what needs more than the two states: the operator's signature
// (payments.Promise.Verify), the preimage, and the provider's registration.
// h.FeeBps is the fee at the block h was read at; an announced change that
// takes effect before the settlement is mined changes the hermes fee.
// TestProviderChannelMatchesModel and FuzzProviderPayout check it against
// the contract on the simulated chain.
func ProviderPayoutOf(p payments.Promise, ch ProviderChannelState, h HermesState) (ProviderPayout, error) {
	var out ProviderPayout
	if p.Amount == nil || p.Fee == nil || p.Amount.Sign() < 0 || p.Fee.Sign() < 0 {
		return out, fmt.Errorf("chain: provider payout: promise without a non-negative amount and fee: %w", money.ErrBadAmount)
	}
	if h.Status == HermesUninitialized {
		return out, fmt.Errorf("chain: provider payout: hermes %s: %w", h.Address.Hex(), ErrNotActive)
	}
	if p.Fee.Cmp(p.Amount) > 0 {
		return out, fmt.Errorf("chain: provider payout: fee %s above amount %s: %w", p.Fee, p.Amount, ErrFeeAboveAmount)
	}
	if p.Amount.Cmp(money.MaxSettleable) > 0 {
		return out, fmt.Errorf("chain: provider payout: amount %s: %w", p.Amount, ErrAmountTooLarge)
	}
	settled := orZero(ch.Settled)
	if p.Amount.Cmp(settled) <= 0 {
		return out, fmt.Errorf("chain: provider payout: amount %s, settled %s: %w", p.Amount, settled, ErrNothingToSettle)
	}
	paid := new(big.Int).Sub(p.Amount, settled)
	limit := orZero(ch.Stake)
	if minStake := orZero(h.MinChannelStake); limit.Cmp(minStake) < 0 {
		limit = minStake
	}
	if limit.Sign() == 0 {
		return out, fmt.Errorf("chain: provider payout: %w", ErrZeroChannelLimit)
	}
	if paid.Cmp(limit) > 0 {
		paid.Set(limit)
	}
	avail := new(big.Int).Sub(orZero(h.Balance), orZero(h.TotalProviderStake))
	if avail.Sign() < 0 {
		avail.SetInt64(0)
	}
	if paid.Cmp(avail) > 0 {
		paid.Set(avail)
	}
	if paid.Sign() == 0 {
		return out, fmt.Errorf("chain: provider payout: available %s: %w", avail, ErrInsufficientHermesBalance)
	}
	hermesFee := new(big.Int)
	if h.Status != HermesPenalty {
		hermesFee.Mul(paid, big.NewInt(int64(h.FeeBps))).Quo(hermesFee, big.NewInt(10000))
	}
	if fees := new(big.Int).Add(p.Fee, hermesFee); fees.Cmp(paid) > 0 {
		return out, fmt.Errorf("chain: provider payout: fees %s (transactor %s + hermes %s) above the %s paid: %w", fees, p.Fee, hermesFee, paid, ErrFeeAboveAmount)
	}
	out.Paid, out.HermesFee, out.TransactorFee = paid, hermesFee, new(big.Int).Set(p.Fee)
	out.Beneficiary = new(big.Int).Sub(paid, hermesFee)
	out.Beneficiary.Sub(out.Beneficiary, p.Fee)
	// Registry.settlementPayee: up to the beneficiary's share of the
	// provider's deferred registration fee goes to its creditor.
	out.RegistrationFee = new(big.Int)
	if d := orZero(ch.RegistrationDebt); d.Sign() > 0 {
		out.RegistrationFee.Set(d)
		if out.RegistrationFee.Cmp(out.Beneficiary) > 0 {
			out.RegistrationFee.Set(out.Beneficiary)
		}
		out.Beneficiary.Sub(out.Beneficiary, out.RegistrationFee)
	}
	return out, nil
}

// ProviderPayoutNow reads provider's channel in hermes and the hermes's
// state and returns ProviderPayoutOf for p: what settling p would pay if
// mined at the latest block.
func (c *Client) ProviderPayoutNow(ctx context.Context, hermes, provider common.Address, p payments.Promise) (ProviderPayout, error) {
	ch, err := c.ProviderChannel(ctx, hermes, provider)
	if err != nil {
		return ProviderPayout{}, err
	}
	h, err := c.HermesState(ctx, hermes)
	if err != nil {
		return ProviderPayout{}, err
	}
	return ProviderPayoutOf(p, ch, h)
}
