package main

import (
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/openmyst/openmyst/chain/devchain"
	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/hermes/tlstest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/keytest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/transactor"
)

// runProc runs the test binary as `myst args...` to completion with env
// added (a one-shot command in its own process) and returns its stdout.
func runProc(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--log-level", "warn"}, args...)...)
	cmd.Env = append(append(os.Environ(), mysttest.RunMainEnv+"=1"), env...)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("myst %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return string(out), nil
}

// TestTransactorCommand runs `myst transactor` as its own process over
// HTTPS: it quotes signed fees, registers a fresh identity with no ETH
// and no MYST, and `myst account voucher` (sponsor), `myst account redeem`
// and `myst account beneficiary --transactor` go through it as processes
// trusting its CA (SSL_CERT_FILE). Plain HTTP to its port fails, and a
// non-loopback listen address without TLS is refused.
func TestTransactorCommand(t *testing.T) {
	ctx := testenv.Long(t, "starts a dev chain", 2*time.Minute)
	rpc, dep := startChainDev(t)
	ca := tlstest.New(t, t.TempDir())
	port := strconv.Itoa(mysttest.FreePort(t))
	proc, lines := mysttest.Start(t, mysttest.Stdout, nil, "--data-dir", t.TempDir(), "--log-level", "warn", "transactor",
		"--chain.rpc", rpc, "--chain.deployment", dep, "--transactor.listen", "127.0.0.1:"+port,
		"--tls.cert", ca.CertFile, "--tls.key", ca.KeyFile, "--transactor.fee-register", "1")
	var seen []string
	if l := mysttest.WaitLine(t, lines, "api:", &seen); !strings.Contains(l, "https://127.0.0.1:"+port) {
		t.Fatalf("transactor announced %q, want its https URL", l)
	}
	url := "https://127.0.0.1:" + port

	c, err := node.OpenChain(ctx, node.ChainConfig{RPC: rpc, Deployment: dep, Tx: node.TxRequired})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	relay, err := transactor.NewClient(url, c.Client.Deployment(), hc)
	if err != nil {
		t.Fatal(err)
	}
	q, err := relay.Quote(ctx)
	if err != nil {
		t.Fatalf("quote over HTTPS: %v", err)
	}
	if q.Fees.Register.Cmp(money.MYST(1)) != 0 || q.Transactor != devchain.DevAddress(devchain.TransactorAccount) {
		t.Fatalf("quote %+v: want a 1 MYST registration fee signed by the dev transactor", q)
	}
	if res, err := http.Get("http://127.0.0.1:" + port + transactor.PathHealth); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered on the TLS port")
		}
	}

	// A fresh identity with nothing registers through the process.
	k := keytest.Key(t)
	fresh := identity.NewKeySigner(k)
	if err := node.EnsureRegisteredVia(ctx, c.Client, relay, fresh, c.Hermes, nil); err != nil {
		t.Fatalf("gasless registration through myst transactor: %v", err)
	}
	if ok, err := c.Client.IsRegistered(ctx, fresh.Address()); err != nil || !ok {
		t.Fatalf("fresh identity registered: %t %v", ok, err)
	}
	if eth, err := c.Client.Backend().BalanceAt(ctx, fresh.Address(), nil); err != nil || eth.Sign() != 0 {
		t.Fatalf("fresh identity's ETH %v %v, want none", eth, err)
	}

	// The CLI as processes: a sponsor signs a voucher, a new identity
	// redeems it and changes its beneficiary, all through the transactor.
	trust := []string{"SSL_CERT_FILE=" + ca.CAFile}
	keyFile := filepath.Join(t.TempDir(), "sponsor.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(crypto.FromECDSA(devchain.DevKey(7)))), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.Mint(ctx, devchain.DevAddress(7), money.MYST(20)); err != nil {
		t.Fatal(err)
	}
	chainFlags := []string{"--chain.rpc", rpc, "--chain.deployment", dep, "--transactor", url}
	out, err := runProc(t, trust, append([]string{"--data-dir", t.TempDir(), "account", "voucher", "2", "--approve", "10", "--chain.transactor-key-file", keyFile}, chainFlags...)...)
	if err != nil {
		t.Fatalf("myst account voucher: %v\n%s", err, out)
	}
	codeLines := strings.Split(strings.TrimSpace(out), "\n")
	code := codeLines[len(codeLines)-1]
	if !strings.Contains(out, "allowed the transactor 10 MYST") || len(code) < 20 {
		t.Fatalf("voucher output:\n%s", out)
	}
	dd := t.TempDir()
	pf := passFile(t, "pw")
	mustRun(t, dd, "identity", "new", "--passphrase-file", pf)
	if out, err := runProc(t, trust, append([]string{"--data-dir", dd, "account", "redeem", code, "--passphrase-file", pf}, chainFlags...)...); err != nil || !strings.Contains(out, "starter top-up") {
		t.Fatalf("myst account redeem: %v\n%s", err, out)
	}
	ben := devchain.DevAddress(8).Hex()
	if out, err := runProc(t, trust, append([]string{"--data-dir", dd, "account", "beneficiary", ben, "--passphrase-file", pf}, chainFlags...)...); err != nil ||
		!strings.Contains(out, "is now "+ben) || !strings.Contains(out, "through the transactor") {
		t.Fatalf("myst account beneficiary --transactor: %v\n%s", err, out)
	}

	// Plain HTTP on a non-loopback address is refused.
	if _, err := runCLI(t, t.TempDir(), "transactor", "--chain.rpc", rpc, "--chain.deployment", dep,
		"--transactor.listen", "0.0.0.0:"+strconv.Itoa(mysttest.FreePort(t))); err == nil || !strings.Contains(err.Error(), "--tls.cert") {
		t.Fatalf("plain HTTP on 0.0.0.0: %v, want a refusal naming --tls.cert", err)
	}
	mysttest.Stop(t, proc, lines)
}
