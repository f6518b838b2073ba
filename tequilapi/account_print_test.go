package tequilapi

import (
	"bytes"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestAccountPrint: the account table shows MYST or, with Wei, wei; the
// beneficiary only when registered, a pending exit with its unlock time.
func TestAccountPrint(t *testing.T) {
	d := AccountDTO{ID: "0xID", Registered: true, Beneficiary: "0xBEN", BeneficiaryBalance: "1.5", BeneficiaryBalanceWei: "1500000000000000000",
		TokenBalance: "2", TokenBalanceWei: "2000000000000000000", Hermes: "0xH", Channel: "0xC", ChannelDeployed: true,
		ChannelBalance: "3", ChannelBalanceWei: "3000000000000000000", Settled: "0", SettledWei: "0",
		ProviderSettled: "0.25", ProviderSettledWei: "250000000000000000", ProviderStake: "0", ProviderStakeWei: "0"}
	var b bytes.Buffer
	if err := d.Print(&b, Amounts{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"registered:   true", "beneficiary:  0xBEN (1.5 MYST)", "wallet:       2 MYST", "channel:      0xC (deployed: true)", "  settled:    0.25 MYST"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "exit:") {
		t.Errorf("exit shown without one pending:\n%s", b.String())
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	d.Registered, d.ExitUnlockAt = false, &at
	b.Reset()
	if err := d.Print(&b, Amounts{Wei: true}); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); strings.Contains(s, "beneficiary") || !strings.Contains(s, "3000000000000000000 wei") || !strings.Contains(s, "finalized from 2030-01-02 03:04:05 UTC") {
		t.Errorf("unregistered, wei, exit:\n%s", s)
	}
}

// TestSettlePrint: a provider settlement names the beneficiary, a
// consumer one the hermes and the channel balance.
func TestSettlePrint(t *testing.T) {
	r := AccountSettleResponse{TxDTO: TxDTO{TxHash: "0xT", Block: 7, GasUsed: 9}, Kind: "provider", Paid: "1", PaidWei: "1000000000000000000",
		Beneficiary: "0xB", Hermes: "0xH", ChannelBalance: "4", ChannelBalanceWei: "4"}
	var b bytes.Buffer
	if err := r.Print(&b, Amounts{}); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); !strings.HasPrefix(s, "settled provider promise: tx 0xT (block 7, gas 9)\n") || !strings.Contains(s, "paid 1 MYST (before hermes fee) to beneficiary 0xB") {
		t.Errorf("provider:\n%s", s)
	}
	r.Kind = "consumer"
	b.Reset()
	if err := r.Print(&b, Amounts{}); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); !strings.Contains(s, "to hermes 0xH") || !strings.Contains(s, "channel balance 4 MYST") {
		t.Errorf("consumer:\n%s", s)
	}
	if got := (Amounts{Wei: true}).OfWei(big.NewInt(5)); got != "5 wei" {
		t.Errorf("OfWei = %q", got)
	}
	if got := (Amounts{}).OfWei(big.NewInt(5e17)); got != "0.5 MYST" {
		t.Errorf("OfWei = %q", got)
	}
}

// TestIdentityLine: the address, a tab, then the flags.
func TestIdentityLine(t *testing.T) {
	for d, want := range map[IdentityDTO]string{
		{ID: "0xA"}:                                "0xA\t",
		{ID: "0xA", Default: true}:                 "0xA\tdefault",
		{ID: "0xA", Default: true, Unlocked: true}: "0xA\tdefault,unlocked",
		{ID: "0xA", Unlocked: true}:                "0xA\tunlocked",
	} {
		if got := d.Line(); got != want {
			t.Errorf("%+v: %q, want %q", d, got, want)
		}
	}
}
