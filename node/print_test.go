package node

import (
	"bytes"
	"math/big"
	"regexp"
	"testing"
	"time"
)

// TestDemoReportPrint: the report says "exact" only when the consumer's
// channel lost exactly what the provider received plus the hermes fee.
func TestDemoReportPrint(t *testing.T) {
	myst := func(v int64) *big.Int { return new(big.Int).Mul(big.NewInt(v), big.NewInt(1e15)) }
	r := DemoReport{Bytes: 2 << 20, DownloadTime: time.Second, Promised: myst(12), HermesEarned: myst(12), SettledAmount: myst(12),
		Before:           Balances{ConsumerChannel: myst(1000), Provider: myst(0), Hermes: myst(5)},
		After:            Balances{ConsumerChannel: myst(988), Provider: myst(11), Hermes: myst(6)},
		ProviderReceived: myst(11), ConsumerChannelDe: myst(12), HermesFeeBps: 100}
	var b bytes.Buffer
	if err := r.Print(&b); err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`proposals seen: 0`, `downloaded\s+2097152 bytes in 1s \(2\.0 MiB/s\)`, `MYST promised by consumer\s+0\.012 MYST`,
		`hermes fee \(100 bps\)\s+0\.001 MYST`, `paid = received \+ fee\s+exact`, `consumer channel\s+1 MYST\s+0\.988 MYST`} {
		if !regexp.MustCompile(re).MatchString(b.String()) {
			t.Errorf("no %q in\n%s", re, b.String())
		}
	}
	r.ProviderReceived = myst(10)
	b.Reset()
	if err := r.Print(&b); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`paid = received \+ fee\s+MISMATCH`).MatchString(b.String()) {
		t.Errorf("a missing MYST not reported:\n%s", b.String())
	}
}
