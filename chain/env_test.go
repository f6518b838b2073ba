package chain

import (
	"context"
	"crypto/ecdsa"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"

	"github.com/openmyst/openmyst/chain/bindings"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/payments"
)

// autoCommit mines a block after every accepted transaction, like a dev
// chain in on-demand mode, so the client's receipt waits end.
type autoCommit struct {
	simulated.Client
	sim *simulated.Backend
	mu  sync.Mutex
}

func (b *autoCommit) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.Client.SendTransaction(ctx, tx); err != nil {
		return err
	}
	b.sim.Commit()
	return nil
}

// adjustTime moves the chain clock forward by d (mines one empty block,
// after committing whatever the pool still lists as pending).
//
// The simulated backend's AdjustTime refuses when the txpool reports pending
// transactions, and it checks without syncing the pool first: after
// SendTransaction's Commit has mined a transaction, the pool drops it from
// its pending set only when its background reset for the new head runs, so
// a transaction that is already mined (its receipt was read) can still be
// listed as pending for a moment. Commit syncs the pool (TxPool.Sync) before
// sealing, so after it the pending set is empty; b.mu keeps other
// transactions out until AdjustTime has run.
func (b *autoCommit) adjustTime(t testing.TB, d time.Duration) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sim.Commit()
	if err := b.sim.AdjustTime(d); err != nil {
		t.Fatalf("adjust time: %v", err)
	}
}

type env struct {
	t        testing.TB
	ctx      context.Context
	backend  *autoCommit
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

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

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
	deployer, txKey, opKey := mustKey(t), mustKey(t), mustKey(t)
	eth := new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))
	alloc := types.GenesisAlloc{}
	for _, k := range []*ecdsa.PrivateKey{deployer, txKey, opKey} {
		alloc[crypto.PubkeyToAddress(k.PublicKey)] = types.Account{Balance: eth}
	}
	sim := simulated.NewBackend(alloc, func(_ *node.Config, ec *ethconfig.Config) { ec.Genesis.Config = DevChainConfig() })
	t.Cleanup(func() { _ = sim.Close() })
	b := &autoCommit{Client: sim.Client(), sim: sim}

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
	s := identity.NewKeySigner(mustKey(e.t))
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
