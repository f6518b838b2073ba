package main

import (
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
	"github.com/google/uuid"

	"github.com/openmyst/openmyst/chain/devchain"
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
