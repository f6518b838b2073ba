// Package testenv is the one place where a test decides that this machine
// cannot run it: no root, no network namespaces, no /dev/net/tun, a missing
// tool (nft, ip, wireguard-go) or no PostgreSQL. Each Require* helper skips
// the test with the reason, except when OPENMYST_REQUIRE_NETNS=1 (CI, as
// root; see .ci/run), where a missing capability fails the test instead:
// a broken runner must not turn the namespace, kernel and PostgreSQL
// suites into silent skips.
//
// A convention test (TestSkipsGoThroughTestenv) fails when a test in the
// tree skips for one of these reasons without going through this package.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
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
