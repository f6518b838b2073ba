package tequilapi

import (
	"fmt"
	"io"
	"math/big"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/money"
)

// Amounts formats API amounts for people (`myst account`): in MYST, or
// in wei when Wei is set (--wei).
type Amounts struct {
	// Wei shows wei instead of MYST.
	Wei bool
}

// Of formats an API amount pair (MYST decimal, wei decimal).
func (a Amounts) Of(mystDec, wei string) string {
	if a.Wei {
		return wei + " wei"
	}
	return mystDec + " MYST"
}

// OfWei formats an amount in wei.
func (a Amounts) OfWei(v *big.Int) string { return a.Of(money.FormatMYST(v), v.String()) }

// Line is a one-line report of the transaction that did what.
func (t TxDTO) Line(what string) string {
	return fmt.Sprintf("%s: tx %s (block %d, gas %d)", what, t.TxHash, t.Block, t.GasUsed)
}

// Print writes the registration: its transaction and the channel.
func (r RegisterResponse) Print(w io.Writer) error {
	_, err := fmt.Fprintf(w, "%s\nchannel: %s\n", r.Line("registered "+r.ID), r.Channel)
	return err
}

// Print writes the top-up: its transaction, amount and the channel's
// balance after it.
func (r TopupResponse) Print(w io.Writer, a Amounts) error {
	_, err := fmt.Fprintf(w, "%s\nchannel balance: %s\n", r.Line("topped up "+r.Channel+" with "+a.Of(r.Amount, r.AmountWei)),
		a.Of(r.ChannelBalance, r.ChannelBalanceWei))
	return err
}

// Print writes the account (`myst account balance`): registration,
// beneficiary, wallet, channel with a pending exit, and the provider
// channel in the hermes.
func (d AccountDTO) Print(w io.Writer, a Amounts) error {
	fmt.Fprintf(w, "identity:     %s\nregistered:   %v\n", d.ID, d.Registered)
	if d.Registered {
		fmt.Fprintf(w, "beneficiary:  %s (%s)\n", d.Beneficiary, a.Of(d.BeneficiaryBalance, d.BeneficiaryBalanceWei))
	}
	fmt.Fprintf(w, "wallet:       %s\nhermes:       %s\n", a.Of(d.TokenBalance, d.TokenBalanceWei), d.Hermes)
	fmt.Fprintf(w, "channel:      %s (deployed: %v)\n  balance:    %s\n  settled:    %s\n", d.Channel, d.ChannelDeployed,
		a.Of(d.ChannelBalance, d.ChannelBalanceWei), a.Of(d.Settled, d.SettledWei))
	if d.ExitUnlockAt != nil {
		fmt.Fprintf(w, "  exit:       pending, can be finalized from %s\n", d.ExitUnlockAt.Format("2006-01-02 15:04:05 MST"))
	}
	_, err := fmt.Fprintf(w, "provider channel in hermes:\n  settled:    %s\n  stake:      %s\n",
		a.Of(d.ProviderSettled, d.ProviderSettledWei), a.Of(d.ProviderStake, d.ProviderStakeWei))
	return err
}

// Print writes the settlement: its transaction, what it paid to whom, and
// the settled, promised and (consumer) channel amounts after it.
func (r AccountSettleResponse) Print(w io.Writer, a Amounts) error {
	fmt.Fprintln(w, r.Line("settled "+r.Kind+" promise"))
	if r.Kind == chain.KindProvider {
		_, err := fmt.Fprintf(w, "paid %s (before hermes fee) to beneficiary %s; settled now %s of promised %s\n",
			a.Of(r.Paid, r.PaidWei), r.Beneficiary, a.Of(r.Settled, r.SettledWei), a.Of(r.Promised, r.PromisedWei))
		return err
	}
	_, err := fmt.Fprintf(w, "paid %s to hermes %s; settled now %s of promised %s; channel balance %s\n", a.Of(r.Paid, r.PaidWei), r.Hermes,
		a.Of(r.Settled, r.SettledWei), a.Of(r.Promised, r.PromisedWei), a.Of(r.ChannelBalance, r.ChannelBalanceWei))
	return err
}
