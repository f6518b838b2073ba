package ice

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/natlab"
)

// BenchmarkLabPunch measures the birthday punch (nat/punch) in the NAT
// lab: for each pair of a symmetric and an endpoint-independent side it
// runs ICE_LAB_PUNCH_RUNS sessions (default 10), counts how many got the
// punched path, and times the consumer's Connect (offers in → path
// selected) against an endpoint-independent pair's ICE direct path
// (srflx ↔ srflx) measured in the same run, pairs interleaved. A session
// whose punching fails still passes through the relay (it is counted,
// not fatal). Run it with bench/reach/punch.sh.
func BenchmarkLabPunch(b *testing.B) {
	lab := natlab.New(b)
	servers, _ := startLabRelay(b, lab)
	pairs := []struct {
		name       string
		cons, prov natlab.Kind
		punched    bool
	}{
		{"ice-eim-eim", natlab.EndpointIndependent, natlab.EndpointIndependent, false},
		{"sym-eim", natlab.Symmetric, natlab.EndpointIndependent, true},
		{"eim-sym", natlab.EndpointIndependent, natlab.Symmetric, true},
		{"sym-dnat", natlab.Symmetric, natlab.DoubleNAT, true},
		{"dnat-sym", natlab.DoubleNAT, natlab.Symmetric, true},
	}
	type site2 struct{ c, p *natlab.Site }
	sites := make([]site2, len(pairs))
	for i, p := range pairs {
		sites[i] = site2{lab.Site(fmt.Sprintf("kc%d", i), p.cons), lab.Site(fmt.Sprintf("kp%d", i), p.prov)}
	}
	runs := 10
	if v, err := strconv.Atoi(os.Getenv("ICE_LAB_PUNCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	toPath := make([][]time.Duration, len(pairs))
	hits := make([]int, len(pairs))
	b.ResetTimer()
	for range b.N * runs {
		for i, p := range pairs {
			r := labPairLate(b, lab, servers, sites[i].c, sites[i].p, false, 0, 0)
			if r.path.Kind != PathDirect && !p.punched {
				b.Fatalf("%s: path %s, want direct", p.name, r.path.Kind)
			}
			if (r.path.Local == CandidatePunched) == p.punched {
				hits[i]++
				toPath[i] = append(toPath[i], r.toPath)
			}
		}
	}
	b.StopTimer()
	var out strings.Builder
	fmt.Fprintf(&out, "\n%d sessions per pair\n%-12s %9s %12s %8s %12s\n", b.N*runs, "pair", "expected", "path p50", "ratio", "path max")
	base := median(toPath[0])
	for i, p := range pairs {
		want := "ice direct"
		if p.punched {
			want = "punched"
		}
		if len(toPath[i]) == 0 {
			fmt.Fprintf(&out, "%-12s %9s %d/%d\n", p.name, want, hits[i], b.N*runs)
			continue
		}
		m := median(toPath[i])
		fmt.Fprintf(&out, "%-12s %9s %d/%d %8v %7.2fx %12v\n", p.name, want, hits[i], b.N*runs, m.Round(time.Millisecond), float64(m)/float64(base), maxDur(toPath[i]).Round(time.Millisecond))
		b.ReportMetric(float64(hits[i])/float64(b.N*runs), p.name+"-success")
		b.ReportMetric(float64(m.Milliseconds()), p.name+"-path-ms")
	}
	b.Log(out.String())
}

func maxDur(d []time.Duration) time.Duration {
	var m time.Duration
	for _, x := range d {
		m = max(m, x)
	}
	return m
}
