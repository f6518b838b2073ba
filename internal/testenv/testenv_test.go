package testenv

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recTB records whether a helper skipped or failed; both end the calling
// goroutine like the real ones do.
type recTB struct {
	testing.TB
	skipped, failed bool
}

func (r *recTB) Helper()               {}
func (r *recTB) Skip(...any)           { r.skipped = true; runtime.Goexit() }
func (r *recTB) Fatalf(string, ...any) { r.failed = true; runtime.Goexit() }

func run(f func(testing.TB)) *recTB {
	r := &recTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestSkipOrFailFollowsRequireEnv(t *testing.T) {
	t.Setenv(PostgresEnv, "")
	t.Setenv(RequireEnv, "")
	if r := run(func(tb testing.TB) { RequirePostgres(tb) }); !r.skipped || r.failed {
		t.Fatalf("without %s: skipped=%v failed=%v, want a skip", RequireEnv, r.skipped, r.failed)
	}
	t.Setenv(RequireEnv, "1")
	if r := run(func(tb testing.TB) { RequirePostgres(tb) }); r.skipped || !r.failed {
		t.Fatalf("with %s=1: skipped=%v failed=%v, want a failure", RequireEnv, r.skipped, r.failed)
	}
	if r := run(func(tb testing.TB) { RequireTools(tb, "no-such-tool-openmyst") }); !r.failed {
		t.Fatal("a missing tool did not fail under RequireEnv=1")
	}
	t.Setenv(PostgresEnv, "postgres://x")
	var dsn string
	if r := run(func(tb testing.TB) { dsn = RequirePostgres(tb) }); r.skipped || r.failed || dsn != "postgres://x" {
		t.Fatalf("with a DSN: skipped=%v failed=%v dsn=%q", r.skipped, r.failed, dsn)
	}
}

// TestConventionCatchesBareSkips proves the convention check flags the
// skips it is meant to and lets -short and marked skips through.
func TestConventionCatchesBareSkips(t *testing.T) {
	src := `package x

import (
	"os"
	"os/exec"
	"testing"
)

func TestA(t *testing.T) {
	if os.Getenv("MYST_TEST_POSTGRES_DSN") == "" {
		t.Skip("no database")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip(err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no tun: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("not root")
	}
	if err := os.Remove("x"); err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("slow, uses nft in namespaces")
	}
	if os.Geteuid() == 0 {
		// testenv:skip-ok: only meaningful without root
		t.Skip("root")
	}
	if os.Getenv("OPENMYST_REQUIRE_NETNS") != "1" {
		t.Skip("not on CI")
	}
}
`
	path := filepath.Join(t.TempDir(), "x_test.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := checkFile(t, path, "x_test.go")
	var lines []string
	for _, b := range bad {
		lines = append(lines, strings.SplitN(b, ":", 3)[1])
	}
	if got, want := strings.Join(lines, ","), "11,14,17,20,23,32,33"; got != want {
		t.Fatalf("flagged lines %s, want %s:\n%s", got, want, strings.Join(bad, "\n"))
	}
}

// TestAsNobody: as root the test reruns itself as nobody, where the uid
// really is 65534.
func TestAsNobody(t *testing.T) {
	if AsNobody(t) {
		return
	}
	if os.Getenv(nobodyEnv) == "1" && (os.Geteuid() != 65534 || os.Getegid() != 65534) {
		t.Fatalf("nobody run as uid %d gid %d", os.Geteuid(), os.Getegid())
	}
}

func TestEnvInt(t *testing.T) {
	const name = "OPENMYST_TESTENV_ENVINT"
	for _, c := range []struct {
		val  string
		want int
	}{{"", 7}, {"12", 12}, {"0", 7}, {"-3", 7}, {"x", 7}} {
		t.Setenv(name, c.val)
		if got := EnvInt(name, 7); got != c.want {
			t.Errorf("EnvInt with %q = %d, want %d", c.val, got, c.want)
		}
	}
}

func TestLoggerFollowsLogEnv(t *testing.T) {
	t.Setenv(LogEnv, "")
	if Logger().Enabled(context.Background(), slog.LevelError) {
		t.Error("Logger without " + LogEnv + " logs")
	}
	t.Setenv(LogEnv, "1")
	if !Logger().Enabled(context.Background(), slog.LevelDebug) {
		t.Error("Logger with " + LogEnv + "=1 drops debug logs")
	}
}

func TestRSSKiB(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc (not Linux): RSSKiB is 0 here by design")
	}
	if got := RSSKiB(0); got == 0 {
		t.Errorf("RSSKiB(0) = 0 for a running process")
	}
	if got := RSSKiB(os.Getpid()); got == 0 {
		t.Errorf("RSSKiB(own pid) = 0")
	}
	if got := RSSKiB(1 << 30); got != 0 {
		t.Errorf("RSSKiB of a pid that cannot exist = %d, want 0", got)
	}
}

func TestRequireBenchSkipsWithoutTheVariable(t *testing.T) {
	t.Setenv(BenchEnv, "")
	ran := false
	t.Run("bench", func(t *testing.T) {
		RequireBench(t)
		ran = true
	})
	if ran {
		t.Fatal("RequireBench did not skip without " + BenchEnv)
	}
	t.Setenv(BenchEnv, "1")
	t.Run("bench", func(t *testing.T) {
		RequireBench(t)
		ran = true
	})
	if !ran {
		t.Fatal("RequireBench skipped with " + BenchEnv + "=1")
	}
}

// TestLongEndsWithTheTest: Long's context is live while the test runs,
// ended before its cleanups, and Timeout's ends after its duration.
func TestLongEndsWithTheTest(t *testing.T) {
	var ctx context.Context
	t.Run("long", func(t *testing.T) {
		ctx = Long(t, "a slow test", time.Hour)
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > time.Hour {
			t.Errorf("deadline %v %v, want within an hour", dl, ok)
		}
		if ctx.Err() != nil {
			t.Errorf("context ended while the test runs: %v", ctx.Err())
		}
		t.Cleanup(func() {
			if ctx.Err() == nil {
				t.Error("context still live in the test's cleanups")
			}
		})
	})
	if testing.Short() {
		if ctx != nil {
			t.Fatal("Long did not skip under -short")
		}
		return
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("after the test: %v, want canceled", ctx.Err())
	}
	short := Timeout(t, time.Millisecond)
	<-short.Done()
	if !errors.Is(short.Err(), context.DeadlineExceeded) {
		t.Fatalf("after its timeout: %v, want deadline exceeded", short.Err())
	}
}

// TestGoFilesSkipsNamedDirs: GoFiles lists .go files only, and none
// below a skipped directory name.
func TestGoFilesSkipsNamedDirs(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"a.go", "b.txt", "sub/c_test.go", "skipme/d.go", "node_modules/e.go"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, f := range GoFiles(t, root, "skipme") {
		rel, _ := filepath.Rel(root, f)
		got = append(got, rel)
	}
	if strings.Join(got, ",") != "a.go,sub/c_test.go" {
		t.Fatalf("GoFiles = %v, want a.go and sub/c_test.go", got)
	}
}
