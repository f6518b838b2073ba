// Package mysttest runs myst subprocesses in cmd/myst's tests: the test
// binary acts as the myst binary when RunMainEnv is set (see the TestMain
// of cmd/myst), so a test starts real daemon and service processes
// (Start, StartDaemon, StartService) and reads their output lines; it
// also holds what those tests share around them: a devnet, free ports,
// Tequilapi login and polls, and the consumer that checks a provider.
package mysttest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/openmyst/openmyst/internal/servetest"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/tequilapi"
)

// RunMainEnv set to "1" makes the cmd/myst test binary run main().
const RunMainEnv = "MYST_TEST_RUN_MAIN"

// Stream says which output of a subprocess arrives as lines.
type Stream int

const (
	// Stderr lines arrive; stdout is discarded.
	Stderr Stream = iota
	// Stdout lines arrive; stderr is kept and logged if the test fails.
	Stdout
)

// Start runs the test binary as `myst args...` with env added to the
// environment, and returns the process with the lines of stream. The
// process is killed at cleanup if it still runs.
func Start(t testing.TB, stream Stream, env []string, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), RunMainEnv+"=1"), env...)
	var out io.Reader
	var err error
	otherFile := filepath.Join(t.TempDir(), "stderr")
	if stream == Stdout {
		f, ferr := os.Create(otherFile)
		if ferr != nil {
			t.Fatal(ferr)
		}
		defer f.Close() // the child has its own copy
		cmd.Stderr = f
		out, err = cmd.StdoutPipe()
	} else {
		out, err = cmd.StderrPipe()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if stream == Stdout && t.Failed() {
			b, _ := os.ReadFile(otherFile)
			t.Logf("%s stderr:\n%s", strings.Join(args, " "), b)
		}
	})
	return cmd, lines
}

// StartDaemon starts `myst daemon` on the data dir dd with its Tequilapi
// on port, libp2p on loopback only and extra daemon flags args; its
// stderr lines arrive on the channel.
func StartDaemon(t testing.TB, dd string, port int, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	return Start(t, Stderr, nil, append([]string{"--data-dir", dd, "--tequilapi.port", strconv.Itoa(port), "--keystore.light-scrypt", "daemon",
		"--p2p.listen", "/ip4/127.0.0.1/tcp/0", "--p2p.nat=false"}, args...)...)
}

// StartBootstrapDaemon starts `myst daemon --p2p.bootstrapper` on the
// data dir dd with its Tequilapi on port and waits until it has started;
// it returns the process, its remaining stderr lines and the multiaddr
// it is reachable at.
func StartBootstrapDaemon(t testing.TB, dd string, port int) (*exec.Cmd, <-chan string, string) {
	t.Helper()
	cmd, lines := StartDaemon(t, dd, port, "--p2p.bootstrapper")
	var seen []string
	l := WaitLine(t, lines, "p2p: reachable as", &seen)
	addr := l[strings.Index(l, "addr=")+len("addr="):]
	WaitLine(t, lines, "node started", &seen)
	return cmd, lines, addr
}

// StartService starts `myst service` on the data dir dd with its
// Tequilapi on apiPort and the service flags args; its stdout lines
// arrive on the channel, its stderr is logged if the test fails.
func StartService(t testing.TB, dd string, apiPort int, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	return Start(t, Stdout, nil, append([]string{"--data-dir", dd, "--tequilapi.port", strconv.Itoa(apiPort), "--keystore.light-scrypt", "service"}, args...)...)
}

// WaitLine returns the first line containing substr (within 30 s), adding
// the lines read to seen (shown when it fails).
func WaitLine(t testing.TB, lines <-chan string, substr string, seen *[]string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("daemon exited before printing %q; output:\n%s", substr, strings.Join(*seen, "\n"))
			}
			*seen = append(*seen, l)
			if strings.Contains(l, substr) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q from daemon; output:\n%s", substr, strings.Join(*seen, "\n"))
		}
	}
}

// Stop sends SIGTERM, drains lines and checks the process exits cleanly.
func Stop(t testing.TB, cmd *exec.Cmd, lines <-chan string) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range lines { // drain until the process closes its output
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
}

// FreePort returns a TCP port free on 127.0.0.1 a moment ago (it is
// servetest.FreePort, kept under this name for cmd/myst's many callers).
func FreePort(t testing.TB) int {
	t.Helper()
	return servetest.FreePort(t)
}

// Login logs in to the Tequilapi at base with dataDir's password file and
// returns the token.
func Login(t testing.TB, base, dataDir string) string {
	t.Helper()
	pw, err := tequilapi.ReadPassword(filepath.Join(dataDir, tequilapi.PasswordFileName))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"username": tequilapi.Username, "password": pw})
	resp, err := http.Post(base+"/auth/login", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Token == "" {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	return r.Token
}

// GetAuth GETs url with the bearer token and returns the body and status.
func GetAuth(t testing.TB, url, token string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// WebServer serves body to every request on 127.0.0.1 until the test
// ends and returns its port.
func WebServer(t testing.TB, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

// Devnet starts an in-process devnet without providers (the test runs
// its own), closed when the test ends.
func Devnet(ctx context.Context, t testing.TB) *node.Devnet {
	t.Helper()
	d, err := node.StartDevnet(ctx, node.DevnetConfig{DataDir: t.TempDir(), Providers: []node.ProviderSpec{}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// ServiceArgs are the flags of `myst service` that point it at the devnet
// d (chain, deployment, hermes, bootstrap peer) with the passphrase file
// pf, a libp2p listener on loopback and a free WireGuard port, followed by
// extra.
func ServiceArgs(d *node.Devnet, pf string, extra ...string) []string {
	return append([]string{"--passphrase-file", pf, "--chain.rpc", d.Chain.URL(), "--chain.deployment", d.DeploymentPath(), "--hermes.url", d.Hermes.URL(),
		"--p2p.bootstrap", d.BootstrapAddrs()[0], "--p2p.listen", "/ip4/127.0.0.1/tcp/0", "--wg.port", "0"}, extra...)
}

// Proposals starts an in-process consumer on d, closed when the test
// ends, and waits until it knows n proposals from providers in country.
func Proposals(ctx context.Context, t testing.TB, d *node.Devnet, country string, n int) (*node.Consumer, []market.Proposal) {
	t.Helper()
	c, err := d.StartConsumer(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ps, err := c.WaitProposals(ctx, market.Filter{Country: country}, n)
	if err != nil {
		t.Fatal(err)
	}
	return c, ps
}

// WaitEarned polls GET /earnings of the Tequilapi at base until it
// reports earned exactly paid, failing t after 20 s.
func WaitEarned(t testing.TB, base, token string, paid *big.Int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, code := GetAuth(t, base+"/earnings", token)
		if code == 200 && strings.Contains(b, `"earned":"`+paid.String()+`"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /earnings: %d %s, want earned %s", code, b, paid)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// DataDirPeer returns the libp2p peer id of the host key in the data dir
// dd (created if absent), the peer a daemon on dd runs as.
func DataDirPeer(t testing.TB, dd string) peer.ID {
	t.Helper()
	key, err := p2p.LoadOrCreateKey(filepath.Join(dd, p2p.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
