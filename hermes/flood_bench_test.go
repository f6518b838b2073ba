package hermes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openmyst/openmyst/hermes/store"
	"github.com/openmyst/openmyst/payments"
)

// slowChain adds a fixed latency to every consumer channel read, standing
// in for a JSON-RPC round trip to an EVM node (which costs the hermes
// waiting, not CPU), and counts the reads.
type slowChain struct {
	Chain
	delay time.Duration
	reads atomic.Int64
}

func (c *slowChain) ConsumerChannel(ctx context.Context, consumer common.Address) (ChannelInfo, error) {
	c.reads.Add(1)
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
// they can.
type floodPhase struct {
	name                     string
	offered, accepted        int
	rejected                 map[string]int
	p50, p99                 time.Duration
	elapsed                  time.Duration
	floodSent, flood429      int64
	floodOther               int64
	heapMiB, rssMiB          []float64 // samples over the phase
	chainReads               int64
	chCache, idLim, srcLim   int
	consumerSt, providerSt   int
	heapAfterGC, rssAfterRun float64
}

func (p floodPhase) acceptedRate() float64 { return float64(p.accepted) / float64(p.offered) }

// BenchmarkFlood measures whether a flood can starve the hermes (issue 10
// §3): honest consumers offer MYST_FLOOD_RATE (default 1,000) exchange
// messages per second over HTTP from 20 loopback source addresses (50/s each), first
// alone (the baseline, same run, before and again after the flood phase;
// the lower p99 counts) and then while 20 flooders, each from its
// own loopback address with 2 connections, send as fast as they can: 10
// send junk (broken JSON, unknown fields, oversized bodies, corrupted
// signatures), 10 send validly signed messages from 200 unregistered keys
// each. It reports the honest accepted share (goal >= 95%), the honest p99
// under the flood against the baseline's (goal <= 2x), and the heap and RSS
// over the flood (goal: flat). MYST_FLOOD_SECONDS sets each phase's length
// (default 8), MYST_FLOOD_UNLIMITED=1 adds a third phase with the rate
// limits and negative cache turned off, for comparison. The chain is the
// fake with a 2 ms read latency; the store is SQLite (synchronous=FULL).
// The flooders run in this process and share its 2 cores and its RSS.
//
//	go test -run '^$' -bench Flood -benchtime 1x ./hermes/
func BenchmarkFlood(b *testing.B) {
	rate := 1000.0
	if v, err := strconv.ParseFloat(os.Getenv("MYST_FLOOD_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	secs := 8.0
	if v, err := strconv.ParseFloat(os.Getenv("MYST_FLOOD_SECONDS"), 64); err == nil && v > 0 {
		secs = v
	}
	const consumers, honestSources, flooders, floodKeys = 200, 20, 20, 200
	perConsumer := int(rate*secs) / consumers

	phases := []struct {
		name   string
		flood  bool
		limits Limits
	}{
		{"baseline (no flood)", false, Limits{}},
		{"flood, default limits", true, Limits{}},
		{"baseline again", false, Limits{}},
	}
	if os.Getenv("MYST_FLOOD_UNLIMITED") == "1" {
		phases = append(phases, struct {
			name   string
			flood  bool
			limits Limits
		}{"flood, limits off", true, Limits{SourceRate: -1, IdentityRate: -1, NegativeCacheTTL: time.Nanosecond}})
	}
	var results []floodPhase
	b.ResetTimer()
	for pi, ph := range phases {
		b.StopTimer()
		honest := floodHonestWork(b, fmt.Sprint("phase", pi), consumers, perConsumer)
		var floodBodies [][][]byte
		if ph.flood {
			floodBodies = floodWork(b, fmt.Sprint("phase", pi), flooders, floodKeys)
		}
		runtime.GC()
		b.StartTimer()
		r := runFloodPhase(b, ph.name, ph.limits, rate, honest, honestSources, floodBodies)
		results = append(results, r)
	}
	b.StopTimer()

	// The baseline p99 is the better of the two no-flood runs before and
	// after the flood; their difference shows the machine's noise.
	base := results[0]
	if results[2].p99 < base.p99 {
		base = results[2]
	}
	for _, r := range results {
		line := fmt.Sprintf("%-22s honest offered %d at %.0f/s: accepted %.1f%%, p50 %v, p99 %v (%.2fx baseline p99)",
			r.name+":", r.offered, rate, 100*r.acceptedRate(), r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond),
			float64(r.p99)/float64(base.p99))
		if len(r.rejected) > 0 {
			line += fmt.Sprintf("; honest rejections %v", r.rejected)
		}
		b.Log(line)
		if r.floodSent > 0 {
			b.Logf("%-22s flood sent %d (%.0f/s): %d answered 429, %d other rejections; chain reads %d",
				"", r.floodSent, float64(r.floodSent)/r.elapsed.Seconds(), r.flood429, r.floodOther, r.chainReads)
		}
		b.Logf("%-22s heap in use MiB %s; RSS MiB %s; after GC heap %.1f MiB; entries: channel cache %d, consumer state %d, provider state %d, identity limiters %d, source limiters %d",
			"", spark(r.heapMiB), spark(r.rssMiB), r.heapAfterGC, r.chCache, r.consumerSt, r.providerSt, r.idLim, r.srcLim)
	}
	if len(results) > 1 {
		f := results[1]
		b.ReportMetric(100*f.acceptedRate(), "honest-accepted-%")
		b.ReportMetric(float64(f.p99)/float64(base.p99), "p99-x-baseline")
		b.ReportMetric(float64(f.p99.Microseconds())/1000, "flood-p99-ms")
		b.ReportMetric(float64(base.p99.Microseconds())/1000, "baseline-p99-ms")
		if n := len(f.heapMiB); n >= 4 {
			b.ReportMetric(avg(f.heapMiB[3*n/4:])/avg(f.heapMiB[:n/4]), "heap-last/first-quarter")
			b.ReportMetric(avg(f.rssMiB[3*n/4:])/avg(f.rssMiB[:n/4]), "rss-last/first-quarter")
		}
	}
	b.Logf("load average %s", loadAverage())
}

// floodHonestWork pre-signs perConsumer cumulative messages for each of
// `consumers` fresh consumers (distinct per phase, so every phase starts
// with cold caches).
func floodHonestWork(b *testing.B, tag string, consumers, perConsumer int) [][]*payments.ExchangeMessage {
	out := make([][]*payments.ExchangeMessage, consumers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for c := 0; c < consumers; c++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cs := testSigner(fmt.Sprint("flood honest ", tag, c))
			prov := testSigner(fmt.Sprint("flood provider ", c%20)).Address()
			for i := 1; i <= perConsumer; i++ {
				out[c] = append(out[c], msg(b, cs, prov, int64(c), int64(10*i), int64(10*i), secret(fmt.Sprint(tag, c, i))))
			}
		}()
	}
	wg.Wait()
	return out
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

func runFloodPhase(b *testing.B, name string, limits Limits, rate float64, work [][]*payments.ExchangeMessage, sources int, flood [][][]byte) floodPhase {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "hermes.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fc := newFakeChain(testHermes)
	for _, seq := range work {
		c, err := seq[0].RecoverConsumer()
		if err != nil {
			b.Fatal(err)
		}
		fc.register(c, 1<<62)
	}
	chain := &slowChain{Chain: fc, delay: 2 * time.Millisecond}
	svc, err := New(Config{ChainID: testChainID, HermesID: testHermes, Operator: testSigner("operator"), SettleInterval: time.Hour,
		Metrics: NewMetrics(prometheus.NewRegistry()), Limits: limits}, st, chain)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = Serve(ctx, ln, svc.Handler(prometheus.NewRegistry())) }()
	defer func() { cancel(); wg.Wait() }()
	url := "http://" + ln.Addr().String() + "/v1/exchange"

	r := floodPhase{name: name, rejected: map[string]int{}}
	// Memory sampler.
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			r.heapMiB = append(r.heapMiB, float64(ms.HeapInuse)/(1<<20))
			r.rssMiB = append(r.rssMiB, rssMiB())
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

	// Honest consumers, open loop.
	honest := make([]*http.Client, sources)
	for i := range honest {
		honest[i] = clientFrom(fmt.Sprintf("127.0.1.%d", i+1), 64)
		defer honest[i].CloseIdleConnections()
	}
	lat := make([][]time.Duration, len(work))
	codes := make([]map[string]int, len(work))
	start := time.Now().Add(50 * time.Millisecond)
	var hwg sync.WaitGroup
	for c := range work {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			codes[c] = map[string]int{}
			hc := honest[c%sources]
			for i, m := range work[c] {
				due := start.Add(time.Duration(float64(i*len(work)+c) / rate * float64(time.Second)))
				time.Sleep(time.Until(due))
				rep, err := postExchange(hc, ln.Addr().String(), m)
				switch {
				case err != nil:
					codes[c]["transport error"]++
				case rep.status != http.StatusOK:
					codes[c][string(rep.code)]++
				default:
					lat[c] = append(lat[c], time.Since(due))
				}
			}
		}()
	}
	hwg.Wait()
	r.elapsed = time.Since(start)
	stopFlood()
	fwg.Wait()
	close(stopSampling)
	<-sampleDone

	var all []time.Duration
	for c := range work {
		r.offered += len(work[c])
		all = append(all, lat[c]...)
		for k, v := range codes[c] {
			r.rejected[k] += v
		}
	}
	r.accepted = len(all)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) > 0 {
		r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	r.floodSent, r.flood429, r.floodOther = sent.Load(), limited.Load(), other.Load()
	r.chainReads = chain.reads.Load()
	svc.chMu.Lock()
	r.chCache = svc.chCache.Len()
	svc.chMu.Unlock()
	r.consumerSt, r.providerSt = svc.consumers.len(), svc.providers.len()
	r.idLim, r.srcLim = svc.identities.Len(), svc.sources.Len()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapAfterGC = float64(ms.HeapInuse) / (1 << 20)
	if stats, err := st.Stats(context.Background()); err != nil || stats.Exchanges != int64(r.accepted) {
		b.Fatalf("%s: stored %d exchanges, %d acknowledged (%v)", name, stats.Exchanges, r.accepted, err)
	}
	return r
}

// rssMiB is this process's resident set size (Linux), 0 elsewhere.
func rssMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func avg(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// spark summarizes samples as first/min/max/last.
func spark(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("first %.1f min %.1f max %.1f last %.1f (%d samples)", xs[0], lo, hi, xs[len(xs)-1], len(xs))
}
