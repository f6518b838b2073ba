package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
)

// startTransactor runs `myst transactor` in-process until the test ends
// and returns its URL.
func startTransactor(t *testing.T, rpc, dep string) string {
	t.Helper()
	port := mysttest.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root, _ := newTestRoot()
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		root.SetArgs([]string{"--data-dir", t.TempDir(), "--log-level", "warn", "transactor", "--chain.rpc", rpc, "--chain.deployment", dep,
			"--transactor.listen", "127.0.0.1:" + strconv.Itoa(port), "--fee.register", "0.01"})
		done <- root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("transactor: %v", err)
		}
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("transactor did not come up: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("transactor exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestTransactorCLI: `myst transactor` relays a fresh identity's zero-fee
// registration (`account register --transactor`), and a sponsor's voucher
// (`account voucher --approve`) is redeemed once (`account redeem`) and
// refused the second time.
func TestTransactorCLI(t *testing.T) {
	t.Setenv("MYST_TEQUILAPI_PORT", strconv.Itoa(mysttest.FreePort(t)))
	rpc, dep := startChainDev(t)
	url := startTransactor(t, rpc, dep)
	common := []string{"--chain.rpc", rpc, "--chain.deployment", dep, "--transactor", url}
	acct := func(args ...string) []string { return append(append([]string{"account"}, args...), common...) }
	pf := passFile(t, "pw")

	pdd := t.TempDir()
	provider := strings.TrimSpace(mustRun(t, pdd, "identity", "new", "--passphrase-file", pf))
	out := mustRun(t, pdd, acct("register", "--passphrase-file", pf)...)
	if !strings.Contains(out, "registered "+provider+" through the transactor") {
		t.Fatalf("register output:\n%s", out)
	}
	if out := mustRun(t, pdd, acct("balance")...); !strings.Contains(out, "registered:   true") {
		t.Fatalf("balance output:\n%s", out)
	}

	// The sponsor is dev account 7 (its key pays its own approve).
	keyFile := filepath.Join(t.TempDir(), "sponsor.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(crypto.FromECDSA(devchain.DevKey(7)))), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := node.OpenChain(context.Background(), node.ChainConfig{RPC: rpc, Deployment: dep, TransactorKeyFile: keyFile, Tx: node.TxRequired})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if _, err := sp.Client.Mint(context.Background(), devchain.DevAddress(7), money.MYST(20)); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, t.TempDir(), "account", "voucher", "2", "--chain.rpc", rpc, "--chain.deployment", dep, "--chain.transactor-key-file", keyFile, "--transactor", url, "--approve", "10")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	code := lines[len(lines)-1]
	if !strings.HasPrefix(code, "MYSTV1-") {
		t.Fatalf("voucher output:\n%s", out)
	}
	add := t.TempDir()
	mustRun(t, add, "identity", "new", "--passphrase-file", pf)
	out = mustRun(t, add, acct("redeem", code, "--passphrase-file", pf)...)
	if !strings.Contains(out, "starter top-up") || !strings.Contains(out, "registered") {
		t.Fatalf("redeem output:\n%s", out)
	}
	if out := mustRun(t, add, acct("balance")...); !strings.Contains(out, "registered:   true") || !strings.Contains(out, "balance:    2 MYST") {
		t.Fatalf("balance after redeeming:\n%s", out)
	}
	bdd := t.TempDir()
	mustRun(t, bdd, "identity", "new", "--passphrase-file", pf)
	if out, err := runCLI(t, bdd, acct("redeem", code, "--passphrase-file", pf)...); err == nil || !strings.Contains(err.Error(), "voucher_redeemed") {
		t.Fatalf("second redemption: %v\n%s", err, out)
	}
}
