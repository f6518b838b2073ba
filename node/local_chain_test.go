package node

import (
	"context"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tequilapi"
)

// testDevChain starts a quiet dev chain for the test (skipped with
// -short), closed at its end, and a context that ends then or after two
// minutes.
func testDevChain(t *testing.T) (context.Context, *devchain.Chain) {
	t.Helper()
	ctx := testenv.Long(t, "starts a dev chain", 2*time.Minute)
	return ctx, devchaintest.Start(ctx, t, devchain.Config{Log: slog.New(slog.DiscardHandler)})
}

// newDefaultIdentity creates the default identity (passphrase "pw") in
// l's keystore, with no daemon running.
func newDefaultIdentity(ctx context.Context, t *testing.T, l *Local) common.Address {
	t.Helper()
	var id common.Address
	if err := l.WithIdentities(ctx, true, func(api IdentityAPI) error {
		dto, err := api.CreateIdentity(ctx, "pw", true)
		id = common.HexToAddress(dto.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// cancelOnWrite collects what is written and cancels once something is.
type cancelOnWrite struct {
	mu     sync.Mutex
	b      strings.Builder
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel()
	return w.b.Write(p)
}

// TestLocalOnDevChain: with no daemon, Local acts on the chain of the
// data dir's deployment: the account of a fresh default identity reads
// as unregistered, a hermes runs with the dev operator until its context
// ends, and a bad --hermes.operator is refused by name.
func TestLocalOnDevChain(t *testing.T) {
	ctx, dc := testDevChain(t)
	log := slog.New(slog.DiscardHandler)
	var asked []string
	l := testLocal(t, &asked, "pw")
	l.Log = log
	if err := dc.Deployment().Save(l.DeploymentPath()); err != nil {
		t.Fatal(err)
	}
	id := newDefaultIdentity(ctx, t, l)
	f := AccountFlags{ChainFlags: ChainFlags{RPC: dc.URL()}}
	err := l.WithAccounts(ctx, f, false, false, func(api AccountAPI, got common.Address) error {
		if got != id {
			t.Errorf("acting as %s, want the default %s", got.Hex(), id.Hex())
		}
		a, err := api.Account(ctx, got)
		if err == nil && (a.Registered || a.Channel != dc.Deployment().ChannelAddress(id).Hex()) {
			t.Errorf("fresh account %+v", a)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// A hand-signed consumer promise is written as a settlement file.
	pf := filepath.Join(t.TempDir(), "promise.json")
	var w strings.Builder
	if err := l.WritePromise(ctx, &w, tequilapi.Amounts{}, f, PromiseRequest{Amount: big.NewInt(2e18), Fee: new(big.Int)}, pf); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	st, err := chain.DecodeSettlement(data)
	if err != nil || st.Kind != chain.KindConsumer || !strings.Contains(w.String(), "consumer promise for 2 MYST") {
		t.Fatalf("promise %+v, %v; said %q", st, err, w.String())
	}

	// Registered, the identity can request a unilateral exit, which cannot
	// be finalized before its timelock.
	if err := l.WithAccounts(ctx, f, true, true, func(api AccountAPI, id common.Address) error {
		_, err := api.Register(ctx, id, tequilapi.RegisterRequest{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Funded, its promise settles on chain directly (no daemon).
	if err := l.WithAccounts(ctx, f, false, true, func(api AccountAPI, id common.Address) error {
		_, err := api.TopUp(ctx, id, "3", false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r, err := l.SettlePromise(ctx, f, st); err != nil || r.Kind != chain.KindConsumer || r.Paid != "2" {
		t.Fatalf("settle: %+v %v", r, err)
	}
	w.Reset()
	if err := l.Exit(ctx, &w, f, false); err != nil || !strings.Contains(w.String(), "exit requested") || !strings.Contains(w.String(), "finalize with") {
		t.Fatalf("exit: %v; said %q", err, w.String())
	}
	if err := l.Exit(ctx, &w, f, true); err == nil {
		t.Fatal("exit finalized before its timelock")
	}

	o := HermesOptions{HermesConfig: HermesConfig{Listen: "127.0.0.1:0"}, ThresholdWei: "1", MinFeeWei: "0", Confirmations: -1}
	if err := l.RunHermes(ctx, f.ChainFlags, "0xnope", "", o, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "--hermes.operator") {
		t.Fatalf("bad operator: %v", err)
	}
	hctx, hcancel := context.WithCancel(ctx)
	out := &cancelOnWrite{cancel: hcancel}
	if err := l.RunHermes(hctx, f.ChainFlags, "", "", o, out); err != nil {
		t.Fatal(err)
	}
	if s := out.b.String(); !strings.Contains(s, "hermes running") || !strings.Contains(s, "operator: "+dc.Deployment().HermesOperator.Hex()) ||
		!strings.Contains(s, filepath.Join(l.DataDir, "hermes", "hermes.db")) {
		t.Fatalf("hermes output:\n%s", s)
	}
	// Signing asked for the passphrase (promise, register, exit request);
	// reading, finalizing and the dev hermes operator did not.
	if len(asked) != 3 {
		t.Fatalf("asked for passphrases: %v", asked)
	}
}
