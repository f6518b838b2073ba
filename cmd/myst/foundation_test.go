package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/tequilapi"
	"github.com/openmyst/openmyst/tequilapi/client"
)

// TestMain lets the test binary act as the myst binary for subprocess
// tests (MYST_TEST_RUN_MAIN=1).
func TestMain(m *testing.M) {
	if os.Getenv(mysttest.RunMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// newTestRoot is the root command over a fresh app.
func newTestRoot() (*cobra.Command, *app) {
	a := &app{log: slog.Default()}
	return newRootCmd(a), a
}

// runCLI executes the root command in-process and returns stdout.
func runCLI(t *testing.T, dataDir string, args ...string) (string, error) {
	t.Helper()
	out, _, err := runCLIApp(t, dataDir, args...)
	return out, err
}

// runCLIApp is runCLI, also returning the resolved app.
func runCLIApp(t *testing.T, dataDir string, args ...string) (string, *app, error) {
	t.Helper()
	root, a := newTestRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"--data-dir", dataDir, "--keystore.light-scrypt", "--log-level", "warn"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), a, err
}

// cliRun is a root command running in-process in the background.
type cliRun struct {
	cancel context.CancelFunc
	// done receives the command's error when it returns.
	done chan error
	// out is its stdout; written by the command's goroutine: read only
	// after it has returned.
	out bytes.Buffer
}

// startCLI runs the root command with args in-process in the background
// (data dir dd, log level warn, stderr discarded) until stop.
func startCLI(dd string, args ...string) *cliRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &cliRun{cancel: cancel, done: make(chan error, 1)}
	go func() {
		root, _ := newTestRoot()
		root.SetOut(&r.out)
		root.SetErr(&bytes.Buffer{})
		root.SetArgs(append([]string{"--data-dir", dd, "--log-level", "warn"}, args...))
		r.done <- root.ExecuteContext(ctx)
	}()
	return r
}

// stop cancels the command and returns its error.
func (r *cliRun) stop() error {
	r.cancel()
	return <-r.done
}

func passFile(t *testing.T, pw string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

var addrRe = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)

func TestIdentityNewThenList(t *testing.T) {
	t.Setenv("MYST_TEQUILAPI_PORT", strconv.Itoa(mysttest.FreePort(t)))
	dd := t.TempDir()
	out, err := runCLI(t, dd, "identity", "new", "--passphrase-file", passFile(t, "pw1"))
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(out)
	if !addrRe.MatchString(addr) {
		t.Fatalf("identity new printed %q", out)
	}
	out, err = runCLI(t, dd, "identity", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, addr+"\tdefault") {
		t.Fatalf("identity list = %q, want %s as default", out, addr)
	}
	fi, err := os.Stat(filepath.Join(dd, "keystore"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("keystore dir: %v %v", fi, err)
	}
	out, err = runCLI(t, dd, "identity", "new", "--passphrase-file", passFile(t, "pw2"))
	if err != nil {
		t.Fatal(err)
	}
	second := strings.TrimSpace(out)
	if _, err := runCLI(t, dd, "identity", "set-default", second); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, dd, "identity", "list")
	if err != nil || !strings.Contains(out, second+"\tdefault") || strings.Contains(out, addr+"\tdefault") {
		t.Fatalf("list after set-default = %q, %v", out, err)
	}
	// Shell completion offers the keystore's addresses.
	out, err = runCLI(t, dd, "__complete", "identity", "sign", "")
	if err != nil || !strings.Contains(out, addr) || !strings.Contains(out, second) {
		t.Fatalf("completion = %q, %v", out, err)
	}
	// An empty data dir lists nothing.
	out, err = runCLI(t, t.TempDir(), "identity", "list")
	if err != nil || out != "" {
		t.Fatalf("list on empty data dir = %q, %v", out, err)
	}
}

func TestIdentitySignVerifyExportImport(t *testing.T) {
	t.Setenv("MYST_TEQUILAPI_PORT", strconv.Itoa(mysttest.FreePort(t)))
	dd := t.TempDir()
	pf := passFile(t, "secret")
	out, err := runCLI(t, dd, "identity", "new", "--passphrase-file", pf)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(out)
	sig, err := runCLI(t, dd, "identity", "sign", addr, "hello", "--passphrase-file", pf)
	if err != nil {
		t.Fatal(err)
	}
	sig = strings.TrimSpace(sig)
	if out, err := runCLI(t, dd, "identity", "verify", addr, "hello", sig); err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("verify = %q, %v", out, err)
	}
	if _, err := runCLI(t, dd, "identity", "verify", addr, "hello!", sig); !errors.Is(err, identity.ErrBadSignature) {
		t.Fatalf("verify tampered message: %v", err)
	}
	if _, err := runCLI(t, dd, "identity", "sign", addr, "x", "--passphrase-file", passFile(t, "wrong")); !errors.Is(err, identity.ErrWrongPassphrase) {
		t.Fatalf("sign with wrong passphrase: %v", err)
	}
	exported, err := runCLI(t, dd, "identity", "export", addr)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(keyFile, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	dd2 := t.TempDir()
	out, err = runCLI(t, dd2, "identity", "import", keyFile, "--passphrase-file", pf)
	if err != nil || strings.TrimSpace(out) != addr {
		t.Fatalf("import = %q, %v", out, err)
	}
	sig2, err := runCLI(t, dd2, "identity", "sign", addr, "hello", "--passphrase-file", pf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, dd, "identity", "verify", addr, "hello", strings.TrimSpace(sig2)); err != nil {
		t.Fatalf("signature of imported key: %v", err)
	}
	if _, err := runCLI(t, dd2, "identity", "import", keyFile, "--passphrase-file", pf); !errors.Is(err, identity.ErrExists) {
		t.Fatalf("second import: %v", err)
	}
}

func TestPassphraseRequired(t *testing.T) {
	// stdin of go test is not a terminal.
	t.Setenv("MYST_PASSPHRASE", "")
	if _, err := runCLI(t, t.TempDir(), "identity", "new"); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("identity new without passphrase: %v", err)
	}
	t.Setenv("MYST_PASSPHRASE", "from env")
	t.Setenv("MYST_TEQUILAPI_PORT", strconv.Itoa(mysttest.FreePort(t)))
	if out, err := runCLI(t, t.TempDir(), "identity", "new"); err != nil || !addrRe.MatchString(strings.TrimSpace(out)) {
		t.Fatalf("identity new with MYST_PASSPHRASE: %q %v", out, err)
	}
}

func TestConfigAndLogFlags(t *testing.T) {
	dd := t.TempDir()
	if err := os.WriteFile(filepath.Join(dd, "config.toml"), []byte("[tequilapi]\nport = 4999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, a, err := runCLIApp(t, dd, "version")
	if err != nil {
		t.Fatal(err)
	}
	if a.tequilapiPort != 4999 {
		t.Fatalf("port from config.toml = %d", a.tequilapiPort)
	}
	t.Setenv("MYST_TEQUILAPI_PORT", "5111")
	if _, a, err := runCLIApp(t, dd, "version"); err != nil || a.tequilapiPort != 5111 {
		t.Fatalf("port from env = %d, %v", a.tequilapiPort, err)
	}
	if _, a, err := runCLIApp(t, dd, "--tequilapi.port", "5222", "version"); err != nil || a.tequilapiPort != 5222 {
		t.Fatalf("port from flag = %d, %v", a.tequilapiPort, err)
	}
	t.Setenv("MYST_LOG_FORMAT", "xml")
	if _, err := runCLI(t, dd, "version"); err == nil || !strings.Contains(err.Error(), "log-format") {
		t.Fatalf("bad log format: %v", err)
	}
	t.Setenv("MYST_LOG_FORMAT", "")
	other := t.TempDir()
	t.Setenv("MYST_DATA_DIR", other)
	root, a := newTestRoot()
	root.SetArgs([]string{"version"})
	root.SetOut(&bytes.Buffer{})
	if err := root.Execute(); err != nil || a.dataDir != other {
		t.Fatalf("data dir from env = %q, %v", a.dataDir, err)
	}
}

// startDaemon runs `myst daemon` as a real subprocess and returns it with
// its stderr lines.
func startDaemon(t *testing.T, dd string, port int) (*exec.Cmd, <-chan string) {
	t.Helper()
	// Keep other daemon parts on loopback and ephemeral ports (env for a
	// flag that does not exist is ignored).
	return mysttest.Start(t, mysttest.Stderr, []string{"MYST_P2P_LISTEN=/ip4/127.0.0.1/tcp/0", "MYST_P2P_NAT=false"},
		"--data-dir", dd, "--tequilapi.port", strconv.Itoa(port), "--keystore.light-scrypt", "daemon")
}

func TestDaemonEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon subprocess")
	}
	ctx := context.Background()
	dd := t.TempDir()
	port := mysttest.FreePort(t)
	d, lines := startDaemon(t, dd, port)
	var seen []string
	pwLine := mysttest.WaitLine(t, lines, "Tequilapi password", &seen)
	mysttest.WaitLine(t, lines, "node started", &seen)
	pw, err := tequilapi.ReadPassword(filepath.Join(dd, tequilapi.PasswordFileName))
	if err != nil || !strings.HasSuffix(pwLine, pw) {
		t.Fatalf("printed password line %q does not end with stored password (%v)", pwLine, err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	resp, err := http.Get(base + "/healthcheck")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthcheck %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/identities")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("/identities without token: %d", resp.StatusCode)
	}

	// The CLI finds the daemon and creates the identity through it.
	t.Setenv("MYST_TEQUILAPI_PORT", strconv.Itoa(port))
	out, err := runCLI(t, dd, "identity", "new", "--passphrase-file", passFile(t, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(out)
	mysttest.WaitLine(t, lines, `identity created" id=`+addr, &seen)
	out, err = runCLI(t, dd, "identity", "list")
	if err != nil || !strings.Contains(out, addr) {
		t.Fatalf("list via daemon = %q, %v", out, err)
	}
	sig, err := runCLI(t, dd, "identity", "sign", addr, "msg", "--passphrase-file", passFile(t, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, dd, "identity", "verify", addr, "msg", strings.TrimSpace(sig)); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(base, &http.Client{Transport: &http.Transport{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, pw); err != nil {
		t.Fatal(err)
	}
	ids, err := c.Identities(ctx)
	if err != nil || len(ids) != 1 || ids[0].ID != addr || !ids[0].Unlocked {
		t.Fatalf("daemon identities = %+v, %v", ids, err)
	}
	mysttest.Stop(t, d, lines)

	// Second start: password kept, not printed again.
	d, lines = startDaemon(t, dd, port)
	seen = nil
	mysttest.WaitLine(t, lines, "node started", &seen)
	for _, l := range seen {
		if strings.Contains(l, pw) {
			t.Fatalf("password printed on second start: %q", l)
		}
	}
	mysttest.Stop(t, d, lines)
}

func TestErrorExitCode(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--data-dir", t.TempDir(), "identity", "verify", "0x1234", "m", "0x00")
	cmd.Env = append(os.Environ(), mysttest.RunMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	msg := stderr.String()
	if !strings.HasPrefix(msg, "myst: ") || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "bad identity address") {
		t.Fatalf("stderr = %q, want one line myst: ... bad identity address", msg)
	}
}

// newDefaultIdentity creates the default identity of dd with passphrase pw
// and returns its address and passphrase file.
func newDefaultIdentity(t *testing.T, dd, pw string) (addr, pf string) {
	t.Helper()
	pf = passFile(t, pw)
	out, err := runCLI(t, dd, "identity", "new", "--passphrase-file", pf, "--set-default")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out), pf
}
