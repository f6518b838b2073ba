package chain

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"

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
	unit := MYST(1)
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
	e := newEnv(t, hermesOpts{feeBps: feeBps, minStake: MYST(3), maxStake: MYST(50), stake: MYST(20)})
	provider, _ := e.registered(nil)
	id := e.client.ChainID()
	pcid := payments.ProviderChannelID(provider.Address(), e.hermes)
	rng := rand.New(rand.NewPCG(3, 4))
	unit := MYST(1)
	var (
		settled                      = new(big.Int)
		stake                        = new(big.Int)
		hermesStake                  = MYST(20)
		hermesBal                    = MYST(20)
		benGot                       = new(big.Int)
		penalty                      bool
		limitHits, balanceHits, oks  int
		penaltyEntered, penaltyLefts int
	)
	if _, err := e.client.Mint(e.ctx, e.client.tx.Address(), MYST(1000)); err != nil {
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
			inRange := ns.Cmp(MYST(3)) >= 0 && ns.Cmp(MYST(50)) <= 0
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
		pre, lock := secret(byte(step))
		p := signedPromise(t, e.operator, id, pcid, amount, new(big.Int), lock)
		_, err := e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), p, pre)

		var want error
		paid := new(big.Int)
		limit := new(big.Int).Set(stake)
		if limit.Cmp(MYST(3)) < 0 {
			limit = MYST(3)
		}
		avail := new(big.Int).Sub(hermesBal, stake)
		if avail.Sign() < 0 {
			avail.SetInt64(0)
		}
		switch {
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
			if paid.Sign() == 0 {
				want = ErrInsufficientHermesBalance
			}
		}
		if want != nil {
			if !errors.Is(err, want) {
				t.Fatalf("step %d: got %v, want %v", step, err, want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: amount %s settled %s stake %s bal %s: %v", step, amount, settled, stake, hermesBal, err)
		}
		oks++
		hfee := new(big.Int)
		if !penalty {
			hfee.Mul(paid, big.NewInt(feeBps)).Quo(hfee, big.NewInt(10000))
		}
		settled.Add(settled, paid)
		out := new(big.Int).Sub(paid, hfee)
		hermesBal.Sub(hermesBal, out)
		benGot.Add(benGot, out)
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
	t.Logf("settlements %d, limit hits %d, balance hits %d, penalties %d entered %d left", oks, limitHits, balanceHits, penaltyEntered, penaltyLefts)
	if oks == 0 || limitHits == 0 || balanceHits == 0 {
		t.Fatal("random walk did not exercise limits; change the seed")
	}
}
