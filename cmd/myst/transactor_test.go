package main

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/transactor"
)

// TestAccountViaTransactor: `myst account register --transactor` registers
// a fresh identity through a transactor, and `myst account redeem CODE`
// honours a sponsor's voucher once and refuses it the second time.
func TestAccountViaTransactor(t *testing.T) {
	t.Setenv("MYST_TEQUILAPI_PORT", strconv.Itoa(mysttest.FreePort(t)))
	rpc, dep := startChainDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := node.OpenChain(ctx, node.ChainConfig{RPC: rpc, Deployment: dep, Tx: node.TxRequired})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr, err := node.StartTransactor(ctx, node.TransactorConfig{Chain: c.Client, Signer: identity.NewKeySigner(devchain.DevKey(devchain.TransactorAccount)),
		Hermes: c.Hermes, Fees: transactor.Fees{Register: money.MYST(1)}, StorePath: filepath.Join(t.TempDir(), "tx.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	common := []string{"--chain.rpc", rpc, "--chain.deployment", dep, "--transactor", tr.URL()}
	acct := func(args ...string) []string { return append(append([]string{"account"}, args...), common...) }
	pf := passFile(t, "pw")

	pdd := t.TempDir()
	provider := strings.TrimSpace(mustRun(t, pdd, "identity", "new", "--passphrase-file", pf))
	if out := mustRun(t, pdd, acct("register", "--passphrase-file", pf)...); !strings.Contains(out, "registered "+provider+" through the transactor") {
		t.Fatalf("register output:\n%s", out)
	}

	keyFile := filepath.Join(t.TempDir(), "sponsor.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(crypto.FromECDSA(devchain.DevKey(7)))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.Mint(ctx, devchain.DevAddress(7), money.MYST(20)); err != nil {
		t.Fatal(err)
	}
	sp, err := node.OpenChain(ctx, node.ChainConfig{RPC: rpc, Deployment: dep, TransactorKeyFile: keyFile, Tx: node.TxRequired})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	out, err := node.SignVoucher(ctx, sp, keyFile, tr.URL(), "2", "10", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	code := lines[len(lines)-1]
	add := t.TempDir()
	mustRun(t, add, "identity", "new", "--passphrase-file", pf)
	if out := mustRun(t, add, acct("redeem", code, "--passphrase-file", pf)...); !strings.Contains(out, "starter top-up") {
		t.Fatalf("redeem output:\n%s", out)
	}
	if out := mustRun(t, add, acct("balance")...); !strings.Contains(out, "registered:   true") || !strings.Contains(out, "balance:    2 MYST") {
		t.Fatalf("balance after redeeming:\n%s", out)
	}
	bdd := t.TempDir()
	mustRun(t, bdd, "identity", "new", "--passphrase-file", pf)
	if out, err := runCLI(t, bdd, acct("redeem", code, "--passphrase-file", pf)...); err == nil || !strings.Contains(err.Error(), transactor.CodeRedeemed) {
		t.Fatalf("second redemption: %v\n%s", err, out)
	}
}
