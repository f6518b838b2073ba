package chain

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// TestConsumerChannelMatchesModel drives a consumer channel through a
// random sequence of top-ups and settlements and checks every outcome
// (paid amount, error, balances) against a plain Go model of the rules in
// docs/protocol.md.
func TestConsumerChannelMatchesModel(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	consumer, ch := e.registered(nil)
	id := e.client.ChainID()
	cid := payments.ConsumerChannelID(ch)
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		settled, balance = new(big.Int), new(big.Int)
		hermesGot        = new(big.Int)
		txGot            = new(big.Int)
	)
	hermes0 := e.balance(e.hermes)
	tx0 := e.balance(e.client.tx.Address())
	unit := money.MYST(1)
	for step := range 40 {
		if rng.IntN(3) == 0 {
			amt := new(big.Int).Mul(big.NewInt(int64(rng.IntN(5)+1)), unit)
			if _, err := e.client.Mint(e.ctx, ch, amt); err != nil {
				t.Fatal(err)
			}
			balance.Add(balance, amt)
			continue
		}
		// Cumulative amount around the settled total (sometimes below).
		amount := new(big.Int).Add(settled, big.NewInt(int64(rng.IntN(8)-2)))
		if rng.IntN(2) == 0 {
			amount.Add(settled, new(big.Int).Mul(big.NewInt(int64(rng.IntN(6))), unit))
		}
		if amount.Sign() < 0 {
			amount.SetInt64(0)
		}
		fee := new(big.Int)
		if rng.IntN(3) == 0 {
			fee.Mul(big.NewInt(int64(rng.IntN(3))), unit)
		}
		pre, lock := secret(byte(step))
		p := signedPromise(t, consumer, id, cid, amount, fee, lock)
		_, err := e.client.SettleConsumerPromise(e.ctx, ch, p, pre)

		// Model.
		var want error
		paid := new(big.Int)
		switch {
		case fee.Cmp(amount) > 0:
			want = ErrFeeAboveAmount
		case amount.Cmp(settled) <= 0:
			want = ErrNothingToSettle
		case balance.Sign() == 0:
			want = ErrChannelEmpty
		default:
			paid.Sub(amount, settled)
			if paid.Cmp(balance) > 0 {
				paid.Set(balance)
			}
			if fee.Cmp(paid) > 0 {
				want = ErrFeeAboveAmount
			}
		}
		if want != nil {
			if !errors.Is(err, want) {
				t.Fatalf("step %d (amount %s fee %s settled %s balance %s): got %v, want %v", step, amount, fee, settled, balance, err, want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d (amount %s fee %s settled %s balance %s): %v", step, amount, fee, settled, balance, err)
		}
		settled.Add(settled, paid)
		balance.Sub(balance, paid)
		hermesGot.Add(hermesGot, new(big.Int).Sub(paid, fee))
		txGot.Add(txGot, fee)
		st, err := e.client.ChannelState(e.ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		if st.Settled.Cmp(settled) != 0 || st.Balance.Cmp(balance) != 0 {
			t.Fatalf("step %d: chain settled %s balance %s, model %s %s", step, st.Settled, st.Balance, settled, balance)
		}
	}
	wantBalance(t, e, e.hermes, new(big.Int).Add(hermes0, hermesGot), "hermes")
	wantBalance(t, e, e.client.tx.Address(), new(big.Int).Add(tx0, txGot), "transactor")
	if settled.Sign() == 0 {
		t.Fatal("the random walk never settled anything; change the seed")
	}
}

// TestProviderChannelMatchesModel does the same for provider settlement in
// a hermes: channel limit, available balance, hermes fee, penalty.
func TestProviderChannelMatchesModel(t *testing.T) {
	const feeBps = 250
	e := newEnv(t, hermesOpts{feeBps: feeBps, minStake: money.MYST(3), maxStake: money.MYST(50), stake: money.MYST(20)})
	provider, _ := e.registered(nil)
	id := e.client.ChainID()
	pcid := payments.ProviderChannelID(provider.Address(), e.hermes)
	rng := rand.New(rand.NewPCG(3, 4))
	unit := money.MYST(1)
	var (
		settled                      = new(big.Int)
		stake                        = new(big.Int)
		hermesStake                  = money.MYST(20)
		hermesBal                    = money.MYST(20)
		benGot                       = new(big.Int)
		penalty                      bool
		limitHits, balanceHits, oks  int
		penaltyEntered, penaltyLefts int
		feeRefusals, paidFees        int
	)
	if _, err := e.client.Mint(e.ctx, e.client.tx.Address(), money.MYST(1000)); err != nil {
		t.Fatal(err)
	}
	for step := range 60 {
		switch rng.IntN(6) {
		case 0: // hermes collects more
			amt := new(big.Int).Mul(big.NewInt(int64(rng.IntN(10)+1)), unit)
			if _, err := e.client.Mint(e.ctx, e.hermes, amt); err != nil {
				t.Fatal(err)
			}
			hermesBal.Add(hermesBal, amt)
			continue
		case 1: // provider stakes more (within range) or tries to resolve the penalty
			if penalty {
				_, err := e.client.ResolvePenalty(e.ctx, e.hermes)
				covered := hermesBal.Cmp(new(big.Int).Add(hermesStake, stake)) >= 0
				if covered != (err == nil) {
					t.Fatalf("step %d: resolve penalty covered=%v err=%v", step, covered, err)
				}
				if covered {
					penalty = false
					penaltyLefts++
				}
				continue
			}
			amt := new(big.Int).Mul(big.NewInt(int64(rng.IntN(8)+1)), unit)
			ns := new(big.Int).Add(stake, amt)
			_, err := e.client.IncreaseStake(e.ctx, e.hermes, provider.Address(), amt)
			inRange := ns.Cmp(money.MYST(3)) >= 0 && ns.Cmp(money.MYST(50)) <= 0
			if inRange != (err == nil) {
				t.Fatalf("step %d: stake %s in range %v, err %v", step, ns, inRange, err)
			}
			if inRange {
				stake.Set(ns)
				hermesBal.Add(hermesBal, amt)
			}
			continue
		}
		amount := new(big.Int).Add(settled, new(big.Int).Mul(big.NewInt(int64(rng.IntN(30)-3)), unit))
		if amount.Sign() < 0 {
			amount.SetInt64(0)
		}
		// A transactor fee: none, small, about what the settlement pays
		// (so fees exceed it once the hermes fee is added), or above the
		// amount.
		fee := new(big.Int)
		switch rng.IntN(5) {
		case 1:
			fee.Quo(unit, big.NewInt(10))
		case 2:
			fee.Sub(amount, settled)
			if fee.Sign() < 0 {
				fee.SetInt64(0)
			}
			fee.Sub(fee, big.NewInt(int64(rng.IntN(3))))
			if fee.Sign() < 0 {
				fee.SetInt64(0)
			}
		case 3:
			fee.Add(amount, big.NewInt(1))
		}
		pre, lock := secret(byte(step))
		p := signedPromise(t, e.operator, id, pcid, amount, fee, lock)

		// Go's verdict from the chain's state, as a provider computes it
		// before sending (chain.ProviderPayoutNow), and the independent
		// bookkeeping of this test must agree with each other and with the
		// contract.
		goPay, goErr := e.client.ProviderPayoutNow(e.ctx, e.hermes, provider.Address(), p)
		_, err := e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), p, pre)

		var want error
		paid := new(big.Int)
		limit := new(big.Int).Set(stake)
		if limit.Cmp(money.MYST(3)) < 0 {
			limit = money.MYST(3)
		}
		avail := new(big.Int).Sub(hermesBal, stake)
		if avail.Sign() < 0 {
			avail.SetInt64(0)
		}
		hfee := new(big.Int)
		switch {
		case fee.Cmp(amount) > 0:
			want = ErrFeeAboveAmount
		case amount.Cmp(settled) <= 0:
			want = ErrNothingToSettle
		default:
			paid.Sub(amount, settled)
			if paid.Cmp(limit) > 0 {
				paid.Set(limit)
				limitHits++
			}
			if paid.Cmp(avail) > 0 {
				paid.Set(avail)
				balanceHits++
			}
			if !penalty {
				hfee.Mul(paid, big.NewInt(feeBps)).Quo(hfee, big.NewInt(10000))
			}
			switch {
			case paid.Sign() == 0:
				want = ErrInsufficientHermesBalance
			case new(big.Int).Add(fee, hfee).Cmp(paid) > 0:
				want = ErrFeeAboveAmount
				feeRefusals++
			}
		}
		if (goErr == nil) != (err == nil) || (want != nil && (!errors.Is(goErr, want) || !errors.Is(err, want))) {
			t.Fatalf("step %d: amount %s fee %s settled %s stake %s bal %s: chain %v, Go %v, model %v", step, amount, fee, settled, stake, hermesBal, err, goErr, want)
		}
		if want != nil {
			continue
		}
		if err != nil {
			t.Fatalf("step %d: amount %s settled %s stake %s bal %s: %v", step, amount, settled, stake, hermesBal, err)
		}
		if goPay.Paid.Cmp(paid) != 0 || goPay.HermesFee.Cmp(hfee) != 0 || goPay.TransactorFee.Cmp(fee) != 0 {
			t.Fatalf("step %d: Go payout %+v, model paid %s hermes fee %s fee %s", step, goPay, paid, hfee, fee)
		}
		oks++
		settled.Add(settled, paid)
		out := new(big.Int).Sub(paid, hfee)
		hermesBal.Sub(hermesBal, out)
		benGot.Add(benGot, new(big.Int).Sub(out, fee))
		if fee.Sign() > 0 {
			paidFees++
		}
		if !penalty && hermesBal.Cmp(new(big.Int).Add(hermesStake, stake)) < 0 {
			penalty = true
			penaltyEntered++
		}
		hs, err := e.client.HermesState(e.ctx, e.hermes)
		if err != nil {
			t.Fatal(err)
		}
		if hs.Balance.Cmp(hermesBal) != 0 || (hs.Status == HermesPenalty) != penalty {
			t.Fatalf("step %d: chain balance %s status %v, model %s penalty %v", step, hs.Balance, hs.Status, hermesBal, penalty)
		}
		if hs.Balance.Cmp(hs.TotalProviderStake) < 0 {
			t.Fatalf("step %d: provider stakes not covered", step)
		}
	}
	wantBalance(t, e, provider.Address(), benGot, "provider beneficiary")
	t.Logf("settlements %d (%d with a transactor fee), limit hits %d, balance hits %d, fees above the payout %d, penalties %d entered %d left",
		oks, paidFees, limitHits, balanceHits, feeRefusals, penaltyEntered, penaltyLefts)
	if oks == 0 || limitHits == 0 || balanceHits == 0 || feeRefusals == 0 || paidFees == 0 {
		t.Fatal("random walk did not exercise limits; change the seed")
	}
}

// FuzzProviderPayout drives one hermes's provider channel with fuzzed
// settlements (amount relative to what is settled, transactor fee, stake
// and hermes balance changes) and checks that chain.ProviderPayoutNow, the
// Go verdict a provider computes before sending, agrees with the contract
// on every outcome: the same refusal, or the same payout (the channel's
// settled amount and the beneficiary's balance move by exactly what Go
// said). The chain state carries over between inputs, so later
// settlements (above a non-zero settled amount, near the limits) are
// covered.
func FuzzProviderPayout(f *testing.F) {
	e := newEnv(f, hermesOpts{feeBps: 1500, minStake: money.MYST(2), maxStake: money.MYST(40), stake: money.MYST(20)})
	provider, _ := e.registered(nil)
	pcid := payments.ProviderChannelID(provider.Address(), e.hermes)
	if _, err := e.client.Mint(e.ctx, e.client.tx.Address(), money.MYST(100000)); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		delta, fee int64
		stake      uint8
		mint       uint8
	}{
		{3, 0, 0, 0}, {1, 0, 0, 0}, {-1, 0, 0, 0}, {0, 0, 0, 0}, {5, 1, 0, 0},
		{2, 2, 0, 0}, {2, 3, 0, 0}, {50, 0, 3, 0}, {1000, 7, 0, 50}, {4, 4, 0, 0},
		{1, -1, 0, 0}, {30, 29, 0, 9},
	} {
		f.Add(seed.delta, seed.fee, seed.stake, seed.mint)
	}
	step := byte(0)
	unit := new(big.Int).Quo(money.MYST(1), big.NewInt(4))
	f.Fuzz(func(t *testing.T, delta, fee int64, stake, mint uint8) {
		ctx := e.ctx
		step++
		if mint > 0 {
			if _, err := e.client.Mint(ctx, e.hermes, new(big.Int).Mul(big.NewInt(int64(mint)), unit)); err != nil {
				t.Fatal(err)
			}
		}
		if stake > 0 {
			// Refused outside [min, max] stake: fine, the state stays.
			_, _ = e.client.IncreaseStake(ctx, e.hermes, provider.Address(), new(big.Int).Mul(big.NewInt(int64(stake)), money.MYST(1)))
		}
		before, err := e.client.ProviderChannel(ctx, e.hermes, provider.Address())
		if err != nil {
			t.Fatal(err)
		}
		amount := new(big.Int).Add(before.Settled, new(big.Int).Mul(big.NewInt(delta%1_000_000), unit))
		if amount.Sign() < 0 {
			amount.SetInt64(0)
		}
		// fee < 0 means "the whole increment minus |fee| wei": fees at the
		// edge of what the payout can carry.
		txFee := big.NewInt(fee % 1_000_000)
		if fee < 0 {
			txFee.Sub(amount, before.Settled)
			txFee.Add(txFee, big.NewInt(fee%1_000))
			if txFee.Sign() < 0 {
				txFee.SetInt64(0)
			}
		} else {
			txFee.Mul(txFee, unit)
		}
		pre, lock := secret(step)
		p := signedPromise(t, e.operator, e.client.ChainID(), pcid, amount, txFee, lock)
		goPay, goErr := e.client.ProviderPayoutNow(ctx, e.hermes, provider.Address(), p)
		ben0, err := e.client.TokenBalance(ctx, provider.Address())
		if err != nil {
			t.Fatal(err)
		}
		_, chainErr := e.client.SettleProviderPromise(ctx, e.hermes, provider.Address(), p, pre)
		if (goErr == nil) != (chainErr == nil) {
			t.Fatalf("amount %s fee %s settled %s: Go %v, chain %v", amount, txFee, before.Settled, goErr, chainErr)
		}
		if chainErr != nil {
			for _, s := range []error{ErrFeeAboveAmount, ErrNothingToSettle, ErrInsufficientHermesBalance, ErrZeroChannelLimit, ErrAmountTooLarge, ErrNotActive} {
				if errors.Is(chainErr, s) != errors.Is(goErr, s) {
					t.Fatalf("amount %s fee %s: chain refused with %v, Go with %v", amount, txFee, chainErr, goErr)
				}
			}
			return
		}
		after, err := e.client.ProviderChannel(ctx, e.hermes, provider.Address())
		if err != nil {
			t.Fatal(err)
		}
		ben1, err := e.client.TokenBalance(ctx, provider.Address())
		if err != nil {
			t.Fatal(err)
		}
		if got := new(big.Int).Sub(after.Settled, before.Settled); got.Cmp(goPay.Paid) != 0 {
			t.Fatalf("channel paid %s, Go said %s", got, goPay.Paid)
		}
		if got := new(big.Int).Sub(ben1, ben0); got.Cmp(goPay.Beneficiary) != 0 {
			t.Fatalf("beneficiary got %s, Go said %s", got, goPay.Beneficiary)
		}
	})
}

// TestProviderPayoutOfRefusesLikeTheContract pins the cases a check on the
// promise alone gets wrong: after a first settlement, the fees must fit in
// what this settlement pays, not in the cumulative amount.
func TestProviderPayoutOfRefusesLikeTheContract(t *testing.T) {
	h := HermesState{Status: HermesActive, FeeBps: 2000, MinChannelStake: big.NewInt(1000), Balance: big.NewInt(10_000), TotalProviderStake: new(big.Int)}
	ch := ProviderChannelState{Settled: big.NewInt(990), Stake: new(big.Int)}
	p := payments.Promise{Amount: big.NewInt(1000), Fee: big.NewInt(20)}
	if _, err := ProviderPayoutOf(p, ch, h); !errors.Is(err, ErrFeeAboveAmount) {
		t.Fatalf("fee 20 on a settlement paying 10: %v, want ErrFeeAboveAmount", err)
	}
	p.Fee = big.NewInt(8) // 8 + 20% of 10 = 10: exactly what is paid
	got, err := ProviderPayoutOf(p, ch, h)
	if err != nil || got.Paid.Int64() != 10 || got.HermesFee.Int64() != 2 || got.Beneficiary.Int64() != 0 {
		t.Fatalf("payout %+v %v, want paid 10, hermes fee 2, beneficiary 0", got, err)
	}
	h.Status = HermesPenalty // no hermes fee in penalty
	if got, err := ProviderPayoutOf(p, ch, h); err != nil || got.HermesFee.Sign() != 0 || got.Beneficiary.Int64() != 2 {
		t.Fatalf("penalty payout %+v %v", got, err)
	}
	h.Status = HermesActive
	h.Balance = big.NewInt(0)
	if _, err := ProviderPayoutOf(p, ch, h); !errors.Is(err, ErrInsufficientHermesBalance) {
		t.Fatalf("empty hermes: %v", err)
	}
	h.Balance, h.MinChannelStake = big.NewInt(10_000), new(big.Int)
	if _, err := ProviderPayoutOf(p, ch, h); !errors.Is(err, ErrZeroChannelLimit) {
		t.Fatalf("no stake and no minimum: %v", err)
	}
	if _, err := ProviderPayoutOf(payments.Promise{Amount: big.NewInt(990), Fee: new(big.Int)}, ch, h); !errors.Is(err, ErrNothingToSettle) {
		t.Fatalf("amount at settled: %v", err)
	}
}
