package ice

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/natlab"
)

// BenchmarkLabPaths measures, in the NAT lab with a one-way delay of 20 ms
// on every internet link, connect → first byte (session start, gathering,
// checks, WireGuard handshake, HTTP GET) and bulk throughput through the
// tunnel for each kind of path, against the public pair measured in the
// same run, and the relay's CPU per Gbit/s of relayed traffic. Each
// iteration runs ICE_LAB_BENCH_RUNS sessions per pair (default 5), pairs
// interleaved; run it with bench/reach/run.sh (-benchtime 1x).
func BenchmarkLabPaths(b *testing.B) {
	lab := natlab.New(b)
	// The relay's cap is raised so that the benchmark measures the relay,
	// not its default 50 Mbit/s per-allocation limit.
	servers, rl := startLabRelay(b, lab, fmt.Sprintf("%s=%d", childRelayBandwidthEnv, 10_000_000_000/8))
	pairs := []struct {
		name       string
		cons, prov natlab.Kind
		want       string
	}{
		{"public", natlab.Public, natlab.Public, PathDirect},
		{"punched", natlab.EndpointIndependent, natlab.EndpointIndependent, PathDirect},
		// A symmetric consumer reaches the provider's forwarded ICE port
		// (Mux): what a port mapping gives.
		{"mapped", natlab.Symmetric, natlab.Forwarded, PathDirect},
		// A symmetric consumer and an endpoint-independent provider: the
		// birthday punch (nat/punch).
		{"birthday", natlab.Symmetric, natlab.EndpointIndependent, PathDirect},
		{"doublenat", natlab.DoubleNAT, natlab.EndpointIndependent, PathDirect},
		{"relay-udp", natlab.Symmetric, natlab.Symmetric, PathRelay},
		{"relay-tcp", natlab.UDPBlocked, natlab.EndpointIndependent, PathRelay},
	}
	const muxPort = 51821
	type site2 struct{ c, p *natlab.Site }
	sites := make([]site2, len(pairs))
	for i, p := range pairs {
		sites[i] = site2{lab.Site(fmt.Sprintf("bc%d", i), p.cons), lab.Site(fmt.Sprintf("bp%d", i), p.prov, natlab.WithForward(muxPort))}
	}
	delay := "20 ms one-way delay (tc netem) on every internet link"
	if err := lab.SetDelay(20 * time.Millisecond); err != nil {
		// This kernel has no netem: measure without the added delay, and
		// say so next to the numbers.
		delay = "NO added delay (" + err.Error() + ")"
	}
	bulk := 32 << 20
	if v, err := strconv.Atoi(os.Getenv("ICE_LAB_BENCH_BULK")); err == nil && v > 0 {
		bulk = v
	}

	fb := make([][]time.Duration, len(pairs))
	tput := make([][]float64, len(pairs)) // Mbit/s
	var relayCPU time.Duration
	var relayBytes int64
	runs := 5
	if v, err := strconv.Atoi(os.Getenv("ICE_LAB_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	b.ResetTimer()
	for range b.N * runs {
		for i, p := range pairs {
			cpu0 := procCPU(rl.Pid())
			var env []string
			if p.prov == natlab.Forwarded {
				env = append(env, fmt.Sprintf("%s=%s:%d %s", childMuxEnv, sites[i].p.Host.Addr, muxPort, sites[i].p.WAN))
			}
			r := labPairLate(b, lab, servers, sites[i].c, sites[i].p, false, bulk, 0, env...)
			if r.path.Kind != p.want {
				b.Fatalf("%s: path %s, want %s", p.name, r.path.Kind, p.want)
			}
			fb[i] = append(fb[i], r.firstByte)
			tput[i] = append(tput[i], float64(r.bulkBytes)*8/r.bulkTime.Seconds()/1e6)
			if r.path.Kind == PathRelay {
				relayCPU += procCPU(rl.Pid()) - cpu0
				relayBytes += r.bulkBytes + payloadSize
			}
		}
	}
	b.StopTimer()
	var out strings.Builder
	fmt.Fprintf(&out, "\n%s; %d runs per pair; bulk %d MiB\n", delay, len(fb[0]), bulk>>20)
	fmt.Fprintf(&out, "%-10s %-7s %14s %8s %14s %8s\n", "pair", "path", "first byte p50", "ratio", "Mbit/s p50", "ratio")
	base := median(fb[0])
	baseT := medianF(tput[0])
	for i, p := range pairs {
		m, t := median(fb[i]), medianF(tput[i])
		fmt.Fprintf(&out, "%-10s %-7s %14v %7.2fx %14.0f %7.2fx\n", p.name, p.want, m.Round(time.Millisecond), float64(m)/float64(base), t, t/baseT)
		b.ReportMetric(float64(m.Milliseconds()), p.name+"-firstbyte-ms")
		b.ReportMetric(t, p.name+"-Mbit/s")
	}
	if relayBytes > 0 {
		gbit := float64(relayBytes) * 8 / 1e9
		fmt.Fprintf(&out, "relay CPU: %.2f s per Gbit relayed (%.2f CPU-s for %.2f Gbit)\n", relayCPU.Seconds()/gbit, relayCPU.Seconds(), gbit)
		b.ReportMetric(relayCPU.Seconds()/gbit, "relay-cpu-s/Gbit")
	}
	b.Log(out.String())
}

// procCPU is a process's user+system CPU time from /proc (clock ticks of
// 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func medianF(d []float64) float64 {
	s := append([]float64(nil), d...)
	sort.Float64s(s)
	return s[len(s)/2]
}
