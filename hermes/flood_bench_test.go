package hermes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/payments"
)

// slowChain adds a fixed latency to every consumer channel read, standing
// in for a JSON-RPC round trip to an EVM node (which costs the hermes
// waiting, not CPU).
type slowChain struct {
	Chain
	delay time.Duration
}

func (c *slowChain) ConsumerChannel(ctx context.Context, consumer common.Address) (ChannelInfo, error) {
	t := time.NewTimer(c.delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ChannelInfo{}, ctx.Err()
	case <-t.C:
	}
	return c.Chain.ConsumerChannel(ctx, consumer)
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip, so the hermes sees a distinct source per client.
func clientFrom(ip string, conns int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: conns}, Timeout: 30 * time.Second}
}

// floodPhase is one measured run: honest consumers offer their messages
// open-loop at a fixed rate while, optionally, flooders send as fast as
// they can. The honest latencies include the rare rejected message.
type floodPhase struct {
	name                string
	offered, accepted   int
	rejected            map[string]int
	p50, p99            time.Duration
	elapsed             time.Duration
	floodSent, flood429 int64
	floodOther          int64
	rssMiB              []float64     // the hermes process's RSS, sampled
	cpu                 time.Duration // the hermes process's CPU over the phase
}

func (p floodPhase) acceptedRate() float64 {
	if p.offered == 0 {
		return 1
	}
	return float64(p.accepted) / float64(p.offered)
}

// BenchmarkFlood measures whether a flood can starve the hermes (issue 10
// §3): 200 honest consumers offer MYST_FLOOD_RATE (default 1,000) exchange
// messages per second over HTTP from 20 loopback source addresses (50/s
// each), alone (the baseline) and, alternating with it over
// MYST_FLOOD_ROUNDS (default 3) rounds of the same run, while 20 flooders,
// each from its own loopback address with 2 connections, send as fast as
// they can: 10 send junk (broken JSON, unknown fields, oversized bodies,
// corrupted signatures), 10 send validly signed messages of 200
// unregistered keys each. It reports the honest accepted share (goal >=
// 95%), the median honest p99 under the flood against the median baseline
// p99 (goal <= 2x), and the hermes's RSS and CPU over each phase (goal:
// flat RSS). MYST_FLOOD_SECONDS sets a phase's length (default 4);
// MYST_FLOOD_UNLIMITED=1 adds a flood phase with the rate limits and
// negative cache turned off, for comparison; MYST_FLOOD_ONLY=20s adds a
// last phase of the flood alone (no honest traffic, whose store grows),
// to see the hermes's RSS under the flood by itself. The hermes runs in a child
// process (this test binary re-executed), a fresh one per phase: the fake
// chain answers after 2 ms, the store is SQLite (synchronous=FULL).
// Flooders and honest clients run in this process, on the same 2 cores.
//
//	go test -run '^$' -bench Flood -benchtime 1x ./hermes/
func BenchmarkFlood(b *testing.B) {
	rate := 1000.0
	if v, err := strconv.ParseFloat(os.Getenv("MYST_FLOOD_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	secs := 4.0
	if v, err := strconv.ParseFloat(os.Getenv("MYST_FLOOD_SECONDS"), 64); err == nil && v > 0 {
		secs = v
	}
	const consumers, honestSources, flooders, floodKeys = 200, 20, 20, 200
	perConsumer := int(rate*secs) / consumers

	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("MYST_FLOOD_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	type phase struct {
		name             string
		flood, unlimited bool
		floodOnly        time.Duration // no honest traffic: the flood alone this long
	}
	// Baseline and flood phases alternate, so both see the same machine
	// (on a shared machine its load moves more than a flood does).
	var phases []phase
	for i := 1; i <= rounds; i++ {
		phases = append(phases, phase{fmt.Sprintf("baseline %d", i), false, false, 0}, phase{fmt.Sprintf("flood %d", i), true, false, 0})
	}
	if os.Getenv("MYST_FLOOD_UNLIMITED") == "1" {
		phases = append(phases, phase{"flood, limits off", true, true, 0})
	}
	if v, err := time.ParseDuration(os.Getenv("MYST_FLOOD_ONLY")); err == nil && v > 0 {
		phases = append(phases, phase{"flood alone", true, false, v})
	}
	// Every phase has its own hermes process, so the same honest messages
	// start cold in each.
	honest := benchWorkload(b, consumers, 20, perConsumer)
	var results []floodPhase
	b.ResetTimer()
	for pi, ph := range phases {
		b.StopTimer()
		var floodBodies [][][]byte
		if ph.flood {
			floodBodies = floodWork(b, fmt.Sprint("phase", pi), flooders, floodKeys)
		}
		runtime.GC()
		b.StartTimer()
		work := honest
		if ph.floodOnly > 0 {
			work = nil
		}
		r := runFloodPhase(b, ph.name, ph.unlimited, rate, work, honestSources, floodBodies, ph.floodOnly)
		results = append(results, r)
	}
	b.StopTimer()

	var baseP99, floodP99, baseCPU, floodCPU []float64
	worstAccepted := 1.0
	for i, r := range results[:2*rounds] {
		if i%2 == 0 {
			baseP99 = append(baseP99, float64(r.p99))
			baseCPU = append(baseCPU, r.cpu.Seconds())
		} else {
			floodP99 = append(floodP99, float64(r.p99))
			floodCPU = append(floodCPU, r.cpu.Seconds())
			worstAccepted = min(worstAccepted, r.acceptedRate())
		}
	}
	// Printed, not logged: the testing package keeps only the first lines
	// of a benchmark's log.
	logf := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	base := time.Duration(median(baseP99))
	for _, r := range results {
		line := fmt.Sprintf("%-18s honest offered %d at %.0f/s: accepted %.1f%%, p50 %v, p99 %v (%.2fx median baseline p99)",
			r.name+":", r.offered, rate, 100*r.acceptedRate(), r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond),
			float64(r.p99)/float64(base))
		if len(r.rejected) > 0 {
			line += fmt.Sprintf("; honest rejections %v", r.rejected)
		}
		logf("%s", line)
		logf("%-18s hermes CPU %.2f s over %.1f s; hermes RSS MiB %s", "", r.cpu.Seconds(), r.elapsed.Seconds(), spark(r.rssMiB))
		if r.floodSent > 0 {
			logf("%-18s flood sent %d (%.0f/s): %d answered 429, %d other rejections",
				"", r.floodSent, float64(r.floodSent)/r.elapsed.Seconds(), r.flood429, r.floodOther)
		}
	}
	ratio := median(floodP99) / median(baseP99)
	logf("median of %d rounds: honest p99 %v under the flood vs %v without: %.2fx (goal <= 2x); worst honest accepted %.1f%% (goal >= 95%%)",
		rounds, time.Duration(median(floodP99)).Round(10*time.Microsecond), base.Round(10*time.Microsecond), ratio, 100*worstAccepted)
	logf("median hermes CPU per phase: %.2f s under the flood vs %.2f s without: %.2fx",
		median(floodCPU), median(baseCPU), median(floodCPU)/median(baseCPU))
	b.ReportMetric(median(floodCPU)/median(baseCPU), "cpu-x-baseline")
	b.ReportMetric(100*worstAccepted, "honest-accepted-%")
	b.ReportMetric(ratio, "p99-x-baseline")
	b.ReportMetric(median(floodP99)/1e6, "flood-p99-ms")
	b.ReportMetric(median(baseP99)/1e6, "baseline-p99-ms")
	logf("load average %s", loadAverage())
}

func median(xs []float64) float64 {
	ys := append([]float64(nil), xs...)
	slices.Sort(ys)
	if len(ys) == 0 {
		return 0
	}
	return ys[len(ys)/2]
}

// floodWork builds each flooder's bodies: even flooders junk, odd ones
// validly signed messages of `keys` unregistered identities.
func floodWork(b *testing.B, tag string, flooders, keys int) [][][]byte {
	out := make([][][]byte, flooders)
	prov := testSigner("flood provider 0").Address()
	for f := 0; f < flooders; f++ {
		if f%2 == 0 {
			good, err := json.Marshal(msg(b, testSigner(fmt.Sprint("junk signer", tag, f)), prov, 1, 1, 1, secret("junk")))
			if err != nil {
				b.Fatal(err)
			}
			var wire map[string]any
			if err := json.Unmarshal(good, &wire); err != nil {
				b.Fatal(err)
			}
			sig := []byte(wire["signature"].(string))
			sig[10] ^= 1 // still hex, another r: recovers to someone else or fails
			wire["signature"] = string(sig)
			badSig, err := json.Marshal(wire)
			if err != nil {
				b.Fatal(err)
			}
			out[f] = [][]byte{
				[]byte(`{"promise":`),
				[]byte(`{"junk":true}`),
				bytes.Repeat([]byte("x"), maxBody+1),
				badSig,
			}
			continue
		}
		for k := 0; k < keys; k++ {
			m := msg(b, testSigner(fmt.Sprint("flood stranger ", tag, f, " ", k)), prov, 1, 1, 1, secret(fmt.Sprint(tag, f, k)))
			body, err := json.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			out[f] = append(out[f], body)
		}
	}
	return out
}

// runFloodPhase runs one phase on a fresh hermes child: honest work at
// rate from `sources` addresses while the flooders send flood; without
// honest work, the flood alone for floodOnly.
func runFloodPhase(b *testing.B, name string, unlimited bool, rate float64, work [][]*payments.ExchangeMessage, sources int, flood [][][]byte, floodOnly time.Duration) floodPhase {
	h := startFloodChild(b, len(work), unlimited)
	defer h.stop()
	url := "http://" + h.addr + "/v1/exchange"

	r := floodPhase{name: name, rejected: map[string]int{}}
	// The hermes process's RSS and CPU, sampled.
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	cpu0 := h.cpu()
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			r.rssMiB = append(r.rssMiB, h.rssMiB())
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()

	// Flooders: as fast as they can, two connections each.
	floodCtx, stopFlood := context.WithCancel(context.Background())
	var fwg sync.WaitGroup
	var sent, limited, other atomic.Int64
	for f, bodies := range flood {
		hc := clientFrom(fmt.Sprintf("127.0.2.%d", f+1), 2)
		for conn := 0; conn < 2; conn++ {
			fwg.Add(1)
			go func() {
				defer fwg.Done()
				for i := conn; floodCtx.Err() == nil; i++ {
					req, _ := http.NewRequestWithContext(floodCtx, http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
					req.Header.Set("Content-Type", "application/json")
					res, err := hc.Do(req)
					if err != nil {
						if floodCtx.Err() == nil {
							time.Sleep(time.Millisecond) // connection refused/reset: try again
						}
						continue
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					sent.Add(1)
					if res.StatusCode == http.StatusTooManyRequests {
						limited.Add(1)
					} else {
						other.Add(1)
					}
				}
			}()
		}
		defer hc.CloseIdleConnections()
	}
	if len(flood) > 0 {
		time.Sleep(500 * time.Millisecond) // the flood is in full swing before the honest start
	}

	// Honest consumers, open loop (latency from each message's due time).
	honest := make([]*http.Client, sources)
	for i := range honest {
		honest[i] = clientFrom(fmt.Sprintf("127.0.1.%d", i+1), 64)
		defer honest[i].CloseIdleConnections()
	}
	var next, accepted atomic.Int64
	var mu sync.Mutex
	var hr benchResult
	if len(work) == 0 { // flood only
		t0 := time.Now()
		time.Sleep(floodOnly)
		hr.elapsed = time.Since(t0)
	} else {
		hr = driveRate(b, work, rate, func(m *payments.ExchangeMessage) error {
			rep, err := postExchange(honest[next.Add(1)%int64(sources)], h.addr, m)
			code := "transport error"
			switch {
			case err == nil && rep.status == http.StatusOK:
				accepted.Add(1)
				return nil
			case err == nil:
				code = string(rep.code)
			}
			mu.Lock()
			r.rejected[code]++
			mu.Unlock()
			return nil
		})
	}
	r.elapsed = hr.elapsed
	stopFlood()
	fwg.Wait()
	r.cpu = h.cpu() - cpu0
	close(stopSampling)
	<-sampleDone
	for c := range work {
		r.offered += len(work[c])
	}
	r.accepted = int(accepted.Load())
	r.p50, r.p99 = hr.p50, hr.p99
	r.floodSent, r.flood429, r.floodOther = sent.Load(), limited.Load(), other.Load()
	return r
}

// Environment of the hermes child process of BenchmarkFlood.
const (
	floodChildEnv          = "HERMES_FLOOD_CHILD_DB"
	floodChildConsumersEnv = "HERMES_FLOOD_CHILD_CONSUMERS"
	floodChildUnlimitedEnv = "HERMES_FLOOD_CHILD_UNLIMITED"
)

// runFloodChildIfAsked runs BenchmarkFlood's hermes when the test binary is
// re-executed as its child: default limits (none with the unlimited
// variable), a fake chain that answers after 2 ms and knows the first
// HERMES_FLOOD_CHILD_CONSUMERS consumers of benchWorkload as registered,
// SQLite at HERMES_FLOOD_CHILD_DB. It prints "ADDR host:port" and serves
// until SIGTERM.
func runFloodChildIfAsked() bool {
	dsn := os.Getenv(floodChildEnv)
	if dsn == "" {
		return false
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := runFloodChild(ctx, dsn); err != nil {
		fmt.Fprintln(os.Stderr, "flood child:", err)
		os.Exit(1)
	}
	return true
}

func runFloodChild(ctx context.Context, dsn string) error {
	n, err := strconv.Atoi(os.Getenv(floodChildConsumersEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", floodChildConsumersEnv, err)
	}
	var limits Limits
	if os.Getenv(floodChildUnlimitedEnv) == "1" {
		limits = Limits{SourceRate: -1, RejectPenalty: -1, IdentityRate: -1, NegativeCacheTTL: time.Nanosecond}
	}
	st, err := store.OpenSQLite(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	fc := newFakeChain(testHermes)
	for c := 0; c < n; c++ {
		fc.register(benchConsumer(c).Address(), 1<<62)
	}
	reg := prometheus.NewRegistry()
	svc, err := New(Config{ChainID: testChainID, HermesID: testHermes, Operator: testSigner("operator"), SettleInterval: time.Hour,
		Metrics: NewMetrics(reg), Log: slog.New(slog.DiscardHandler), Limits: limits}, st, &slowChain{Chain: fc, delay: 2 * time.Millisecond})
	if err != nil {
		return err
	}
	return serveChild(ctx, svc, reg)
}

// floodChild is a running hermes child process.
type floodChild struct {
	cmd  *exec.Cmd
	addr string
}

func startFloodChild(b *testing.B, consumers int, unlimited bool) *floodChild {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), floodChildEnv+"="+filepath.Join(b.TempDir(), "hermes.db"), floodChildConsumersEnv+"="+strconv.Itoa(consumers))
	if unlimited {
		cmd.Env = append(cmd.Env, floodChildUnlimitedEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	return &floodChild{cmd: cmd, addr: childAddr(b, cmd, out, "hermes child")}
}

// stop ends the child with SIGTERM and waits for it.
func (c *floodChild) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
}

// rssMiB is the child's resident set size (Linux; 0 elsewhere).
func (c *floodChild) rssMiB() float64 {
	return float64(testenv.RSSKiB(c.cmd.Process.Pid)) / 1024
}

// cpu is the child's user+system CPU time so far (Linux; 0 elsewhere).
func (c *floodChild) cpu() time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name: state is field 3,
	// utime and stime are fields 14 and 15, in clock ticks (100 Hz).
	rest := string(raw[bytes.LastIndexByte(raw, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// spark summarizes samples: the first, the last and the values at each
// quarter of the phase between them.
func spark(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	var b strings.Builder
	for q := 0; q <= 4; q++ {
		if q > 0 {
			b.WriteString(" -> ")
		}
		fmt.Fprintf(&b, "%.1f", xs[q*(len(xs)-1)/4])
	}
	fmt.Fprintf(&b, " (%d samples)", len(xs))
	return b.String()
}

// benchConsumer is consumer c of benchWorkload.
func benchConsumer(c int) *identity.KeySigner { return testSigner(fmt.Sprint("bench consumer ", c)) }
