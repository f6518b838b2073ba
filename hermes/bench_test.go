package hermes

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/hermes/store/pgtest"
	"github.com/openmyst/openmyst/payments"
)

// benchWorkload pre-signs msgsPer messages for each of `consumers`
// consumers, spread over `providers` providers.
func benchWorkload(b *testing.B, consumers, providers, msgsPer int) [][]*payments.ExchangeMessage {
	provs := make([]common.Address, providers)
	for i := range provs {
		provs[i] = testSigner(fmt.Sprint("bench provider ", i)).Address()
	}
	out := make([][]*payments.ExchangeMessage, consumers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for c := 0; c < consumers; c++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cs := benchConsumer(c)
			totals := map[int]int64{}
			var amount int64
			for i := 0; i < msgsPer; i++ {
				p := (c*13 + i) % providers
				totals[p] += 10
				amount += 10
				out[c] = append(out[c], msg(b, cs, provs[p], int64(p), totals[p], amount, secret(fmt.Sprint("bench", c, i))))
			}
		}()
	}
	wg.Wait()
	return out
}

type benchResult struct {
	n        int
	elapsed  time.Duration
	p50, p99 time.Duration
	// cpu is the process CPU time used during the run.
	cpu time.Duration
}

func (r benchResult) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

// report reports r's rate, latencies and CPU per message as b's metrics,
// each rate and CPU also as a ratio to verify (the verify-only baseline
// of the same run).
func (r benchResult) report(b *testing.B, verify benchResult) {
	b.ReportMetric(r.rate(), "msg/s")
	b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(r.rate()/verify.rate(), "x-verify-only")
	b.ReportMetric(r.cpuPerMsg(), "cpu-us/msg")
	b.ReportMetric(r.cpuPerMsg()/verify.cpuPerMsg(), "cpu-x-verify-only")
}

// cpuPerMsg is the process CPU time per message in microseconds.
func (r benchResult) cpuPerMsg() float64 {
	if r.n == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / float64(r.n)
}

// summarize is the result of a run that took elapsed and cpu, with the
// latencies lat of its senders.
func summarize(lat [][]time.Duration, elapsed, cpu time.Duration) benchResult {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := benchResult{n: len(all), elapsed: elapsed, cpu: cpu}
	if len(all) > 0 {
		r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r
}

// driveAsAsked runs driveRate at MYST_BENCH_RATE messages a second when
// that is set, else drive with workers in flight, and says which.
func driveAsAsked(b *testing.B, work [][]*payments.ExchangeMessage, workers int, send func(*payments.ExchangeMessage) error) (benchResult, string) {
	if rate, err := strconv.ParseFloat(os.Getenv("MYST_BENCH_RATE"), 64); err == nil && rate > 0 {
		return driveRate(b, work, rate, send), fmt.Sprintf("open loop offered at %.0f/s", rate)
	}
	return drive(b, work, workers, send), fmt.Sprintf("%d requests in flight", workers)
}

// drive sends every consumer's messages in order, `workers` consumers'
// streams at a time, through send, and measures rate and latency.
func drive(b *testing.B, work [][]*payments.ExchangeMessage, workers int, send func(*payments.ExchangeMessage) error) benchResult {
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	cpu0 := processCPU()
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine [][]*payments.ExchangeMessage
			for c := w; c < len(work); c += workers {
				mine = append(mine, work[c])
			}
			for i := 0; ; i++ {
				sent := false
				for _, seq := range mine {
					if i >= len(seq) {
						continue
					}
					sent = true
					t0 := time.Now()
					if err := send(seq[i]); err != nil {
						b.Error(err)
						return
					}
					lat[w] = append(lat[w], time.Since(t0))
				}
				if !sent {
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return summarize(lat, elapsed, processCPU()-cpu0)
}

// driveRate offers the messages open-loop at `rate` per second: consumer
// c's i-th message is due at (i*len(work)+c)/rate, each consumer sends its
// messages in order, and latency counts from the due time (so a stalled
// hermes is not hidden by senders that wait for it).
func driveRate(b *testing.B, work [][]*payments.ExchangeMessage, rate float64, send func(*payments.ExchangeMessage) error) benchResult {
	lat := make([][]time.Duration, len(work))
	dues := make([][]time.Duration, len(work)) // due time since start, for the timeline
	var wg sync.WaitGroup
	cpu0 := processCPU()
	start := time.Now().Add(50 * time.Millisecond)
	for c := range work {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, m := range work[c] {
				due := start.Add(time.Duration(float64(i*len(work)+c) / rate * float64(time.Second)))
				time.Sleep(time.Until(due))
				if err := send(m); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(due))
				dues[c] = append(dues[c], due.Sub(start))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if os.Getenv("MYST_BENCH_TIMELINE") != "" {
		logTimeline(dues, lat)
	}
	return summarize(lat, elapsed, processCPU()-cpu0)
}

// BenchmarkExchange measures exchange messages accepted per second
// (signature checks + all acceptance rules + durable group commit) with
// 1,000 consumers and 100 providers, on SQLite and (when
// MYST_TEST_POSTGRES_DSN is set) PostgreSQL, over the Service API, over
// HTTP on loopback in this process ("http": cpu-us/msg includes the load
// generator's HTTP client) and over HTTP to a hermes in a child process
// ("httpproc": cpu-us/msg is the hermes process's alone). On SQLite, the
// "floor" and "floor-nostore" rows measure, the same way, a child that
// does only what every accept must (floorServer: decode, recover, sign,
// store by group commit; without the store). The baseline, measured in
// the same run on the same messages, is signature verification alone
// (both consumer signatures, on all cores). Run: go test -run '^$' -bench Exchange -benchtime 1x ./hermes/
// MYST_BENCH_WORKERS sets the requests in flight (default 128);
// MYST_BENCH_RATE=5000 instead offers the load open-loop at that rate;
// MYST_BENCH_COMMITTERS sets Config.Committers (default: the store's);
// MYST_BENCH_COMMIT_DELAY sets Config.CommitDelay (-1ns: never wait);
// MYST_BENCH_WARM=1 loads all state first (see warmStates).
func BenchmarkExchange(b *testing.B) {
	const consumers, providers = 1000, 100
	msgsPer := 20
	if testing.Short() {
		msgsPer = 2
	}
	work := benchWorkload(b, consumers, providers, msgsPer)

	// Baseline: verification alone, in parallel on all cores.
	// MYST_BENCH_VERIFY_ROUNDS=k runs it k times (bench/hermes/instructions.sh
	// subtracts a 1-round run from a 2-round run to count its instructions).
	rounds := 1
	if v, err := strconv.Atoi(os.Getenv("MYST_BENCH_VERIFY_ROUNDS")); err == nil && v > 1 {
		rounds = v
	}
	var verify benchResult
	for range rounds {
		verify = drive(b, work, 2*runtime.GOMAXPROCS(0), func(m *payments.ExchangeMessage) error {
			_, err := m.RecoverConsumer()
			return err
		})
	}
	b.Logf("baseline signature verification only: %.0f msg/s, %.0f us CPU/msg", verify.rate(), verify.cpuPerMsg())

	stores := map[string]func(b *testing.B) store.Store{
		"sqlite": func(b *testing.B) store.Store {
			s, err := store.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "hermes.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	if dsn := os.Getenv("MYST_TEST_POSTGRES_DSN"); dsn != "" {
		stores["postgres"] = func(b *testing.B) store.Store {
			s, err := store.Open(context.Background(), pgtest.FreshSchema(b, dsn))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}
	}
	for _, name := range []string{"sqlite", "postgres"} {
		open, ok := stores[name]
		if !ok {
			b.Logf("%s: skipped (MYST_TEST_POSTGRES_DSN unset)", name)
			continue
		}
		vias := []string{"service", "http", "httpproc"}
		if name == "sqlite" {
			vias = append(vias, "floor", "floor-nostore")
		}
		for _, via := range vias {
			b.Run(name+"/"+via, func(b *testing.B) {
				switch via {
				case "httpproc":
					benchExchangeProc(b, name, work, verify)
					return
				case "floor", "floor-nostore":
					benchFloorProc(b, via == "floor", work, verify)
					return
				}
				ts := &timingStore{Store: open(b)}
				st := store.Store(ts)
				defer st.Close()
				chain := newFakeChain(testHermes)
				chain.autoBalance = new(big.Int).Exp(big.NewInt(10), big.NewInt(30), nil)
				slots, _ := strconv.Atoi(os.Getenv("MYST_BENCH_CPU_SLOTS"))
				committers, _ := strconv.Atoi(os.Getenv("MYST_BENCH_COMMITTERS"))
				svc, err := New(Config{ChainID: testChainID, HermesID: testHermes, Operator: testSigner("operator"), SettleInterval: time.Hour,
					Metrics: NewMetrics(prometheus.NewRegistry()), CPUSlots: slots, Committers: committers, CommitDelay: benchCommitDelay(),
					Limits: Limits{SourceRate: -1, IdentityRate: -1}}, st, chain) // throughput, not flood defences
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { defer wg.Done(); _ = svc.Run(ctx) }()
				defer func() { cancel(); wg.Wait() }()

				send := func(m *payments.ExchangeMessage) error {
					_, err := svc.Exchange(context.Background(), m)
					return err
				}
				if via == "http" {
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						b.Fatal(err)
					}
					wg.Add(1)
					go func() { defer wg.Done(); _ = Serve(ctx, ln, svc.Handler(prometheus.NewRegistry())) }()
					hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
					defer hc.CloseIdleConnections()
					addr := ln.Addr().String()
					send = func(m *payments.ExchangeMessage) error {
						r, err := postExchange(hc, addr, m)
						if err != nil {
							return err
						}
						if r.status != http.StatusOK {
							return fmt.Errorf("status %d: %s", r.status, r.raw)
						}
						return nil
					}
				}
				if os.Getenv("MYST_BENCH_WARM") != "" {
					warmStates(b, svc, work)
				}
				b.ResetTimer()
				workers := 128
				if v, err := strconv.Atoi(os.Getenv("MYST_BENCH_WORKERS")); err == nil && v > 0 {
					workers = v
				}
				r, mode := driveAsAsked(b, work, workers, send)
				b.StopTimer()
				stats, err := st.Stats(context.Background())
				if err != nil || stats.Exchanges != int64(r.n) {
					b.Fatalf("stored %d exchanges, sent %d (%v)", stats.Exchanges, r.n, err)
				}
				r.report(b, verify)
				if c := ts.commits.Load(); c > 0 {
					b.Logf("%d group commits, %.1f accepts each, %.2f ms each, %.0f%% of the run in commit",
						c, float64(ts.accepts.Load())/float64(c), float64(ts.nanos.Load())/1e6/float64(c), 100*float64(ts.nanos.Load())/float64(r.elapsed))
				}
				b.Logf("%s via %s, %s: %d msgs in %v = %.0f msg/s, p50 %v, p99 %v; %.2fx of verify-only %.0f msg/s; CPU %.0f us/msg (%.2fx verify-only's %.0f); load %s",
					name, via, mode, r.n, r.elapsed.Round(time.Millisecond), r.rate(), r.p50, r.p99, r.rate()/verify.rate(), verify.rate(),
					r.cpuPerMsg(), r.cpuPerMsg()/verify.cpuPerMsg(), verify.cpuPerMsg(), loadAverage())
			})
		}
	}
}

// benchExchangeProc is BenchmarkExchange's "httpproc" row: the hermes
// (HTTP API and store, as in `myst hermes`) runs in a child process and
// the load comes over loopback from this one, so cpu-us/msg is the hermes
// process's CPU alone (from /proc/<pid>/stat), without the client's.
func benchExchangeProc(b *testing.B, name string, work [][]*payments.ExchangeMessage, verify benchResult) {
	var dsn string
	if name == "postgres" {
		dsn = pgtest.FreshSchema(b, os.Getenv("MYST_TEST_POSTGRES_DSN"))
	} else {
		dsn = filepath.Join(b.TempDir(), "hermes.db")
	}
	benchChildProc(b, func() *child { return startChild(b, dsn) }, work, verify, name+" via http to a hermes process", storedExchanges(dsn))
}

// storedExchanges returns a function that counts the exchanges stored in
// dsn (opening it after the child stopped).
func storedExchanges(dsn string) func() (int64, error) {
	return func() (int64, error) {
		st, err := store.Open(context.Background(), dsn)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		stats, err := st.Stats(context.Background())
		return stats.Exchanges, err
	}
}

// benchChildProc loads a server in a child process (started by start)
// over loopback with work and reports, besides benchResult's metrics with
// cpu-us/msg the child's CPU alone (from /proc/<pid>/stat), the child's
// system time, system calls and bytes written per message. stored, when
// not nil, counts the exchanges the child stored (after it stopped): the
// run fails unless that is every message sent. what names the setup in
// the log.
func benchChildProc(b *testing.B, start func() *child, work [][]*payments.ExchangeMessage, verify benchResult, what string, stored func() (int64, error)) {
	if path := os.Getenv("MYST_BENCH_HERMES_CPUPROFILE"); path != "" {
		b.Setenv(childProfileEnv, path)
	}
	ch := start()
	workers := 128
	if v, err := strconv.Atoi(os.Getenv("MYST_BENCH_WORKERS")); err == nil && v > 0 {
		workers = v
	}
	// The load generator: pre-encoded requests on persistent connections
	// (rawExchanger), or with MYST_BENCH_NETHTTP=1 net/http's client,
	// encoding each message and decoding each answer in the timed part.
	client := "pre-encoded requests, keep-alive connections"
	var send func(m *payments.ExchangeMessage) error
	if os.Getenv("MYST_BENCH_NETHTTP") != "" {
		client = "net/http client"
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		defer hc.CloseIdleConnections()
		send = func(m *payments.ExchangeMessage) error {
			r, err := postExchange(hc, ch.addr, m)
			if err != nil {
				return err
			}
			if r.status != http.StatusOK {
				return fmt.Errorf("status %d: %s", r.status, r.raw)
			}
			return nil
		}
	} else {
		send = newRawExchanger(b, ch.addr, work, workers).send
	}
	pid := ch.cmd.Process.Pid
	b.ResetTimer()
	s0 := samplePID(pid)
	r, mode := driveAsAsked(b, work, workers, send)
	s1 := samplePID(pid)
	childCPU := s1.user + s1.sys - s0.user - s0.sys
	b.StopTimer()
	if sum, count, err := childBatches(ch.addr); err != nil {
		b.Logf("group commits: %v", err)
	} else if count > 0 {
		b.Logf("%.0f group commits, %.1f accepts each", count, sum/count)
	}
	ch.stop()
	if stored != nil {
		n, err := stored()
		if err != nil || n != int64(r.n) {
			b.Fatalf("stored %d exchanges, sent %d (%v)", n, r.n, err)
		}
	}
	clientCPU := r.cpuPerMsg()
	r.cpu = childCPU
	r.report(b, verify)
	n := float64(r.n)
	b.ReportMetric(float64((s1.sys-s0.sys).Microseconds())/n, "sys-us/msg")
	b.ReportMetric(float64(s1.writes-s0.writes)/n, "writes/msg")
	b.ReportMetric(float64(s1.reads-s0.reads)/n, "reads/msg")
	b.ReportMetric(float64(s1.written-s0.written)/1024/n, "KiB-written/msg")
	b.Logf("server process per message: user %.0f us, system %.0f us; %.2f write and %.2f read system calls, %.1f KiB written (files and sockets); peak RSS %d MiB",
		float64((s1.user-s0.user).Microseconds())/n, float64((s1.sys-s0.sys).Microseconds())/n,
		float64(s1.writes-s0.writes)/n, float64(s1.reads-s0.reads)/n, float64(s1.written-s0.written)/1024/n, s1.peakRSS>>20)
	b.Logf("%s, %s: %d msgs in %v = %.0f msg/s, p50 %v, p99 %v; %.2fx of verify-only %.0f msg/s; server process CPU %.0f us/msg (%.2fx verify-only's %.0f), load generator (%s) %.0f us/msg; load %s",
		what, mode, r.n, r.elapsed.Round(time.Millisecond), r.rate(), r.p50, r.p99, r.rate()/verify.rate(), verify.rate(),
		r.cpuPerMsg(), r.cpuPerMsg()/verify.cpuPerMsg(), verify.cpuPerMsg(), client, clientCPU, loadAverage())
}

// warmStates loads every consumer's and provider's state (and channel)
// into svc's caches before a run (MYST_BENCH_WARM=1): a diagnostic that
// tells the cold start's share of a run's tail, when all 1,000 consumers
// send their first message in the first 200 ms.
func warmStates(b *testing.B, svc *Service, work [][]*payments.ExchangeMessage) {
	ctx := context.Background()
	for _, msgs := range work {
		c, err := msgs[0].RecoverConsumer()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.channel(ctx, c, false); err != nil {
			b.Fatal(err)
		}
		cs := svc.consumers.acquire(c)
		cs.mu.Lock()
		err = svc.loadConsumer(ctx, cs, c)
		cs.mu.Unlock()
		svc.consumers.release(c)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			ps := svc.providers.acquire(m.Provider)
			ps.mu.Lock()
			err = svc.loadProvider(ctx, ps, m.Provider)
			ps.mu.Unlock()
			svc.providers.release(m.Provider)
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchCommitDelay is Config.CommitDelay from MYST_BENCH_COMMIT_DELAY (a
// duration; unset: the default), for the benchmarks and their children.
func benchCommitDelay() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("MYST_BENCH_COMMIT_DELAY"))
	return d
}

// logTimeline prints, per 250 ms of due times, how many messages were due
// and their p50, p99 and max latency: whether a run's tail is spread over
// the run or one stall (MYST_BENCH_TIMELINE=1).
func logTimeline(dues, lat [][]time.Duration) {
	const step = 250 * time.Millisecond
	var buckets [][]time.Duration
	for c := range dues {
		for i, d := range dues[c] {
			k := int(d / step)
			for len(buckets) <= k {
				buckets = append(buckets, nil)
			}
			buckets[k] = append(buckets[k], lat[c][i])
		}
	}
	for k, l := range buckets {
		if len(l) == 0 {
			continue
		}
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		// To stderr: a benchmark's log is cut after a few lines.
		fmt.Fprintf(os.Stderr, "timeline: due %5v-%5v: %4d msgs, p50 %7.1f ms, p99 %7.1f ms, max %7.1f ms\n", time.Duration(k)*step, time.Duration(k+1)*step, len(l),
			float64(l[len(l)/2].Microseconds())/1000, float64(l[len(l)*99/100].Microseconds())/1000, float64(l[len(l)-1].Microseconds())/1000)
	}
}

// loadAverage is the machine's 1-minute load average (for the log), or "?".
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(raw)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// childBatches reads the hermes_commit_batch_size histogram's sum and
// count from a child hermes' /metrics.
func childBatches(addr string) (sum, count float64, err error) {
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		switch k {
		case "hermes_commit_batch_size_sum":
			sum, err = strconv.ParseFloat(v, 64)
		case "hermes_commit_batch_size_count":
			count, err = strconv.ParseFloat(v, 64)
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return sum, count, nil
}
