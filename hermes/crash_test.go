package hermes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/hermes/store/pgtest"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/payments"
)

const childEnv = "HERMES_TEST_CHILD_DB"

// childProfileEnv names a file the child writes its CPU profile to when it
// is stopped with SIGTERM (MYST_BENCH_HERMES_CPUPROFILE in the benchmark).
const childProfileEnv = "HERMES_TEST_CHILD_CPUPROFILE"

// childStdinEnv makes the child also shut down when its stdin ends: a
// child under valgrind cannot take SIGTERM (callgrind asserts on Go's
// signal handling), so a wrapped child is stopped by closing the pipe.
const childStdinEnv = "HERMES_TEST_CHILD_STOP_ON_EOF"

// runChildIfAsked runs a hermes HTTP server on a file-backed store when the
// test binary is re-executed as a child by the crash tests. It prints
// "ADDR host:port" and serves until killed or sent SIGTERM (or, with
// childStdinEnv set, until its stdin ends).
func runChildIfAsked() bool {
	dsn := os.Getenv(childEnv)
	if dsn == "" {
		return false
	}
	childMain("child", func(ctx context.Context) error { return runChild(ctx, dsn) })
	return true
}

// childMain runs a child process's server, run, until SIGTERM (or, with
// childStdinEnv set, until its stdin ends), writing its CPU profile when
// childProfileEnv names a file; it exits 1 if run fails. what names the
// child in the error.
func childMain(what string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if os.Getenv(childStdinEnv) != "" {
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop() }()
	}
	if path := os.Getenv(childProfileEnv); path != "" {
		// Benchmarks profile the hermes process alone; stop() writes it.
		f, err := os.Create(path)
		if err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
			}
		}
	}
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(1)
	}
}

func runChild(ctx context.Context, dsn string) error {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	chain := newFakeChain(testHermes)
	chain.autoBalance = new(big.Int).Exp(big.NewInt(10), big.NewInt(30), nil)
	reg := prometheus.NewRegistry()
	// All the stream's requests come from 127.0.0.1 as fast as they can:
	// no rate limits here (flood_test.go tests them).
	svc, err := New(Config{ChainID: testChainID, HermesID: testHermes, Operator: testSigner("operator"), SettleInterval: time.Hour, Metrics: NewMetrics(reg), MaxBatch: 64, CommitDelay: benchCommitDelay(),
		Limits: Limits{SourceRate: -1, IdentityRate: -1}}, st, chain)
	if err != nil {
		return err
	}
	return serveChild(ctx, svc, reg)
}

// serveChild is a child process's hermes: it listens on a free loopback
// port, prints "ADDR host:port" for the parent (see childAddr), and runs
// and serves svc until ctx ends.
func serveChild(ctx context.Context, svc *Service, reg *prometheus.Registry) error {
	ln, err := listenChild()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	err = Serve(ctx, ln, svc.Handler(reg))
	wg.Wait()
	return err
}

// listenChild listens on a free loopback port and prints "ADDR host:port"
// for the parent (see childAddr).
func listenChild() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	return ln, nil
}

type child struct {
	cmd  *exec.Cmd
	addr string
	// stdin, when set, stops the child when closed (see childStdinEnv).
	stdin io.Closer
}

// childWrapEnv, when set, is a command the child runs under (its words
// put before the test binary), such as valgrind in
// bench/hermes/instructions.sh, which counts the hermes process alone.
const childWrapEnv = "MYST_BENCH_HERMES_WRAP"

// startChild starts a hermes child process (runChildIfAsked) on the
// store dsn.
func startChild(t testing.TB, dsn string) *child {
	t.Helper()
	return startChildEnv(t, childEnv+"="+dsn)
}

// startChildEnv re-executes the test binary with env (KEY=value, naming
// the kind of child: see TestMain) added to this process's environment,
// and returns it once it printed its address.
func startChildEnv(t testing.TB, env string) *child {
	t.Helper()
	args := append(strings.Fields(os.Getenv(childWrapEnv)), os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdin io.WriteCloser
	if len(args) > 2 {
		cmd.Env = append(cmd.Env, childStdinEnv+"=1")
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	c := &child{cmd: cmd, addr: childAddr(t, cmd, out, "child"), stdin: stdin}
	t.Cleanup(c.kill)
	return c
}

// childAddr starts cmd and returns the address its serveChild printed on
// out (then drained), failing tb, after killing it, if it printed none.
// what names the child in the failure.
func childAddr(tb testing.TB, cmd *exec.Cmd, out io.Reader, what string) string {
	tb.Helper()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		tb.Fatalf("%s did not start: %q %v", what, line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
}

// stop sends SIGTERM (or closes a wrapped child's stdin) and waits for
// the child to shut down.
func (c *child) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	wait := 30 * time.Second
	if c.stdin != nil {
		_ = c.stdin.Close()
		wait = 10 * time.Minute // valgrind runs the shutdown ~50x slower
	} else {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// kill sends SIGKILL: no shutdown code runs in the child.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

type exchangeReply struct {
	status int
	raw    []byte
	resp   api.ExchangeResponse
	code   Code
}

func postExchange(hc *http.Client, addr string, m *payments.ExchangeMessage) (*exchangeReply, error) {
	body, err := m.MarshalJSON()
	if err != nil {
		return nil, err
	}
	res, err := hc.Post("http://"+addr+"/v1/exchange", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	r := &exchangeReply{status: res.StatusCode, raw: raw}
	if res.StatusCode != http.StatusOK {
		var eb api.ErrorBody
		_ = json.Unmarshal(raw, &eb)
		r.code = eb.Error.Code
		return r, nil
	}
	var wire struct {
		Promise  json.RawMessage `json:"promise"`
		Replayed bool            `json:"replayed"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, err
	}
	p, err := payments.DecodePromise(wire.Promise)
	if err != nil {
		return nil, err
	}
	r.resp = api.ExchangeResponse{Promise: *p, Replayed: wire.Replayed}
	return r, nil
}

// crashWorkload is a set of consumers, each with a sequence of messages
// spread over a few providers and agreements.
type crashWorkload struct {
	perConsumer [][]*payments.ExchangeMessage
	wantEarned  map[common.Address]int64
	wantPromise map[common.Address]int64
}

func newCrashWorkload(t *testing.T, consumers, msgs, providers int) *crashWorkload {
	w := &crashWorkload{wantEarned: map[common.Address]int64{}, wantPromise: map[common.Address]int64{}}
	provs := make([]common.Address, providers)
	for i := range provs {
		provs[i] = testSigner(fmt.Sprint("crash provider ", i)).Address()
	}
	for c := 0; c < consumers; c++ {
		cs := testSigner(fmt.Sprint("crash consumer ", c))
		totals := map[int]int64{}
		var amount int64
		var seq []*payments.ExchangeMessage
		for i := 0; i < msgs; i++ {
			p := (c + i) % providers
			step := int64(1 + (c*7+i*3)%10)
			totals[p] += step
			amount += step
			w.wantEarned[provs[p]] += step
			seq = append(seq, msg(t, cs, provs[p], int64(1000+p), totals[p], amount, secret(fmt.Sprint("crash", c, i))))
		}
		w.wantPromise[cs.Address()] = amount
		w.perConsumer = append(w.perConsumer, seq)
	}
	return w
}

// TestKill9DuringExchangeStream: SIGKILL the hermes in the middle of a
// stream of exchange messages, restart it on the same database, and check
// that every acknowledged promise is still there, unchanged, that nothing
// was issued twice and that the totals match.
func TestKill9DuringExchangeStream(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testKill9(t, filepath.Join(t.TempDir(), "hermes.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := testenv.RequirePostgres(t)
		testKill9(t, pgtest.FreshSchema(t, dsn))
	})
}

func testKill9(t *testing.T, dsn string) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const consumers, msgs, providers = 16, 40, 4
	w := newCrashWorkload(t, consumers, msgs, providers)
	hc := &http.Client{Timeout: 10 * time.Second}

	acked := make([]map[int]*exchangeReply, consumers) // consumer -> msg index -> reply
	next := make([]int, consumers)                     // first message not yet acknowledged
	run := func(addr string, stopAfter int64) {
		var total atomic.Int64
		var wg sync.WaitGroup
		for c := 0; c < consumers; c++ {
			if acked[c] == nil {
				acked[c] = map[int]*exchangeReply{}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next[c] < msgs {
					if stopAfter > 0 && total.Load() >= stopAfter {
						return
					}
					r, err := postExchange(hc, addr, w.perConsumer[c][next[c]])
					if err != nil {
						return // the hermes died; the outcome of this message is unknown
					}
					if r.status != http.StatusOK {
						t.Errorf("consumer %d message %d: %d %s", c, next[c], r.status, r.raw)
						return
					}
					acked[c][next[c]] = r
					next[c]++
					total.Add(1)
				}
			}()
		}
		wg.Wait()
	}

	ch := startChild(t, dsn)
	killed := make(chan struct{})
	go func() {
		// Kill mid-stream, while requests are in flight.
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			if progress(ch.addr) >= 150 {
				break
			}
		}
		ch.kill()
		close(killed)
	}()
	run(ch.addr, 0)
	<-killed
	if t.Failed() {
		return
	}
	before := 0
	for c := range acked {
		before += len(acked[c])
	}
	if before == 0 || before >= consumers*msgs {
		t.Fatalf("kill did not land mid-stream: %d of %d acknowledged", before, consumers*msgs)
	}
	beforeKill := make([]map[int]*exchangeReply, consumers)
	for c := range acked {
		beforeKill[c] = map[int]*exchangeReply{}
		for i, r := range acked[c] {
			beforeKill[c][i] = r
		}
	}

	ch2 := startChild(t, dsn)
	// Every promise acknowledged before the kill is still there, unchanged.
	for c := range beforeKill {
		for i, r := range beforeKill[c] {
			again, err := postExchange(hc, ch2.addr, w.perConsumer[c][i])
			if err != nil || again.status != http.StatusOK || !again.resp.Replayed || !again.resp.Promise.Equal(&r.resp.Promise) {
				t.Fatalf("consumer %d message %d after restart: %+v %v (acked %s)", c, i, again, err, r.raw)
			}
		}
	}
	run(ch2.addr, 0) // finish the stream, resending the in-flight messages
	ch2.kill()

	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stats, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Exchanges != consumers*msgs {
		t.Fatalf("stored %d exchanges, want exactly %d", stats.Exchanges, consumers*msgs)
	}
	seen := map[string]bool{}
	for c := range w.perConsumer {
		for i, m := range w.perConsumer[c] {
			d, _ := m.Digest()
			e, err := st.ExchangeByDigest(context.Background(), m.Promise.Hashlock, d)
			if err != nil {
				t.Fatalf("consumer %d message %d missing: %v", c, i, err)
			}
			r := acked[c][i]
			if r == nil || !e.HermesPromise.Equal(&r.resp.Promise) {
				t.Fatalf("consumer %d message %d: stored promise differs from acknowledged", c, i)
			}
			key := e.Provider.Hex() + "/" + e.HermesPromise.Amount.String()
			if seen[key] {
				t.Fatalf("hermes promise amount %s issued twice to %s", e.HermesPromise.Amount, e.Provider.Hex())
			}
			seen[key] = true
		}
	}
	for p, want := range w.wantEarned {
		ps, err := st.Provider(context.Background(), p)
		if err != nil || ps.Earned.Int64() != want {
			t.Fatalf("provider %s earned %v, want %d (%v)", p.Hex(), ps.Earned, want, err)
		}
	}
	for c, want := range w.wantPromise {
		cs, _, err := st.Consumer(context.Background(), c)
		if err != nil || cs.Promised.Int64() != want {
			t.Fatalf("consumer %s promised %v, want %d (%v)", c.Hex(), cs.Promised, want, err)
		}
	}
	t.Logf("killed after %d acknowledged messages; %d total, all present after restart", before, consumers*msgs)
}

// progress reads the child's accepted counter from /metrics.
func progress(addr string) int {
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "hermes_exchange_accepted_total ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(line, "hermes_exchange_accepted_total "), &v)
			return int(v)
		}
	}
	return 0
}
