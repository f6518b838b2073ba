package chain

import (
	"fmt"
	"math/big"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// Gas targets from the chain issue.
const (
	targetRegisterGas       = 200_000
	targetProviderSettleGas = 80_000
)

// gasRun performs every metered operation once with fresh identities and
// returns gas used per operation, plus a plain MYST transfer as baseline.
func gasRun(t testing.TB, e *env, round int) map[string]uint64 {
	g := map[string]uint64{}
	rec := func(name string, r *types.Receipt, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g[name] = r.GasUsed
	}
	id := e.client.ChainID()
	// Baseline: an ERC-20 transfer between two accounts that both hold MYST.
	b := common.BigToAddress(big.NewInt(int64(0xba5e0000 + round)))
	if _, err := e.client.Mint(e.ctx, b, money.MYST(1)); err != nil {
		t.Fatal(err)
	}
	r, err := e.client.Transfer(e.ctx, b, money.MYST(1))
	rec("baseline: MYST transfer", r, err)

	consumer := keytest.Signer(t)
	ch := e.client.ChannelAddress(consumer.Address(), e.hermes)
	r, err = e.client.TopUp(e.ctx, ch, money.MYST(20))
	rec("top-up (first, channel not yet deployed)", r, err)
	_, r, err = e.client.RegisterIdentity(e.ctx, consumer, e.hermes, money.MYST(1), common.Address{})
	rec("register consumer (with 1 MYST transactor fee)", r, err)
	r, err = e.client.TopUp(e.ctx, ch, money.MYST(5))
	rec("top-up (again)", r, err)
	provider := keytest.Signer(t)
	_, r, err = e.client.RegisterIdentity(e.ctx, provider, e.hermes, nil, common.Address{})
	rec("register provider (no fee)", r, err)

	pre, lock := secret(byte(round))
	cp := signedPromise(t, consumer, id, payments.ConsumerChannelID(ch), money.MYST(10), new(big.Int), lock)
	r, err = e.client.SettleConsumerPromise(e.ctx, ch, cp, pre)
	rec("consumer settle (first)", r, err)
	cp = signedPromise(t, consumer, id, payments.ConsumerChannelID(ch), money.MYST(12), new(big.Int), lock)
	r, err = e.client.SettleConsumerPromise(e.ctx, ch, cp, pre)
	rec("consumer settle (later)", r, err)

	pcid := payments.ProviderChannelID(provider.Address(), e.hermes)
	pp := signedPromise(t, e.operator, id, pcid, money.MYST(1), new(big.Int), lock)
	r, err = e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), pp, pre)
	rec("provider settle (first: new channel, new beneficiary balance)", r, err)
	pp = signedPromise(t, e.operator, id, pcid, money.MYST(2), new(big.Int), lock)
	r, err = e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), pp, pre)
	rec("provider settle (later)", r, err)
	pp = signedPromise(t, e.operator, id, pcid, money.MYST(3), big.NewInt(1e15), lock)
	r, err = e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), pp, pre)
	rec("provider settle (later, with transactor fee)", r, err)

	r, err = e.client.Withdraw(e.ctx, ch, money.MYST(1), consumer.Address(), nil, consumer, e.operator)
	rec("exit: cooperative withdraw", r, err)
	r, err = e.client.RequestExit(e.ctx, consumer, ch, nil)
	rec("exit: request (unilateral)", r, err)
	e.backend.AdjustTime(t, testExitTimelock+1)
	r, err = e.client.FinalizeExit(e.ctx, ch)
	rec("exit: finalize", r, err)
	return g
}

// BenchmarkGas reports the gas of every chain operation (averaged over
// b.N rounds with fresh identities) as metrics and prints a table with the
// ratio to a plain MYST transfer measured in the same run.
//
//	go test -run XXX -bench Gas -benchtime 3x ./chain/
func BenchmarkGas(b *testing.B) {
	e := newEnv(b, hermesOpts{feeBps: 100})
	if _, err := e.client.Mint(e.ctx, e.client.tx.Address(), money.MYST(1_000_000)); err != nil {
		b.Fatal(err)
	}
	if _, err := e.client.Mint(e.ctx, e.hermes, money.MYST(1000)); err != nil {
		b.Fatal(err)
	}
	sum := map[string]uint64{}
	rounds := 0
	for b.Loop() {
		for k, v := range gasRun(b, e, rounds) {
			sum[k] += v
		}
		rounds++
	}
	names := make([]string, 0, len(sum))
	for k := range sum {
		names = append(names, k)
	}
	sort.Strings(names)
	base := float64(sum["baseline: MYST transfer"]) / float64(rounds)
	var out strings.Builder
	fmt.Fprintf(&out, "\n| operation | gas | x MYST transfer |\n|---|---|---|\n")
	for _, k := range names {
		avg := float64(sum[k]) / float64(rounds)
		fmt.Fprintf(&out, "| %s | %.0f | %.2f |\n", k, avg, avg/base)
		b.ReportMetric(avg, "gas/"+strings.NewReplacer(" ", "_", ":", "", "(", "", ")", "", ",", "").Replace(k))
	}
	fmt.Fprint(os.Stdout, out.String())
}

// TestGasTargets keeps registration and repeat provider settlement within
// the targets (deterministic gas, so this cannot flake).
func TestGasTargets(t *testing.T) {
	e := newEnv(t, hermesOpts{feeBps: 100})
	if _, err := e.client.Mint(e.ctx, e.client.tx.Address(), money.MYST(1000)); err != nil {
		t.Fatal(err)
	}
	g := gasRun(t, e, 0)
	for _, k := range []string{"register consumer (with 1 MYST transactor fee)", "register provider (no fee)"} {
		if g[k] > targetRegisterGas {
			t.Errorf("%s: %d gas, target %d", k, g[k], targetRegisterGas)
		}
	}
	for _, k := range []string{"provider settle (later)", "provider settle (later, with transactor fee)"} {
		if g[k] > targetProviderSettleGas {
			t.Errorf("%s: %d gas, target %d", k, g[k], targetProviderSettleGas)
		}
	}
}
