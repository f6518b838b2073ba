package chain

import (
	"context"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/chain/simtest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

type env struct {
	t        testing.TB
	ctx      context.Context
	backend  *simtest.AutoCommit
	dep      Deployment
	client   *Client // transactor: the "transactor" key
	opTx     *Transactor
	operator *identity.KeySigner
	hermes   common.Address
}

const (
	testExitTimelock = time.Hour
	testFeeDelay     = 24 * time.Hour
)

type hermesOpts struct {
	feeBps   uint16
	minStake *big.Int
	maxStake *big.Int
	stake    *big.Int
}

// newEnv deploys the contracts on a fresh simulated chain (faucet on) and
// registers one hermes.
func newEnv(t testing.TB, ho hermesOpts) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	deployer, txKey, opKey := keytest.Key(t), keytest.Key(t), keytest.Key(t)
	b := simtest.New(t, DevChainConfig(), deployer, txKey, opKey)

	dtx, err := NewTransactor(ctx, b, deployer, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	dep, err := Deploy(ctx, dtx, DeployParams{Faucet: true, MinHermesStake: money.MYST(10), ExitTimelock: testExitTimelock, FeeNoticeDelay: testFeeDelay})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	opTx, err := NewTransactor(ctx, b, opKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := NewTransactor(ctx, b, txKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ctx, b, dep, tx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if ho.stake == nil {
		ho.stake = money.MYST(100)
	}
	if ho.minStake == nil {
		ho.minStake = money.MYST(50)
	}
	if ho.maxStake == nil {
		ho.maxStake = money.MYST(1000)
	}
	if _, err := c.Mint(ctx, opTx.Address(), ho.stake); err != nil {
		t.Fatalf("mint stake: %v", err)
	}
	h, err := RegisterHermes(ctx, opTx, dep, HermesParams{Stake: ho.stake, FeeBps: ho.feeBps, MinChannelStake: ho.minStake, MaxChannelStake: ho.maxStake})
	if err != nil {
		t.Fatalf("register hermes: %v", err)
	}
	dep.Hermes, dep.HermesOperator = h, opTx.Address()
	c.dep = dep
	return &env{t: t, ctx: ctx, backend: b, dep: dep, client: c, opTx: opTx, operator: identity.NewKeySigner(opKey), hermes: h}
}

// registered creates an identity, optionally pre-funds its channel, and registers it.
func (e *env) registered(fund *big.Int) (*identity.KeySigner, common.Address) {
	e.t.Helper()
	s := keytest.Signer(e.t)
	ch := e.client.ChannelAddress(s.Address(), e.hermes)
	if fund != nil && fund.Sign() > 0 {
		if _, err := e.client.Mint(e.ctx, ch, fund); err != nil {
			e.t.Fatalf("fund channel: %v", err)
		}
	}
	got, _, err := e.client.RegisterIdentity(e.ctx, s, e.hermes, nil, common.Address{})
	if err != nil {
		e.t.Fatalf("register: %v", err)
	}
	if got != ch {
		e.t.Fatalf("channel %s, want %s", got.Hex(), ch.Hex())
	}
	return s, ch
}

func (e *env) balance(a common.Address) *big.Int {
	e.t.Helper()
	b, err := e.client.TokenBalance(e.ctx, a)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func wantBalance(t *testing.T, e *env, a common.Address, want *big.Int, what string) {
	t.Helper()
	if got := e.balance(a); got.Cmp(want) != 0 {
		t.Fatalf("%s balance %s MYST, want %s MYST", what, money.FormatMYST(got), money.FormatMYST(want))
	}
}

func secret(b byte) (pre [32]byte, lock [32]byte) {
	for i := range pre {
		pre[i] = b + byte(i)
	}
	return pre, payments.Hashlock(pre[:])
}

func signedPromise(t testing.TB, s identity.Signer, chainID *big.Int, channelID [32]byte, amount, fee *big.Int, lock [32]byte) payments.Promise {
	t.Helper()
	p := payments.Promise{ChainID: chainID, ChannelID: channelID, Amount: amount, Fee: fee, Hashlock: lock}
	if err := p.Sign(s); err != nil {
		t.Fatal(err)
	}
	return p
}

func bindingsHermesFor(t testing.TB, e *env) (*bindings.Hermes, error) {
	t.Helper()
	h, err := bindings.NewHermes(e.hermes, e.backend)
	if err != nil {
		t.Fatal(err)
	}
	return h, nil
}
