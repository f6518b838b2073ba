package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	gethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/google/uuid"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/chain/devchain/devchaintest"
	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
)

// startChainDev runs `myst chain dev` in-process on a free port until the
// test ends, and returns the RPC URL and the deployment file.
func startChainDev(t *testing.T) (string, string) {
	t.Helper()
	port := mysttest.FreePort(t)
	dd := t.TempDir()
	r := startCLI(dd, "chain", "dev", "--port", strconv.Itoa(port))
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("chain dev: %v", err)
		}
	})
	dep := filepath.Join(dd, "chain", "deployment.json")
	deadline := time.After(time.Minute)
	for {
		if _, err := os.Stat(dep); err == nil {
			break
		}
		select {
		case err := <-r.done:
			t.Fatalf("chain dev exited: %v", err)
		case <-deadline:
			t.Fatal("chain dev did not write its deployment")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "http://127.0.0.1:" + strconv.Itoa(port), dep
}

// importDevKey puts dev account i into dd's keystore with passphrase pw.
func importDevKey(t *testing.T, dd string, i int, pw string) string {
	t.Helper()
	k := devchain.DevKey(i)
	key := &keystore.Key{Id: uuid.New(), Address: crypto.PubkeyToAddress(k.PublicKey), PrivateKey: k}
	js, err := keystore.EncryptKey(key, pw, keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(f, js, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, dd, "identity", "import", f, "--passphrase-file", passFile(t, pw))
	if err != nil {
		t.Fatalf("import dev key: %v", err)
	}
	return strings.TrimSpace(out)
}

func mustRun(t *testing.T, dd string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, dd, args...)
	if err != nil {
		t.Fatalf("myst %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

var channelRe = regexp.MustCompile(`channel: (0x[0-9a-fA-F]{40})`)

// TestAccountCLIEndToEnd drives the whole chain flow through the CLI on a
// real dev chain: consumer tops up before registering, registers, signs a
// promise the hermes settles; a provider registers, sets its beneficiary
// and settles the hermes's promise to it.
func TestAccountCLIEndToEnd(t *testing.T) {
	t.Setenv("MYST_TEQUILAPI_PORT", strconv.Itoa(mysttest.FreePort(t)))
	rpc, dep := startChainDev(t)
	common := []string{"--chain.rpc", rpc, "--chain.deployment", dep}
	acct := func(args ...string) []string { return append(append([]string{"account"}, args...), common...) }
	pf := passFile(t, "pw")

	// Consumer: new identity, top up first, then register.
	cdd := t.TempDir()
	consumer := strings.TrimSpace(mustRun(t, cdd, "identity", "new", "--passphrase-file", pf))
	out := mustRun(t, cdd, acct("topup", "5")...)
	if !strings.Contains(out, "channel balance: 5 MYST") {
		t.Fatalf("topup output:\n%s", out)
	}
	out = mustRun(t, cdd, acct("register", "--passphrase-file", pf)...)
	m := channelRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("register output:\n%s", out)
	}
	out = mustRun(t, cdd, acct("balance")...)
	for _, want := range []string{"identity:     " + consumer, "registered:   true", "deployed: true", "balance:    5 MYST", "settled:    0 MYST"} {
		if !strings.Contains(out, want) {
			t.Fatalf("balance output lacks %q:\n%s", want, out)
		}
	}
	// Consumer promises 2 MYST; anyone (here: a fresh data dir) settles it for the hermes.
	cp := filepath.Join(t.TempDir(), "consumer-promise.json")
	mustRun(t, cdd, acct("promise", "--amount", "2", "--out", cp, "--passphrase-file", pf)...)
	out = mustRun(t, t.TempDir(), acct("settle", "--promise", cp)...)
	if !strings.Contains(out, "paid 2 MYST to hermes") || !strings.Contains(out, "channel balance 3 MYST") {
		t.Fatalf("consumer settle output:\n%s", out)
	}
	if _, err := runCLI(t, t.TempDir(), acct("settle", "--promise", cp)...); err == nil || !strings.Contains(err.Error(), "NothingToSettle") {
		t.Fatalf("second settle of the same promise: %v", err)
	}

	// Provider: register, set a beneficiary.
	pdd := t.TempDir()
	provider := strings.TrimSpace(mustRun(t, pdd, "identity", "new", "--passphrase-file", pf))
	mustRun(t, pdd, acct("register", "--passphrase-file", pf)...)
	ben := gethcommon.HexToAddress("0x00000000000000000000000000000000000be4e1").Hex()
	mustRun(t, pdd, acct("beneficiary", ben, "--passphrase-file", pf)...)

	// Hermes operator (dev account) promises the provider 1.5 MYST.
	hdd := t.TempDir()
	operator := importDevKey(t, hdd, devchain.HermesAccount, "op")
	hp := filepath.Join(t.TempDir(), "provider-promise.json")
	mustRun(t, hdd, acct("promise", "--identity", operator, "--provider", provider, "--amount", "1.5", "--out", hp, "--passphrase-file", passFile(t, "op"))...)
	out = mustRun(t, pdd, acct("settle", "--promise", hp)...)
	if !strings.Contains(out, "paid 1.5 MYST (before hermes fee) to beneficiary "+ben) {
		t.Fatalf("provider settle output:\n%s", out)
	}
	out = mustRun(t, pdd, acct("balance")...)
	// 1% dev hermes fee: 1.5 - 0.015.
	if !strings.Contains(out, "beneficiary:  "+ben+" (1.485 MYST)") || !strings.Contains(out, "settled:    1.5 MYST") {
		t.Fatalf("provider balance output:\n%s", out)
	}
	out = mustRun(t, pdd, append(acct("balance"), "--wei")...)
	if !strings.Contains(out, "(1485000000000000000 wei)") {
		t.Fatalf("--wei output:\n%s", out)
	}
}

// TestChainDeployToAnyEVM deploys a production-style (no faucet) set of
// contracts through `myst chain deploy` to a running chain over JSON-RPC.
func TestChainDeployToAnyEVM(t *testing.T) {
	rpc, _ := startChainDev(t)
	keyFile := filepath.Join(t.TempDir(), "deployer.key")
	if err := os.WriteFile(keyFile, []byte(gethcommon.Bytes2Hex(crypto.FromECDSA(devchain.DevKey(4)))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "prod.json")
	res := mustRun(t, t.TempDir(), "chain", "deploy", "--chain.rpc", rpc, "--chain.transactor-key-file", keyFile, "--out", out, "--supply", "1000000")
	if !strings.Contains(res, "deployed on chain 1337") {
		t.Fatalf("deploy output:\n%s", res)
	}
	// The new deployment has no faucet: topping up must come from the transactor's own MYST.
	dd := t.TempDir()
	pf := passFile(t, "pw")
	mustRun(t, dd, "identity", "new", "--passphrase-file", pf)
	if _, err := runCLI(t, dd, "account", "balance", "--chain.rpc", rpc, "--chain.deployment", out); err == nil || !strings.Contains(err.Error(), "hermes") {
		t.Fatalf("balance without a hermes: %v", err)
	}
	if _, err := runCLI(t, dd, "chain", "deploy", "--chain.rpc", rpc, "--out", out); err == nil {
		t.Fatal("deploy without a key accepted")
	}
}

// TestChainDeployKilledMidDeploy: `myst chain deploy` (a real process) is
// SIGKILLed while its token creation is pending (the RPC took it and the
// chain gets it only after the kill). The same command run again on the
// data dir takes that transaction as the token's, under its nonce, and
// creates the registry with the next: one set of contracts. Run once more, it sends nothing; without its
// progress file it refuses to overwrite the deployment. Before deploys
// kept their progress and pending transactions the rerun created a second
// token under a new nonce and the killed one was never mined.
func TestChainDeployKilledMidDeploy(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rpc, _ := startChainDev(t)
	key := devchain.DevKey(5)
	from := crypto.PubkeyToAddress(key.PublicKey)
	keyFile := filepath.Join(t.TempDir(), "deployer.key")
	if err := os.WriteFile(keyFile, []byte(gethcommon.Bytes2Hex(crypto.FromECDSA(key))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eth, err := ethclient.DialContext(ctx, rpc)
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	nonce, err := eth.NonceAt(ctx, from, nil)
	if err != nil {
		t.Fatal(err)
	}
	head, err := eth.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dd, out := t.TempDir(), filepath.Join(t.TempDir(), "prod.json")
	deploy := []string{"chain", "deploy", "--chain.transactor-key-file", keyFile, "--out", out, "--supply", "1000000"}

	proxy := devchaintest.NewSwallowRPC(t, rpc)
	cmd, _ := mysttest.Start(t, mysttest.Stdout, nil, append([]string{"--data-dir", dd, "--log-level", "warn"}, append(deploy, "--chain.rpc", proxy.URL)...)...)
	first := proxy.Swallowed(ctx, t, nil)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// The transaction was out: the chain gets it after the kill.
	if err := eth.SendTransaction(ctx, first); err != nil {
		t.Fatal(err)
	}

	res := mustRun(t, dd, append(deploy, "--chain.rpc", rpc)...)
	token, registry := crypto.CreateAddress(from, nonce), crypto.CreateAddress(from, nonce+1)
	if !strings.Contains(res, "deployed on chain 1337") || !strings.Contains(res, token.Hex()) || !strings.Contains(res, registry.Hex()) {
		t.Fatalf("rerun output (want token %s, registry %s):\n%s", token.Hex(), registry.Hex(), res)
	}
	sent := devchaintest.SentSince(ctx, t, eth, from, head)
	if len(sent) != 2 || sent[0].Hash() != first.Hash() || sent[1].Nonce() != nonce+1 {
		t.Fatalf("deployer sent %d transactions, want the killed run's %s (nonce %d) and the registry (nonce %d)", len(sent), first.Hash().Hex(), nonce, nonce+1)
	}

	res = mustRun(t, dd, append(deploy, "--chain.rpc", rpc)...)
	if !strings.Contains(res, "already deployed (nothing sent)") || !strings.Contains(res, registry.Hex()) {
		t.Fatalf("rerun of the complete deployment:\n%s", res)
	}
	if n, err := eth.PendingNonceAt(ctx, from); err != nil || n != nonce+2 {
		t.Fatalf("deployer nonce %d (%v) after the rerun, want %d", n, err, nonce+2)
	}
	if err := os.Remove(out + ".progress"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, dd, append(deploy, "--chain.rpc", rpc)...); err == nil || !strings.Contains(err.Error(), "pass another --out") {
		t.Fatalf("deploy over a deployment without its progress file: %v, want a refusal", err)
	}
}
