package chain_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/money"
)

// deployEnv is a dev chain and an account deploying to it, with the
// files a deploy keeps: its pending transactions and its progress.
type deployEnv struct {
	ctx      context.Context
	dc       *devchain.Chain
	eth      *ethclient.Client
	key      *ecdsa.PrivateKey
	from     common.Address
	nonce    uint64 // the deployer's nonce when the test began
	head     uint64
	pending  string
	progress string
	params   chain.DeployParams
}

// newDeployEnv starts a dev chain mining every period (0: one block per
// transaction).
func newDeployEnv(t *testing.T, period time.Duration) *deployEnv {
	t.Helper()
	ctx := t.Context()
	e := &deployEnv{ctx: ctx, dc: devchaintest.Start(ctx, t, devchain.Config{Period: period, Log: quietLog()}), key: devchain.DevKey(5)}
	e.from = crypto.PubkeyToAddress(e.key.PublicKey)
	dir := t.TempDir()
	e.pending, e.progress = filepath.Join(dir, "pending.db"), filepath.Join(dir, "deployment.json.progress")
	e.params = chain.DeployParams{Supply: money.MYST(1000), MinHermesStake: money.MYST(10), ExitTimelock: time.Hour, FeeNoticeDelay: time.Hour}
	var err error
	if e.eth, err = ethclient.DialContext(ctx, e.dc.URL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.eth.Close)
	if e.nonce, err = e.eth.NonceAt(ctx, e.from, nil); err != nil {
		t.Fatal(err)
	}
	if e.head, err = e.eth.BlockNumber(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// transactor is the deployer sending through rpc, its pending
// transactions in the file at pending (as `myst chain deploy` keeps them).
func (e *deployEnv) transactor(t *testing.T, rpc, pending string) *chain.Transactor {
	t.Helper()
	eth, err := ethclient.DialContext(e.ctx, rpc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eth.Close)
	tx, err := chain.NewTransactor(e.ctx, eth, e.key, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	tx.SetPendingLock(chain.PendingFileLock(pending, nil))
	return tx
}

// interruptPending runs a deploy through an RPC that never mines and
// stops it once its first transaction is pending, which it returns.
func (e *deployEnv) interruptPending(t *testing.T) *types.Transaction {
	t.Helper()
	proxy := devchaintest.NewSwallowRPC(t, e.dc.URL())
	cctx, kill := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := chain.DeployResumable(cctx, e.transactor(t, proxy.URL, e.pending), e.params, e.progress, nil)
		done <- err
	}()
	first := proxy.Swallowed(e.ctx, t, done)
	kill()
	if err := <-done; err == nil {
		t.Fatal("deploy finished without its transactions being mined")
	}
	p, ok, err := chain.LoadDeployProgress(e.progress)
	if err != nil || !ok || len(p.Steps) != 1 || p.Steps[0].Mined || p.Steps[0].Nonce != first.Nonce() || p.Steps[0].Tx != first.Hash() {
		t.Fatalf("progress after the interruption: %+v (%v, %v), want the token step sent as %s", p, ok, err, first.Hash().Hex())
	}
	return first
}

// wantOneSet checks that the deployer sent exactly two transactions since
// the test began, the token and the registry creations under the next two
// nonces, that dep names them, and that first (if set) is the token's.
func (e *deployEnv) wantOneSet(t *testing.T, dep chain.Deployment, first common.Hash) {
	t.Helper()
	sent := devchaintest.SentSince(e.ctx, t, e.eth, e.from, e.head)
	if len(sent) != 2 || sent[0].Nonce() != e.nonce || sent[1].Nonce() != e.nonce+1 || sent[0].To() != nil || sent[1].To() != nil {
		t.Fatalf("deployer sent %d transactions since the test began, want the 2 creations under nonces %d and %d", len(sent), e.nonce, e.nonce+1)
	}
	if first != (common.Hash{}) && sent[0].Hash() != first {
		t.Fatalf("token created by %s, want the interrupted run's %s under the same nonce", sent[0].Hash().Hex(), first.Hex())
	}
	if dep.Token != crypto.CreateAddress(e.from, e.nonce) || dep.Registry != crypto.CreateAddress(e.from, e.nonce+1) {
		t.Fatalf("deployment token %s registry %s, want the contracts of nonces %d and %d", dep.Token.Hex(), dep.Registry.Hex(), e.nonce, e.nonce+1)
	}
	if err := dep.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := e.eth.TransactionReceipt(e.ctx, sent[1].Hash())
	if err != nil || dep.DeployBlock != r.BlockNumber.Uint64() {
		t.Fatalf("deploy block %d, registry mined in %v (%v)", dep.DeployBlock, r, err)
	}
}

// wantComplete checks the end of a deploy: the progress file says done,
// no pending transaction is left, and a rerun sends nothing.
func (e *deployEnv) wantComplete(t *testing.T, dep chain.Deployment) {
	t.Helper()
	if p, ok, err := chain.LoadDeployProgress(e.progress); err != nil || !ok || !p.Done() {
		t.Fatalf("progress %+v (%v, %v), want done", p, ok, err)
	}
	st, err := chain.LockStateDB(e.ctx, e.pending)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := st.PendingTxs(e.ctx, e.from)
	st.Close()
	if err != nil || len(ps) != 0 {
		t.Fatalf("%d pending records left (%v)", len(ps), err)
	}
	again, done, err := chain.DeployResumable(e.ctx, e.transactor(t, e.dc.URL(), e.pending), e.params, e.progress, nil)
	if err != nil || !done || again != dep {
		t.Fatalf("rerun of a complete deployment: done %v, %+v (%v), want done and %+v", done, again, err, dep)
	}
	if n, err := e.eth.PendingNonceAt(e.ctx, e.from); err != nil || n != e.nonce+2 {
		t.Fatalf("deployer nonce %d (%v) after the rerun, want %d: nothing sent", n, err, e.nonce+2)
	}
}

// TestDeployResumesPendingTransaction: a deploy stopped while its token
// creation is pending, the transaction reaching the chain's pool only
// then (a block every second), is run again: the rerun finishes that
// transaction under its nonce and creates the registry with the next, one
// set of contracts in all. Before deploys kept their progress and pending
// transactions the rerun created a second token with the next nonce.
func TestDeployResumesPendingTransaction(t *testing.T) {
	e := newDeployEnv(t, time.Second)
	first := e.interruptPending(t)
	if err := e.eth.SendTransaction(e.ctx, first); err != nil {
		t.Fatal(err)
	}
	dep, done, err := chain.DeployResumable(e.ctx, e.transactor(t, e.dc.URL(), e.pending), e.params, e.progress, nil)
	if err != nil || done {
		t.Fatalf("resumed deploy: done %v, %v", done, err)
	}
	e.wantOneSet(t, dep, first.Hash())
	e.wantComplete(t, dep)
}

// TestDeployContinuesAtNextStep: a deploy stopped after its token was
// mined continues with the registry; the token is not created again.
func TestDeployContinuesAtNextStep(t *testing.T) {
	e := newDeployEnv(t, 0)
	cctx, stop := context.WithCancel(e.ctx)
	var steps []string
	_, _, err := chain.DeployResumable(cctx, e.transactor(t, e.dc.URL(), e.pending), e.params, e.progress, func(s chain.DeployStep) {
		steps = append(steps, s.Name)
		stop() // between the steps
	})
	if !errors.Is(err, context.Canceled) || len(steps) != 1 || steps[0] != chain.StepToken {
		t.Fatalf("stopped deploy: steps %v, err %v", steps, err)
	}
	p, ok, err := chain.LoadDeployProgress(e.progress)
	if err != nil || !ok || len(p.Steps) != 1 || !p.Steps[0].Mined || p.Steps[0].Address != crypto.CreateAddress(e.from, e.nonce) {
		t.Fatalf("progress after the token: %+v (%v, %v)", p, ok, err)
	}
	steps = nil
	dep, done, err := chain.DeployResumable(e.ctx, e.transactor(t, e.dc.URL(), e.pending), e.params, e.progress, func(s chain.DeployStep) {
		steps = append(steps, s.Name)
	})
	if err != nil || done || len(steps) != 1 || steps[0] != chain.StepRegistry {
		t.Fatalf("continued deploy: steps %v, done %v, err %v; want the registry only", steps, done, err)
	}
	e.wantOneSet(t, dep, p.Steps[0].Tx)
	e.wantComplete(t, dep)
}

// TestDeploySendsLostStepAgain: the interrupted run's pending transaction
// is not in the rerun's pending file (it was lost before it was stored, or
// the rerun uses another data dir) and never reached the chain: the rerun
// sends the step again, under the same nonce, and ends with one set.
func TestDeploySendsLostStepAgain(t *testing.T) {
	e := newDeployEnv(t, 0)
	first := e.interruptPending(t)
	e.pending = filepath.Join(t.TempDir(), "other-pending.db")
	dep, _, err := chain.DeployResumable(e.ctx, e.transactor(t, e.dc.URL(), e.pending), e.params, e.progress, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.wantOneSet(t, dep, common.Hash{})
	_ = first
	e.wantComplete(t, dep)
}

// TestDeployRefusesOtherParameters: a progress file is continued only
// with the parameters and account it was started with.
func TestDeployRefusesOtherParameters(t *testing.T) {
	e := newDeployEnv(t, 0)
	e.interruptPending(t)
	p := e.params
	p.Supply = money.MYST(1)
	_, _, err := chain.DeployResumable(e.ctx, e.transactor(t, e.dc.URL(), e.pending), p, e.progress, nil)
	if err == nil || !strings.Contains(err.Error(), "other parameters") {
		t.Fatalf("deploy with another supply: %v, want a refusal", err)
	}
	e.key = devchain.DevKey(6)
	_, _, err = chain.DeployResumable(e.ctx, e.transactor(t, e.dc.URL(), e.pending), e.params, e.progress, nil)
	if err == nil || !strings.Contains(err.Error(), "this key is") {
		t.Fatalf("deploy from another key: %v, want a refusal", err)
	}
	if n, err := e.eth.NonceAt(e.ctx, e.from, nil); err != nil || n != e.nonce {
		t.Fatalf("deployer nonce %d (%v), want %d: nothing mined", n, err, e.nonce)
	}
}

// TestConcurrentDeploysMakeOneSet: two deploys of the same progress file
// from the same key and data dir at once: the second waits for the
// first's pending store, then finds the deployment done. One set.
func TestConcurrentDeploysMakeOneSet(t *testing.T) {
	e := newDeployEnv(t, 0)
	type result struct {
		dep  chain.Deployment
		done bool
		err  error
	}
	res := make(chan result, 2)
	for range 2 {
		tx := e.transactor(t, e.dc.URL(), e.pending)
		go func() {
			dep, done, err := chain.DeployResumable(e.ctx, tx, e.params, e.progress, nil)
			res <- result{dep, done, err}
		}()
	}
	a, b := <-res, <-res
	if a.err != nil || b.err != nil || a.dep != b.dep || a.done == b.done {
		t.Fatalf("concurrent deploys: registry %s (done %v, %v) and %s (done %v, %v), want the same, one of them done",
			a.dep.Registry.Hex(), a.done, a.err, b.dep.Registry.Hex(), b.done, b.err)
	}
	e.wantOneSet(t, a.dep, common.Hash{})
	e.wantComplete(t, a.dep)
}
