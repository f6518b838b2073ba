package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	gethcommon "github.com/ethereum/go-ethereum/common"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
)

// TestAccountThroughDaemon: with a daemon running for the data dir, `myst
// account` topup, register, balance, beneficiary and settle go through its
// Tequilapi account routes (seen in the daemon's log) on the daemon's
// chain; a daemon without a chain still starts, answers 503
// chain_unavailable, and the CLI then acts on the chain directly.
func TestAccountThroughDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev chain and daemon subprocesses")
	}
	rpc, dep := startChainDev(t)
	dd := t.TempDir()
	port := mysttest.FreePort(t)
	d, lines := mysttest.StartDaemon(t, dd, port, "--chain.rpc", rpc, "--chain.deployment", dep)
	var seen []string
	mysttest.WaitLine(t, lines, "node started", &seen)
	t.Setenv("MYST_TEQUILAPI_PORT", strconv.Itoa(port))

	pf := passFile(t, "pw")
	id := strings.TrimSpace(mustRun(t, dd, "identity", "new", "--passphrase-file", pf))
	mysttest.WaitLine(t, lines, "identity created", &seen)

	// No --chain.* flags: the daemon's chain is used.
	out := mustRun(t, dd, "account", "topup", "5")
	if !strings.Contains(out, "channel balance: 5 MYST") {
		t.Fatalf("topup output:\n%s", out)
	}
	mysttest.WaitLine(t, lines, "channel topped up", &seen)
	out = mustRun(t, dd, "account", "register", "--passphrase-file", pf)
	if m := channelRe.FindStringSubmatch(out); m == nil {
		t.Fatalf("register output:\n%s", out)
	}
	mysttest.WaitLine(t, lines, "identity registered", &seen)
	ben := gethcommon.HexToAddress("0x00000000000000000000000000000000000be4e1").Hex()
	mustRun(t, dd, "account", "beneficiary", ben, "--passphrase-file", pf)
	mysttest.WaitLine(t, lines, "beneficiary changed", &seen)

	// The hermes operator (dev account, its own data dir, no daemon)
	// promises the provider 1.5 MYST; the provider's CLI settles it
	// through its daemon.
	hdd := t.TempDir()
	operator := importDevKey(t, hdd, devchain.HermesAccount, "op")
	hp := filepath.Join(t.TempDir(), "provider-promise.json")
	mustRun(t, hdd, "account", "promise", "--identity", operator, "--provider", id, "--amount", "1.5", "--out", hp,
		"--passphrase-file", passFile(t, "op"), "--chain.rpc", rpc, "--chain.deployment", dep)
	out = mustRun(t, dd, "account", "settle", "--promise", hp)
	if !strings.Contains(out, "paid 1.5 MYST (before hermes fee) to beneficiary "+ben) {
		t.Fatalf("settle output:\n%s", out)
	}
	mysttest.WaitLine(t, lines, "promise settled", &seen)

	out = mustRun(t, dd, "account", "balance")
	for _, want := range []string{"identity:     " + id, "registered:   true", "deployed: true", "balance:    5 MYST",
		"beneficiary:  " + ben + " (1.485 MYST)", "settled:    1.5 MYST"} {
		if !strings.Contains(out, want) {
			t.Fatalf("balance output lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, dd, "account", "balance", "--wei")
	if !strings.Contains(out, "balance:    5000000000000000000 wei") {
		t.Fatalf("balance --wei output:\n%s", out)
	}
	mysttest.Stop(t, d, lines)

	// A daemon without a chain starts; its account routes answer 503 and
	// the CLI falls back to the chain flags it was given.
	dd2 := t.TempDir()
	port2 := mysttest.FreePort(t)
	d2, lines2 := mysttest.StartDaemon(t, dd2, port2, "--chain.deployment", filepath.Join(t.TempDir(), "missing.json"))
	seen = nil
	mysttest.WaitLine(t, lines2, "node started", &seen)
	t.Setenv("MYST_TEQUILAPI_PORT", strconv.Itoa(port2))
	id2 := strings.TrimSpace(mustRun(t, dd2, "identity", "new", "--passphrase-file", pf))
	base := "http://127.0.0.1:" + strconv.Itoa(port2)
	body, code := mysttest.GetAuth(t, base+"/identities/"+id2+"/account", mysttest.Login(t, base, dd2))
	if code != 503 || !strings.Contains(body, `"chain_unavailable"`) || !strings.Contains(body, "missing.json") {
		t.Fatalf("account without chain: %d %s", code, body)
	}
	// The consumer shares the daemon's chain source and its error code.
	if out, err := runCLI(t, dd2, "connect"); err == nil || !strings.Contains(out+err.Error(), "chain_unavailable") {
		t.Fatalf("connect without chain: %v %s", err, out)
	}
	out = mustRun(t, dd2, "account", "balance", "--chain.rpc", rpc, "--chain.deployment", dep)
	if !strings.Contains(out, "identity:     "+id2) || !strings.Contains(out, "registered:   false") {
		t.Fatalf("fallback balance output:\n%s", out)
	}
	mysttest.Stop(t, d2, lines2)
}
