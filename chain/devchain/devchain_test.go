package devchain

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"go.uber.org/goleak"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
)

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func rawBlockNumber(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`))
	if err != nil {
		t.Fatalf("eth_blockNumber: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Result string `json:"result"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&r); err != nil || !strings.HasPrefix(r.Result, "0x") {
		t.Fatalf("eth_blockNumber answer %q (%v)", body, err)
	}
	return r.Result
}

func TestDevChainServesJSONRPCAndRunsTheConsumerFlow(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/ethereum/go-ethereum/metrics.(*meterTicker).loop"), goleak.IgnoreTopFunction("github.com/ethereum/go-ethereum/core.(*txIndexer).loop"), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// go-ethereum package-level workers, not owned by a chain instance.
		goleak.IgnoreTopFunction("github.com/ethereum/go-ethereum/core.(*txSenderCacher).cache"),
		goleak.IgnoreTopFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"),
		// go-ethereum's on-demand sealing goroutine finishes a block it had
		// started after the node is closed; it ends on its own.
		goleak.IgnoreAnyFunction("github.com/ethereum/go-ethereum/eth/catalyst.(*simulatedBeaconAPI).loop.func1"),
		goleak.IgnoreAnyFunction("github.com/ethereum/go-ethereum/miner.(*Miner).buildPayload.func1"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dc, err := Start(ctx, Config{Port: 0, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := dc.Close(); err != nil {
			t.Error(err)
		}
	}()
	if !strings.HasPrefix(dc.URL(), "http://127.0.0.1:") {
		t.Fatalf("endpoint %s is not loopback", dc.URL())
	}
	var info strings.Builder
	if err := dc.PrintInfo(&info, "/d.json"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rpc:        " + dc.URL(), "deployment: /d.json", DevAddress(TransactorAccount).Hex() + " CLI transactor", "hermes:     " + dc.Deployment().Hermes.Hex()} {
		if !strings.Contains(info.String(), want) {
			t.Errorf("info lacks %q:\n%s", want, info.String())
		}
	}
	before := rawBlockNumber(t, dc.URL())

	cl, err := dc.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dep := dc.Deployment()
	if err := dep.Validate(); err != nil || dep.Hermes == (dep.Token) {
		t.Fatalf("deployment %+v: %v", dep, err)
	}
	tx, err := chain.NewTransactor(ctx, cl, DevKey(TransactorAccount), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.NewClient(ctx, cl, dep, tx, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	consumer := identity.NewKeySigner(DevKey(7))
	ch := dep.ChannelAddress(consumer.Address())
	if _, err := c.Mint(ctx, ch, money.MYST(5)); err != nil {
		t.Fatalf("faucet top-up over JSON-RPC: %v", err)
	}
	if _, _, err := c.RegisterIdentity(ctx, consumer, dep.Hermes, nil, consumer.Address()); err != nil {
		t.Fatalf("register over JSON-RPC: %v", err)
	}
	st, err := c.ChannelState(ctx, ch)
	if err != nil || !st.Deployed || st.Balance.Cmp(money.MYST(5)) != 0 {
		t.Fatalf("channel %+v (%v)", st, err)
	}
	if after := rawBlockNumber(t, dc.URL()); after == before {
		t.Fatalf("block number did not move (%s) after transactions", after)
	}
}

func TestDevChainKeepsStateInDataDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	dc, err := Start(ctx, Config{DataDir: dir, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	dep := dc.Deployment()
	cl, err := dc.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, _ := chain.NewTransactor(ctx, cl, DevKey(TransactorAccount), quietLog())
	c, err := chain.NewClient(ctx, cl, dep, tx, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mint(ctx, DevAddress(5), money.MYST(3)); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := dc.Close(); err != nil {
		t.Fatal(err)
	}

	dc2, err := Start(ctx, Config{DataDir: dir, Log: quietLog()})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer dc2.Close()
	d2 := dc2.Deployment()
	d2.DeployBlock = dep.DeployBlock
	if d2 != dep {
		t.Fatalf("deployment after restart %+v, want %+v", d2, dep)
	}
	cl2, err := dc2.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	c2, err := chain.NewClient(ctx, cl2, d2, nil, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := c2.TokenBalance(ctx, DevAddress(5)); err != nil || b.Cmp(money.MYST(3)) != 0 {
		t.Fatalf("balance after restart %v (%v)", b, err)
	}
}

func TestDevChainPeriodMinesWithoutTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dc, err := Start(ctx, Config{Period: time.Second, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	first := rawBlockNumber(t, dc.URL())
	for {
		if rawBlockNumber(t, dc.URL()) != first {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("no block mined in period mode")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

const wantDeployer = "0xA0635c01B1c355d6EC3BA5f3Ee8168F9614BCFCb"

func TestDevKeysAreStable(t *testing.T) {
	if DevAddress(0) == DevAddress(1) {
		t.Fatal("dev keys collide")
	}
	// The deployer's address is pinned: the dev chain's contract addresses derive from it.
	if got := DevAddress(DeployerAccount); got != crypto.PubkeyToAddress(DevKey(DeployerAccount).PublicKey) || got.Hex() != wantDeployer {
		t.Fatalf("deployer %s, want %s", got.Hex(), wantDeployer)
	}
	if g := Genesis(); g.Config.ChainID.Uint64() != 1337 || g.Config.BogotaTime != nil || len(g.Alloc) < NumDevAccounts {
		t.Fatalf("genesis %+v", g.Config)
	}
}

// TestRunSavesTheDeployment: `myst chain dev` saves the deployment where
// it says and stops when its context ends.
func TestRunSavesTheDeployment(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dep := filepath.Join(t.TempDir(), "chain", "deployment.json")
	out := &cancelOnTry{cancel: cancel}
	if err := Run(ctx, Config{Port: 0, Log: quietLog()}, dep, out); err != nil {
		t.Fatal(err)
	}
	saved, err := chain.LoadDeployment(dep)
	if err != nil || saved.ChainID != 1337 || !strings.Contains(out.b.String(), "deployment: "+dep) {
		t.Fatalf("saved %+v, %v; said\n%s", saved, err, out.b.String())
	}
}

// cancelOnTry collects the output and cancels at its last line ("try:").
type cancelOnTry struct {
	b      strings.Builder
	cancel context.CancelFunc
}

func (w *cancelOnTry) Write(p []byte) (int, error) {
	if strings.HasPrefix(string(p), "try:") {
		w.cancel()
	}
	return w.b.Write(p)
}
