package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs `myst demo` (the main job) with a small download and
// checks the report: three proposals, a real settlement transaction, and
// balances that add up exactly.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole devnet; skipped with -short")
	}
	out, err := runCLI(t, t.TempDir(), "demo", "--size-mib", "2")
	if err != nil {
		t.Fatalf("myst demo: %v\n%s", err, out)
	}
	for _, re := range []string{
		`proposals seen: 3\b`,
		`downloaded\s+2097152 bytes`,
		`tunnel up over the direct path`, // ICE through the devnet relay
		`settlement tx\s+0x[0-9a-f]{64}\b`,
		`paid = received \+ fee\s+exact`,
		`MYST promised by consumer\s+0\.0\d*[1-9]\d* MYST`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("report does not match %q:\n%s", re, out)
		}
	}
	if strings.Contains(out, "0x0000000000000000000000000000000000000000000000000000000000000000") {
		t.Fatalf("zero settlement hash:\n%s", out)
	}
}
