// Package testenv is the one place where a test decides that this machine
// cannot run it: no root, no network namespaces, no /dev/net/tun, a missing
// tool (nft, ip, wireguard-go) or no PostgreSQL. Each Require* helper skips
// the test with the reason, except when OPENMYST_REQUIRE_NETNS=1 (CI, as
// root; see .ci/run), where a missing capability fails the test instead:
// a broken runner must not turn the namespace, kernel and PostgreSQL
// suites into silent skips.
//
// Long and Timeout are the preamble of a slow test: skipped with -short,
// bounded by a context that ends with the test.
//
// A convention test (TestSkipsGoThroughTestenv) fails when a test in the
// tree skips for one of these reasons without going through this package.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns the helpers' skips into
// failures when set to "1".
const RequireEnv = "OPENMYST_REQUIRE_NETNS"

// PostgresEnv is the environment variable holding the DSN of the test
// PostgreSQL (scripts/postgres-test.sh prints it).
const PostgresEnv = "MYST_TEST_POSTGRES_DSN"

// Required reports whether skipping for a missing capability is forbidden.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// SkipOrFail skips tb with the formatted reason, or fails it when
// Required. Use it for a capability the Require* helpers do not cover.
func SkipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	reason := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatalf("%s (and %s=1 forbids skipping)", reason, RequireEnv)
	}
	tb.Skip(reason)
}

// RootError reports why the process lacks root, or nil.
func RootError() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN); CI runs the tests as root")
	}
	return nil
}

// ToolsError reports the first of tools missing from PATH, or nil.
func ToolsError(tools ...string) error {
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("needs %s: %w", t, err)
		}
	}
	return nil
}

// NetnsError reports why network namespaces cannot be created here (no
// root or no iproute2 ip command), or nil. It creates nothing.
func NetnsError() error {
	if err := RootError(); err != nil {
		return fmt.Errorf("network namespace tests: %w", err)
	}
	if err := ToolsError("ip"); err != nil {
		return fmt.Errorf("network namespace tests: %w (iproute2)", err)
	}
	return nil
}

// RequireRoot skips (or, when Required, fails) tb unless it runs as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if err := RootError(); err != nil {
		SkipOrFail(tb, "%v", err)
	}
}

// RequireTools skips (or fails) tb unless every tool is in PATH.
func RequireTools(tb testing.TB, tools ...string) {
	tb.Helper()
	if err := ToolsError(tools...); err != nil {
		SkipOrFail(tb, "%v", err)
	}
}

// RequireNetns skips (or fails) tb unless network namespaces can be made:
// root and iproute2's ip.
func RequireNetns(tb testing.TB) {
	tb.Helper()
	if err := NetnsError(); err != nil {
		SkipOrFail(tb, "%v", err)
	}
}

// RequireTUN skips (or fails) tb unless /dev/net/tun exists.
func RequireTUN(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		SkipOrFail(tb, "needs /dev/net/tun: %v", err)
	}
}

// RequirePostgres returns the DSN of the test PostgreSQL from
// MYST_TEST_POSTGRES_DSN, or skips (or fails) tb when it is unset.
func RequirePostgres(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		SkipOrFail(tb, "%s unset: start one with scripts/postgres-test.sh (make postgres)", PostgresEnv)
	}
	return dsn
}

// nobodyEnv marks the copy of a test binary that AsNobody runs.
const nobodyEnv = "OPENMYST_TESTENV_AS_NOBODY"

// AsNobody lets a test that checks behaviour without root (a "needs root"
// refusal) run on a root CI instead of skipping there. Not root, it
// returns false and the caller runs its checks inline. As root, it runs
// the calling test again — alone, in a copy of the test binary, as user
// nobody (uid and gid 65534) — fails t if that run fails or runs no test,
// and returns true: the caller then returns.
func AsNobody(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	if os.Getenv(nobodyEnv) == "1" {
		t.Fatal("testenv.AsNobody: still root in the nobody run")
	}
	exe, dir := NobodyCopy(t, "nobody.test")
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := exec.CommandContext(t.Context(), exe, "-test.run", strings.Join(parts, "/"), "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), nobodyEnv+"=1", "TMPDIR="+dir, "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s as nobody: %v\n%s", t.Name(), err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+parts[0][1:len(parts[0])-1]) {
		t.Fatalf("%s as nobody ran no test:\n%s", t.Name(), out)
	}
	t.Logf("ran as nobody:\n%s", out)
	return true
}

// NobodyCopy copies the running test binary, as name, into a new
// directory that every user may write (removed when tb ends) and returns
// the copy and the directory: the test binary's own directory is private
// to root, so a process run as nobody runs the copy.
func NobodyCopy(tb testing.TB, name string) (exe, dir string) {
	tb.Helper()
	dir, err := os.MkdirTemp("", "openmyst-nobody-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		tb.Fatal(err)
	}
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		tb.Fatal(err)
	}
	exe = filepath.Join(dir, name)
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		tb.Fatal(err)
	}
	return exe, dir
}

// ChromiumEnv names a chromium binary for browser tests (default: chromium
// on $PATH, else /usr/bin/chromium, Debian's package).
const ChromiumEnv = "MYST_CHROMIUM"

// RequireChromium returns the chromium binary the browser tests drive,
// skipping tb (failing it when Required) when there is none.
func RequireChromium(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	SkipOrFail(tb, "needs chromium (apt-get install chromium, or set %s)", ChromiumEnv)
	return ""
}

// BenchEnv set (to anything) runs the benchmarks written as tests: whole
// devnets or process fleets measured for a minute or more, never part of
// a default run.
const BenchEnv = "MYST_BENCH"

// RequireBench skips tb unless BenchEnv is set. Unlike the capability
// helpers it skips under Required too: a benchmark is asked for, not a
// capability the runner must have.
func RequireBench(tb testing.TB) {
	tb.Helper()
	if os.Getenv(BenchEnv) == "" {
		tb.Skip("benchmark; set " + BenchEnv + "=1")
	}
}

// EnvInt returns the positive integer in the environment variable name
// (a benchmark's size or duration), or def when it is unset or not a
// positive integer.
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// LogEnv set (to anything) makes Logger write debug logs to stderr.
const LogEnv = "MYST_TEST_LOG"

// Logger is a test's logger for the code under test: it discards
// everything, unless LogEnv is set, when it writes debug and up to stderr.
func Logger() *slog.Logger {
	if os.Getenv(LogEnv) != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// RSSKiB is the resident set size of process pid in KiB (0 means this
// process), read from /proc; 0 when it cannot be read (not Linux, or the
// process is gone). Benchmarks report it, never assert on it alone.
func RSSKiB(pid int) uint64 {
	if pid == 0 {
		pid = os.Getpid()
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// Timeout returns a context that ends after d, or when tb ends (before
// its cleanups run, as a deferred cancel would).
func Timeout(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(tb.Context(), d)
	tb.Cleanup(cancel)
	return ctx
}

// Long skips tb under -short (why says what the test runs: a devnet, a
// daemon, processes in namespaces) and otherwise returns Timeout(tb, d).
func Long(tb testing.TB, why string, d time.Duration) context.Context {
	tb.Helper()
	if testing.Short() {
		tb.Skip(why)
	}
	return Timeout(tb, d)
}

// Until polls cond every 20 ms until it holds, for at most timeout, and
// reports whether it held.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// WaitFor is Until that fails tb when cond does not hold within timeout
// (what says what was awaited).
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Until(timeout, cond) {
		tb.Fatalf("timed out after %s waiting for: %s", timeout, what)
	}
}

// GoFiles returns the .go files below root, for tests that check a
// convention across the module. It does not descend into directories
// named in skip, nor node_modules or .git, and fails tb if the walk does.
func GoFiles(tb testing.TB, root string, skip ...string) []string {
	tb.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "node_modules" || n == ".git" || slices.Contains(skip, n) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("walk %s: %v", root, err)
	}
	return files
}
