package chain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

func TestRegisterWithChannelToppedUpFirst(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	s := keytest.Signer(t)
	ch := ChannelAddress(e.dep.Registry, e.dep.ChannelImplementation, s.Address(), e.hermes)

	onChain, err := e.client.registry.ChannelAddress(call(e.ctx), s.Address(), e.hermes)
	if err != nil {
		t.Fatal(err)
	}
	if onChain != ch {
		t.Fatalf("registry computes channel %s, Go computes %s", onChain.Hex(), ch.Hex())
	}
	st, err := e.client.ChannelState(e.ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if st.Deployed {
		t.Fatal("channel deployed before registration")
	}
	// Top up the not-yet-existing channel with a plain token transfer.
	if _, err := e.client.Mint(e.ctx, e.client.tx.Address(), money.MYST(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.TopUp(e.ctx, ch, money.MYST(10)); err != nil {
		t.Fatal(err)
	}
	// Register with a transactor fee of 1.5 MYST paid out of the channel.
	fee, _ := money.ParseMYST("1.5")
	before := e.balance(e.client.tx.Address())
	beneficiary := common.HexToAddress("0x00000000000000000000000000000000000b0b01")
	got, _, err := e.client.RegisterIdentity(e.ctx, s, e.hermes, fee, beneficiary)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if got != ch {
		t.Fatalf("channel %s, want %s", got.Hex(), ch.Hex())
	}
	st, err = e.client.ChannelState(e.ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Deployed || st.Identity != s.Address() || st.Hermes != e.hermes {
		t.Fatalf("channel state %+v", st)
	}
	if want, _ := money.ParseMYST("8.5"); st.Balance.Cmp(want) != 0 {
		t.Fatalf("channel balance %s, want 8.5", money.FormatMYST(st.Balance))
	}
	wantBalance(t, e, e.client.tx.Address(), new(big.Int).Add(before, fee), "transactor")
	if b, _ := e.client.Beneficiary(e.ctx, s.Address()); b != beneficiary {
		t.Fatalf("beneficiary %s", b.Hex())
	}
	if ok, _ := e.client.IsRegistered(e.ctx, s.Address()); !ok {
		t.Fatal("not registered")
	}
	// Registering again is refused with a typed error.
	if _, _, err := e.client.RegisterIdentity(e.ctx, s, e.hermes, nil, common.Address{}); !errors.Is(err, ErrAlreadyRegistered) {
		t.Fatalf("second registration: %v, want ErrAlreadyRegistered", err)
	}
}

func TestRegisterRejectsForgedSignatureAndUnknownHermes(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	victim := keytest.Signer(t)
	forger := keytest.Signer(t)
	sig, _ := forger.Sign(func() []byte {
		d := RegisterDigest(e.client.chainID, e.dep.Registry, victim.Address(), e.hermes, new(big.Int), forger.Address())
		return d[:]
	}())
	_, err := e.client.send(e.ctx, "register identity", func(o *bind.TransactOpts) (*types.Transaction, error) {
		return e.client.registry.RegisterIdentity(o, victim.Address(), e.hermes, new(big.Int), forger.Address(), sig)
	})
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged registration: %v, want ErrBadSignature", err)
	}
	if _, _, err := e.client.RegisterIdentity(e.ctx, victim, common.HexToAddress("0x1234"), nil, common.Address{}); !errors.Is(err, ErrUnknownHermes) {
		t.Fatalf("unknown hermes: %v", err)
	}
	// A registration fee the (empty) channel cannot pay is refused.
	if _, _, err := e.client.RegisterIdentity(e.ctx, victim, e.hermes, money.MYST(1), common.Address{}); !errors.Is(err, ErrInsufficientBalance) {
		t.Fatalf("unfunded fee: %v, want ErrInsufficientBalance", err)
	}
}

func TestConsumerSettle(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	consumer, ch := e.registered(money.MYST(10))
	id := e.client.ChainID()
	cid := payments.ConsumerChannelID(ch)
	pre, lock := secret(1)
	hermesBefore := e.balance(e.hermes)

	// Happy path: 3 MYST with a 0.1 MYST transactor fee.
	fee, _ := money.ParseMYST("0.1")
	p := signedPromise(t, consumer, id, cid, money.MYST(3), fee, lock)
	txBefore := e.balance(e.client.tx.Address())
	if _, err := e.client.SettleConsumerPromise(e.ctx, ch, p, pre); err != nil {
		t.Fatalf("settle: %v", err)
	}
	wantBalance(t, e, e.hermes, new(big.Int).Add(hermesBefore, new(big.Int).Sub(money.MYST(3), fee)), "hermes")
	wantBalance(t, e, e.client.tx.Address(), new(big.Int).Add(txBefore, fee), "transactor")
	wantBalance(t, e, ch, money.MYST(7), "channel")

	// The same promise again: nothing above settled.
	if _, err := e.client.SettleConsumerPromise(e.ctx, ch, p, pre); !errors.Is(err, ErrNothingToSettle) {
		t.Fatalf("replay: %v, want ErrNothingToSettle", err)
	}
	var re *RevertError
	if _, err := e.client.SettleConsumerPromise(e.ctx, ch, p, pre); !errors.As(err, &re) || re.Name != "NothingToSettle" || len(re.Args) != 2 {
		t.Fatalf("revert details: %#v", err)
	}

	cases := []struct {
		name string
		p    payments.Promise
		pre  [32]byte
		want error
	}{
		{"wrong preimage", signedPromise(t, consumer, id, cid, money.MYST(4), new(big.Int), lock), [32]byte{9}, ErrBadPreimage},
		{"forged signature", signedPromise(t, keytest.Signer(t), id, cid, money.MYST(4), new(big.Int), lock), pre, ErrBadSignature},
		{"other chain id", signedPromise(t, consumer, big.NewInt(1), cid, money.MYST(4), new(big.Int), lock), pre, ErrBadSignature},
		{"other channel", signedPromise(t, consumer, id, payments.ConsumerChannelID(common.HexToAddress("0x77")), money.MYST(4), new(big.Int), lock), pre, ErrBadSignature},
		{"not above settled", signedPromise(t, consumer, id, cid, money.MYST(2), new(big.Int), lock), pre, ErrNothingToSettle},
		{"fee above amount", signedPromise(t, consumer, id, cid, money.MYST(4), money.MYST(5), lock), pre, ErrFeeAboveAmount},
		{"fee above paid part", signedPromise(t, consumer, id, cid, money.MYST(4), money.MYST(2), lock), pre, ErrFeeAboveAmount},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.SettleConsumerPromise(e.ctx, ch, tc.p, tc.pre)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Logf("error text: %v", err)
		})
	}
	// A tampered signature (high s / bad v) is refused too.
	bad := signedPromise(t, consumer, id, cid, money.MYST(4), new(big.Int), lock)
	bad.Signature[64] = 29
	if _, err := e.client.SettleConsumerPromise(e.ctx, ch, bad, pre); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("bad v: %v", err)
	}

	// Partial settle: a promise above the balance pays the whole balance;
	// the same promise settles the rest after a top-up.
	big12 := signedPromise(t, consumer, id, cid, money.MYST(12), new(big.Int), lock)
	if _, err := e.client.SettleConsumerPromise(e.ctx, ch, big12, pre); err != nil {
		t.Fatalf("partial settle: %v", err)
	}
	wantBalance(t, e, ch, new(big.Int), "channel after partial")
	st, _ := e.client.ChannelState(e.ctx, ch)
	if st.Settled.Cmp(money.MYST(10)) != 0 {
		t.Fatalf("settled %s, want 10", money.FormatMYST(st.Settled))
	}
	if _, err := e.client.SettleConsumerPromise(e.ctx, ch, big12, pre); !errors.Is(err, ErrChannelEmpty) {
		t.Fatalf("empty channel: %v", err)
	}
	if _, err := e.client.Mint(e.ctx, ch, money.MYST(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.SettleConsumerPromise(e.ctx, ch, big12, pre); err != nil {
		t.Fatalf("settle rest: %v", err)
	}
	wantBalance(t, e, ch, money.MYST(3), "channel after rest")
	wantBalance(t, e, e.hermes, new(big.Int).Add(hermesBefore, new(big.Int).Sub(money.MYST(12), fee)), "hermes total")
}

func TestProviderSettle(t *testing.T) {
	e := newEnv(t, hermesOpts{feeBps: 100, minStake: money.MYST(5), maxStake: money.MYST(100), stake: money.MYST(10)})
	id := e.client.ChainID()
	// Fund the hermes the way it is funded in production: a consumer settles.
	consumer, cch := e.registered(money.MYST(30))
	pre, lock := secret(7)
	if _, err := e.client.SettleConsumerPromise(e.ctx, cch, signedPromise(t, consumer, id, payments.ConsumerChannelID(cch), money.MYST(20), new(big.Int), lock), pre); err != nil {
		t.Fatal(err)
	}
	provider, _ := e.registered(nil)
	beneficiary := common.HexToAddress("0x00000000000000000000000000000000000be4e1")
	if _, err := e.client.SetBeneficiary(e.ctx, provider, beneficiary, e.hermes, nil); err != nil {
		t.Fatal(err)
	}
	pcid := payments.ProviderChannelID(provider.Address(), e.hermes)
	h, _ := bindings.NewHermes(e.hermes, e.backend)
	onChainID, err := h.ChannelId(call(e.ctx), provider.Address())
	if err != nil || onChainID != pcid {
		t.Fatalf("provider channel id: Go %x, contract %x (%v)", pcid, onChainID, err)
	}

	// Happy path: 2 MYST promise, 1% hermes fee, 0.01 transactor fee.
	txFee, _ := money.ParseMYST("0.01")
	p := signedPromise(t, e.operator, id, pcid, money.MYST(2), txFee, lock)
	r, err := e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), p, pre)
	if err != nil {
		t.Fatalf("provider settle: %v", err)
	}
	t.Logf("provider settle gas: %d", r.GasUsed)
	hermesFee, _ := money.ParseMYST("0.02")
	wantBalance(t, e, beneficiary, new(big.Int).Sub(new(big.Int).Sub(money.MYST(2), hermesFee), txFee), "beneficiary")

	// Rejections.
	for _, tc := range []struct {
		name string
		p    payments.Promise
		pre  [32]byte
		want error
	}{
		{"wrong preimage", signedPromise(t, e.operator, id, pcid, money.MYST(3), new(big.Int), lock), [32]byte{1}, ErrBadPreimage},
		{"signed by consumer not operator", signedPromise(t, consumer, id, pcid, money.MYST(3), new(big.Int), lock), pre, ErrBadSignature},
		{"other chain", signedPromise(t, e.operator, big.NewInt(5), pcid, money.MYST(3), new(big.Int), lock), pre, ErrBadSignature},
		{"other channel", signedPromise(t, e.operator, id, payments.ProviderChannelID(consumer.Address(), e.hermes), money.MYST(3), new(big.Int), lock), pre, ErrBadSignature},
		{"not above settled", p, pre, ErrNothingToSettle},
		{"fee above amount", signedPromise(t, e.operator, id, pcid, money.MYST(3), money.MYST(4), lock), pre, ErrFeeAboveAmount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), tc.p, tc.pre); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// Channel limit: without stake the limit is minChannelStake (5): a
	// 12 MYST promise pays 5 now, the rest in later settlements.
	p12 := signedPromise(t, e.operator, id, pcid, money.MYST(12), new(big.Int), lock)
	if _, err := e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), p12, pre); err != nil {
		t.Fatal(err)
	}
	pc, _ := e.client.ProviderChannel(e.ctx, e.hermes, provider.Address())
	if pc.Settled.Cmp(money.MYST(7)) != 0 {
		t.Fatalf("settled %s, want 7 (2 + limit 5)", money.FormatMYST(pc.Settled))
	}
	// Staking raises the limit.
	if _, err := e.client.Mint(e.ctx, e.client.tx.Address(), money.MYST(20)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.IncreaseStake(e.ctx, e.hermes, provider.Address(), money.MYST(1)); !errors.Is(err, ErrStakeOutOfRange) {
		t.Fatalf("stake below min: %v", err)
	}
	if _, err := e.client.IncreaseStake(e.ctx, e.hermes, provider.Address(), money.MYST(20)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), p12, pre); err != nil {
		t.Fatal(err)
	}
	pc, _ = e.client.ProviderChannel(e.ctx, e.hermes, provider.Address())
	if pc.Settled.Cmp(money.MYST(12)) != 0 || pc.Stake.Cmp(money.MYST(20)) != 0 {
		t.Fatalf("provider channel %+v", pc)
	}

	// Hermes balance: 10 stake + 20 collected + 20 provider stake, minus
	// payouts. Settlements never touch provider stakes; dipping into the
	// hermes stake puts it into penalty (no hermes fee, no withdrawals).
	hs, _ := e.client.HermesState(e.ctx, e.hermes)
	if hs.Status != HermesActive {
		t.Fatalf("status %v", hs.Status)
	}
	p40 := signedPromise(t, e.operator, id, pcid, money.MYST(40), new(big.Int), lock)
	if _, err := e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), p40, pre); err != nil {
		t.Fatal(err)
	}
	hs, _ = e.client.HermesState(e.ctx, e.hermes)
	if hs.Status != HermesPenalty {
		t.Fatalf("status %v after paying out of the stake, want penalty (%+v)", hs.Status, hs)
	}
	if hs.Balance.Cmp(hs.TotalProviderStake) < 0 {
		t.Fatalf("provider stakes not covered: balance %s, stakes %s", money.FormatMYST(hs.Balance), money.FormatMYST(hs.TotalProviderStake))
	}
	// In penalty no hermes fee is kept, so the next settlement drains the
	// available balance exactly down to the provider stakes, and the one
	// after that has nothing to pay from.
	if _, err := e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), p40, pre); err != nil {
		t.Fatal(err)
	}
	hs, _ = e.client.HermesState(e.ctx, e.hermes)
	if hs.Balance.Cmp(hs.TotalProviderStake) != 0 {
		t.Fatalf("balance %s after draining, want exactly the provider stakes %s", money.FormatMYST(hs.Balance), money.FormatMYST(hs.TotalProviderStake))
	}
	if _, err := e.client.SettleProviderPromise(e.ctx, e.hermes, provider.Address(), p40, pre); !errors.Is(err, ErrInsufficientHermesBalance) {
		t.Fatalf("no available balance: %v", err)
	}
	if _, err := e.client.ResolvePenalty(e.ctx, e.hermes); !errors.Is(err, ErrStillUndercovered) {
		t.Fatalf("resolve while undercovered: %v", err)
	}
	if _, err := e.client.Mint(e.ctx, e.hermes, money.MYST(50)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ResolvePenalty(e.ctx, e.hermes); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	hs, _ = e.client.HermesState(e.ctx, e.hermes)
	if hs.Status != HermesActive {
		t.Fatalf("status %v after resolve", hs.Status)
	}

	// Stake back, signed by the provider; replay refused.
	before := e.balance(beneficiary)
	if _, err := e.client.DecreaseStake(e.ctx, provider, e.hermes, money.MYST(20), nil); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, e, beneficiary, new(big.Int).Add(before, money.MYST(20)), "beneficiary after unstake")
}

func TestProviderSettleNeedsRegistrationAndLimit(t *testing.T) {
	e := newEnv(t, hermesOpts{minStake: new(big.Int), maxStake: money.MYST(10)})
	id := e.client.ChainID()
	pre, lock := secret(3)
	stranger := keytest.Signer(t)
	p := signedPromise(t, e.operator, id, payments.ProviderChannelID(stranger.Address(), e.hermes), money.MYST(1), new(big.Int), lock)
	// minChannelStake 0 and no stake: no limit at all.
	if _, err := e.client.SettleProviderPromise(e.ctx, e.hermes, stranger.Address(), p, pre); !errors.Is(err, ErrZeroChannelLimit) {
		t.Fatalf("zero limit: %v", err)
	}
	if _, err := e.client.IncreaseStake(e.ctx, e.hermes, stranger.Address(), money.MYST(1)); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("stake for unregistered provider: %v", err)
	}
}

func TestBeneficiaryChangeReplay(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	s, _ := e.registered(nil)
	b1 := common.HexToAddress("0x00000000000000000000000000000000000000b1")
	b2 := common.HexToAddress("0x00000000000000000000000000000000000000b2")
	// Sign nonce 1 for b1, submit it, then change to b2 (nonce 2), then replay nonce 1.
	d := BeneficiaryDigest(e.client.chainID, e.dep.Registry, s.Address(), b1, e.hermes, new(big.Int), 1)
	sig1, _ := s.Sign(d[:])
	submit := func(b common.Address, n int64, sig []byte) error {
		_, err := e.client.send(e.ctx, "set beneficiary", func(o *bind.TransactOpts) (*types.Transaction, error) {
			return e.client.registry.SetBeneficiary(o, s.Address(), b, e.hermes, new(big.Int), big.NewInt(n), sig)
		})
		return err
	}
	if err := submit(b1, 1, sig1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.SetBeneficiary(e.ctx, s, b2, e.hermes, nil); err != nil {
		t.Fatal(err)
	}
	if err := submit(b1, 1, sig1); !errors.Is(err, ErrBadNonce) {
		t.Fatalf("replay: %v, want ErrBadNonce", err)
	}
	// Same message with a skipped-ahead nonce but the old signature: bad signature.
	if err := submit(b1, 3, sig1); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("nonce swap: %v, want ErrBadSignature", err)
	}
	if got, _ := e.client.Beneficiary(e.ctx, s.Address()); got != b2 {
		t.Fatalf("beneficiary %s, want %s", got.Hex(), b2.Hex())
	}
	// Contract digest equals the Go digest.
	cd, err := e.client.registry.BeneficiaryDigest(call(e.ctx), s.Address(), b1, e.hermes, new(big.Int), big.NewInt(1))
	if err != nil || cd != d {
		t.Fatalf("beneficiary digest: contract %x Go %x (%v)", cd, d, err)
	}
}

func TestUnilateralExit(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	consumer, ch := e.registered(money.MYST(10))
	beneficiary := common.HexToAddress("0x00000000000000000000000000000000000c0501")
	if _, err := e.client.SetBeneficiary(e.ctx, consumer, beneficiary, e.hermes, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.FinalizeExit(e.ctx, ch); !errors.Is(err, ErrExitNotRequested) {
		t.Fatalf("finalize without request: %v", err)
	}
	if _, err := e.client.RequestExit(e.ctx, consumer, ch, nil); err != nil {
		t.Fatalf("request exit: %v", err)
	}
	if _, err := e.client.RequestExit(e.ctx, consumer, ch, nil); !errors.Is(err, ErrExitAlreadyRequested) {
		t.Fatalf("second request: %v", err)
	}
	if _, err := e.client.FinalizeExit(e.ctx, ch); !errors.Is(err, ErrExitLocked) {
		t.Fatalf("early finalize: %v, want ErrExitLocked", err)
	}
	// Inside the timelock the hermes settles an outstanding promise.
	e.backend.AdjustTime(t, testExitTimelock/2)
	pre, lock := secret(5)
	hermesBefore := e.balance(e.hermes)
	p := signedPromise(t, consumer, e.client.ChainID(), payments.ConsumerChannelID(ch), money.MYST(4), new(big.Int), lock)
	if _, err := e.client.SettleConsumerPromise(e.ctx, ch, p, pre); err != nil {
		t.Fatalf("settle in timelock: %v", err)
	}
	wantBalance(t, e, e.hermes, new(big.Int).Add(hermesBefore, money.MYST(4)), "hermes")
	if _, err := e.client.FinalizeExit(e.ctx, ch); !errors.Is(err, ErrExitLocked) {
		t.Fatalf("finalize mid-timelock: %v", err)
	}
	e.backend.AdjustTime(t, testExitTimelock)
	if _, err := e.client.FinalizeExit(e.ctx, ch); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	wantBalance(t, e, beneficiary, money.MYST(6), "consumer beneficiary")
	wantBalance(t, e, ch, new(big.Int), "channel")
	st, _ := e.client.ChannelState(e.ctx, ch)
	if !st.ExitUnlockAt.IsZero() || st.Nonce != 1 {
		t.Fatalf("channel after exit %+v", st)
	}
}

func TestCooperativeWithdraw(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	consumer, ch := e.registered(money.MYST(10))
	to := common.HexToAddress("0x00000000000000000000000000000000000c0502")
	// Without the hermes's co-signature (consumer signs twice): refused.
	if _, err := e.client.Withdraw(e.ctx, ch, money.MYST(4), to, nil, consumer, consumer); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("withdraw without hermes: %v", err)
	}
	if _, err := e.client.Withdraw(e.ctx, ch, money.MYST(4), to, nil, consumer, e.operator); err != nil {
		t.Fatalf("withdraw: %v", err)
	}
	wantBalance(t, e, to, money.MYST(4), "withdrawn")
	wantBalance(t, e, ch, money.MYST(6), "channel")
	cd, err := bindings.NewConsumerChannel(ch, e.backend)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cd.WithdrawDigest(call(e.ctx), money.MYST(4), to, big.NewInt(3), big.NewInt(1))
	if want := WithdrawDigest(e.client.ChainID(), ch, money.MYST(4), to, big.NewInt(3), 1); err != nil || got != want {
		t.Fatalf("withdraw digest contract %x, Go %x (%v)", got, want, err)
	}
	got, err = cd.RequestExitDigest(call(e.ctx), big.NewInt(5), big.NewInt(2))
	if want := RequestExitDigest(e.client.ChainID(), ch, big.NewInt(5), 2); err != nil || got != want {
		t.Fatalf("exit digest contract %x, Go %x (%v)", got, want, err)
	}
}

func TestHermesFeeChangeIsDelayed(t *testing.T) {
	e := newEnv(t, hermesOpts{feeBps: 100})
	h, _ := bindings.NewHermes(e.hermes, e.backend)
	if _, err := e.opTx.Send(e.ctx, "set fee", func(o *bind.TransactOpts) (*types.Transaction, error) { return h.SetFee(o, 2001) }); !errors.Is(err, ErrFeeTooHigh) {
		t.Fatalf("fee above cap: %v", err)
	}
	if _, err := e.client.send(e.ctx, "set fee", func(o *bind.TransactOpts) (*types.Transaction, error) { return h.SetFee(o, 500) }); !errors.Is(err, ErrNotOperator) {
		t.Fatalf("fee by stranger: %v", err)
	}
	if _, err := e.opTx.Send(e.ctx, "set fee", func(o *bind.TransactOpts) (*types.Transaction, error) { return h.SetFee(o, 500) }); err != nil {
		t.Fatal(err)
	}
	if f, _ := h.Fee(call(e.ctx)); f != 100 {
		t.Fatalf("fee %d right after the change, want the old 100", f)
	}
	e.backend.AdjustTime(t, testFeeDelay+time.Second)
	if f, _ := h.Fee(call(e.ctx)); f != 500 {
		t.Fatalf("fee %d after the notice delay, want 500", f)
	}
}

func TestConcurrentTransactionsShareNonces(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	dst := common.HexToAddress("0x00000000000000000000000000000000000d0d01")
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.client.Mint(e.ctx, dst, money.MYST(1))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent mint: %v", err)
		}
	}
	wantBalance(t, e, dst, money.MYST(16), "destination")
}

func TestClientRejectsWrongChainAndStaleDeployment(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	d := e.dep
	d.ChainID++
	if _, err := NewClient(e.ctx, e.backend, d, nil, nil); err == nil {
		t.Fatal("client accepted a deployment for another chain")
	}
	d = e.dep
	d.Registry = common.HexToAddress("0xdead")
	if _, err := NewClient(e.ctx, e.backend, d, nil, nil); err == nil {
		t.Fatal("client accepted a registry without code")
	}
	ro, err := NewClient(e.ctx, e.backend, e.dep, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Mint(e.ctx, d.Token, money.MYST(1)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only write: %v", err)
	}
}

func TestProductionTokenHasNoFaucet(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	dtx := e.client.tx
	dep, err := Deploy(e.ctx, dtx, DeployParams{Faucet: false, Supply: money.MYST(1000)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(e.ctx, e.backend, dep, dtx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mint(e.ctx, dtx.Address(), money.MYST(1)); !errors.Is(err, ErrFaucetDisabled) {
		t.Fatalf("mint on production token: %v", err)
	}
	if b, _ := c.TokenBalance(e.ctx, dtx.Address()); b.Cmp(money.MYST(1000)) != 0 {
		t.Fatalf("holder balance %s", money.FormatMYST(b))
	}
}

// TestMinedRevertIsDecoded sends a failing settlement with a fixed gas
// limit (so no estimation catches it): the transaction is mined with
// status 0 and the client recovers the reason by replaying the call.
func TestMinedRevertIsDecoded(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	consumer, ch := e.registered(money.MYST(5))
	_, lock := secret(2)
	p := signedPromise(t, consumer, e.client.ChainID(), payments.ConsumerChannelID(ch), money.MYST(1), new(big.Int), lock)
	cb, err := bindings.NewConsumerChannel(ch, e.backend)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.client.send(e.ctx, "settle with fixed gas", func(o *bind.TransactOpts) (*types.Transaction, error) {
		o.GasLimit = 200_000
		return cb.SettlePromise(o, p.Amount, p.Fee, p.Hashlock, [32]byte{0xee}, p.Signature)
	})
	if !errors.Is(err, ErrBadPreimage) {
		t.Fatalf("mined revert: %v, want ErrBadPreimage", err)
	}
	if r == nil || r.Status != types.ReceiptStatusFailed {
		t.Fatalf("receipt %+v, want a mined failed transaction", r)
	}
	// The nonce manager continues after a mined failure.
	if _, err := e.client.Mint(e.ctx, ch, money.MYST(1)); err != nil {
		t.Fatalf("next transaction: %v", err)
	}
}

// TestReceiptWaitTimesOut: a transaction that is never mined (no block is
// produced) makes Send fail after ReceiptTimeout with a clear error.
func TestReceiptWaitTimesOut(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	noMining := e.backend.Client // the simulated client without auto-commit
	tx, err := NewTransactor(e.ctx, noMining, mustKeyWithETH(t, e), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tx.ReceiptTimeout = 300 * time.Millisecond
	c, err := NewClient(e.ctx, noMining, e.dep, tx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Mint(e.ctx, tx.Address(), money.MYST(1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unmined transaction: %v, want a deadline error", err)
	}
}

// mustKeyWithETH returns a new key funded with some ETH by the env's transactor.
func mustKeyWithETH(t *testing.T, e *env) *ecdsa.PrivateKey {
	t.Helper()
	k := keytest.Key(t)
	to := crypto.PubkeyToAddress(k.PublicKey)
	_, err := e.client.tx.Send(e.ctx, "fund", func(o *bind.TransactOpts) (*types.Transaction, error) {
		nonce := o.Nonce.Uint64()
		tip := big.NewInt(1e9)
		head, err := e.backend.HeaderByNumber(e.ctx, nil)
		if err != nil {
			return nil, err
		}
		fee := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
		raw := types.NewTx(&types.DynamicFeeTx{ChainID: e.client.ChainID(), Nonce: nonce, GasTipCap: tip, GasFeeCap: fee, Gas: 21000, To: &to, Value: big.NewInt(1e18)})
		signed, err := o.Signer(o.From, raw)
		if err != nil {
			return nil, err
		}
		return signed, e.backend.SendTransaction(e.ctx, signed)
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestTransactorsSharingAKeyResync: two Transactors for one key (two
// processes using the same account) keep working: a stale nonce is
// detected and resynced.
func TestTransactorsSharingAKeyResync(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	key := mustKeyWithETH(t, e)
	q := slog.New(slog.DiscardHandler)
	t1, err := NewTransactor(e.ctx, e.backend, key, q)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := NewTransactor(e.ctx, e.backend, key, q)
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := NewClient(e.ctx, e.backend, e.dep, t1, q)
	c2, _ := NewClient(e.ctx, e.backend, e.dep, t2, q)
	dst := common.HexToAddress("0x00000000000000000000000000000000000d0d02")
	for i, c := range []*Client{c1, c2, c1, c2, c2, c1} {
		if _, err := c.Mint(e.ctx, dst, money.MYST(1)); err != nil {
			t.Fatalf("mint %d: %v", i, err)
		}
	}
	wantBalance(t, e, dst, money.MYST(6), "destination")
}

// TestTransactorFeesOnSignedMessages: every identity-signed call can pay
// the submitting transactor a fee the identity signed for.
func TestTransactorFeesOnSignedMessages(t *testing.T) {
	e := newEnv(t, hermesOpts{minStake: money.MYST(1), maxStake: money.MYST(100)})
	consumer, ch := e.registered(money.MYST(10))
	txAddr := e.client.tx.Address()
	paid := func(what string, want *big.Int, f func() error) {
		t.Helper()
		before := e.balance(txAddr)
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := new(big.Int).Sub(e.balance(txAddr), before); got.Cmp(want) != 0 {
			t.Fatalf("%s: transactor got %s MYST, want %s", what, money.FormatMYST(got), money.FormatMYST(want))
		}
	}
	ben := common.HexToAddress("0x00000000000000000000000000000000000fee01")
	paid("set beneficiary", money.MYST(1), func() error {
		_, err := e.client.SetBeneficiary(e.ctx, consumer, ben, e.hermes, money.MYST(1))
		return err
	})
	// A fee from a channel that does not exist (identity has no channel with that hermes).
	if _, err := e.client.SetBeneficiary(e.ctx, consumer, ben, common.HexToAddress("0x1234"), money.MYST(1)); !errors.Is(err, ErrUnknownHermes) {
		t.Fatalf("fee from a missing channel: %v", err)
	}
	// A fee the channel cannot pay.
	if _, err := e.client.SetBeneficiary(e.ctx, consumer, ben, e.hermes, money.MYST(100)); !errors.Is(err, ErrInsufficientBalance) {
		t.Fatalf("fee above the channel balance: %v", err)
	}
	paid("cooperative withdraw", money.MYST(1), func() error {
		_, err := e.client.Withdraw(e.ctx, ch, money.MYST(2), ben, money.MYST(1), consumer, e.operator)
		return err
	})
	half, _ := money.ParseMYST("0.5")
	paid("request exit", half, func() error {
		_, err := e.client.RequestExit(e.ctx, consumer, ch, half)
		return err
	})
	rest, _ := money.ParseMYST("5.5") // 10 - 1 - 2 - 1 - 0.5
	wantBalance(t, e, ch, rest, "channel")

	// Provider stake returned with a fee for the transactor.
	provider, _ := e.registered(nil)
	if _, err := e.client.SetBeneficiary(e.ctx, provider, ben, e.hermes, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Mint(e.ctx, txAddr, money.MYST(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.IncreaseStake(e.ctx, e.hermes, provider.Address(), money.MYST(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DecreaseStake(e.ctx, provider, e.hermes, money.MYST(2), money.MYST(3)); !errors.Is(err, ErrFeeAboveAmount) {
		t.Fatalf("fee above the stake returned: %v", err)
	}
	benBefore := e.balance(ben)
	paid("decrease stake", half, func() error {
		_, err := e.client.DecreaseStake(e.ctx, provider, e.hermes, money.MYST(2), half)
		return err
	})
	onehalf, _ := money.ParseMYST("1.5")
	wantBalance(t, e, ben, new(big.Int).Add(benBefore, onehalf), "provider beneficiary")
}

// TestOpenChannelWithSecondHermes: a registered identity opens a channel
// with another hermes (pre-funded, paying a fee); it cannot do so twice,
// nor before registering.
func TestOpenChannelWithSecondHermes(t *testing.T) {
	e := newEnv(t, hermesOpts{})
	op2 := mustKeyWithETH(t, e)
	op2Tx, err := NewTransactor(e.ctx, e.backend, op2, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Mint(e.ctx, op2Tx.Address(), money.MYST(10)); err != nil {
		t.Fatal(err)
	}
	h2, err := RegisterHermes(e.ctx, op2Tx, e.dep, HermesParams{Stake: money.MYST(10), MinChannelStake: money.MYST(1), MaxChannelStake: money.MYST(10)})
	if err != nil {
		t.Fatal(err)
	}
	stranger := keytest.Signer(t)
	if _, _, err := e.client.OpenChannel(e.ctx, stranger, h2, nil); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("open before registering: %v", err)
	}
	consumer, ch1 := e.registered(nil)
	ch2 := e.client.ChannelAddress(consumer.Address(), h2)
	if ch2 == ch1 {
		t.Fatal("same channel address for two hermeses")
	}
	if _, err := e.client.Mint(e.ctx, ch2, money.MYST(3)); err != nil {
		t.Fatal(err)
	}
	got, _, err := e.client.OpenChannel(e.ctx, consumer, h2, money.MYST(1))
	if err != nil || got != ch2 {
		t.Fatalf("open channel %s (%v), want %s", got.Hex(), err, ch2.Hex())
	}
	st, err := e.client.ChannelState(e.ctx, ch2)
	if err != nil || !st.Deployed || st.Hermes != h2 || st.Balance.Cmp(money.MYST(2)) != 0 {
		t.Fatalf("second channel %+v (%v)", st, err)
	}
	if _, _, err := e.client.OpenChannel(e.ctx, consumer, h2, nil); !errors.Is(err, ErrChannelExists) {
		t.Fatalf("second open: %v", err)
	}
	if _, _, err := e.client.OpenChannel(e.ctx, consumer, e.hermes, nil); !errors.Is(err, ErrChannelExists) {
		t.Fatalf("open the registration channel again: %v", err)
	}
	d, err := e.client.registry.OpenChannelDigest(call(e.ctx), consumer.Address(), h2, money.MYST(1))
	if want := OpenChannelDigest(e.client.ChainID(), e.dep.Registry, consumer.Address(), h2, money.MYST(1)); err != nil || d != want {
		t.Fatalf("open channel digest contract %x Go %x (%v)", d, want, err)
	}
}
