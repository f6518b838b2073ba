package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openmyst/openmyst/cmd/myst/internal/mysttest"
	"github.com/openmyst/openmyst/market"
)

// TestProposalsEndToEnd: a bootstrap daemon and a provider daemon with
// --provider.announce; `myst proposals` and GET /proposals list the
// provider's proposal through the peers alone, and it disappears when the
// provider stops.
func TestProposalsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemon subprocesses")
	}
	bootDir, provDir := t.TempDir(), t.TempDir()
	bootPort := mysttest.FreePort(t)
	boot, bootLines, bootAddr := mysttest.StartBootstrapDaemon(t, bootDir, bootPort)

	provider, pf := newDefaultIdentity(t, provDir, "provider-pw")
	prov, provLines := mysttest.StartDaemon(t, provDir, mysttest.FreePort(t),
		"--p2p.bootstrap", bootAddr, "--provider.announce", "--provider.passphrase-file", pf,
		"--location.country", "DE", "--location.city", "Berlin", "--price.per-gib", "0.15",
		"--provider.hermes", "0x00000000000000000000000000000000000000aa")
	var pseen []string
	mysttest.WaitLine(t, provLines, "discovery: announcing proposal", &pseen)

	args := []string{"proposals", "--p2p.bootstrap", bootAddr, "--p2p.listen", "/ip4/127.0.0.1/tcp/0", "--wait", "2s"}
	out, err := runCLI(t, t.TempDir(), append(args, "--json", "--country", "DE", "--max-price-gib", "0.2")...)
	if err != nil {
		t.Fatal(err)
	}
	var ps []market.Proposal
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if len(ps) != 1 || !strings.EqualFold(ps[0].ProviderID.Hex(), provider) || ps[0].Price.PerGiB.MYST() != "0.15" || ps[0].Location.City != "Berlin" {
		t.Fatalf("proposals = %+v, want the provider %s at 0.15 MYST/GiB", ps, provider)
	}
	out, err = runCLI(t, t.TempDir(), args...)
	if err != nil || !strings.Contains(out, provider) || !strings.Contains(out, "1 proposal") {
		t.Fatalf("table = %q, %v", out, err)
	}
	out, err = runCLI(t, t.TempDir(), append(args, "--max-price-gib", "0.1")...)
	if err != nil || !strings.Contains(out, "no proposals found") {
		t.Fatalf("filtered table = %q, %v", out, err)
	}
	if _, err := runCLI(t, t.TempDir(), append(args, "--country", "XX")...); err == nil {
		t.Fatal("accepted --country XX")
	}

	// The bootstrap daemon's Tequilapi serves the same list.
	base := "http://127.0.0.1:" + strconv.Itoa(bootPort)
	token := mysttest.Login(t, base, bootDir)
	body, code := mysttest.GetAuth(t, base+"/proposals?country=DE&ip_type=residential", token)
	if code != 200 || !strings.Contains(strings.ToLower(body), strings.ToLower(provider)) {
		t.Fatalf("GET /proposals: %d %s", code, body)
	}
	if _, code := mysttest.GetAuth(t, base+"/proposals?contry=DE", token); code != 400 {
		t.Fatalf("GET /proposals with a typo: %d, want 400", code)
	}
	if !strings.Contains(body, `"quality": {`) {
		t.Fatalf("GET /proposals has no quality scores: %s", body)
	}
	// With the daemon's data dir (and no --p2p.bootstrap), `myst proposals`
	// asks the daemon: its view with its scores (no reports yet: 0.25 (0)).
	api := []string{"--tequilapi.port", strconv.Itoa(bootPort), "proposals", "--country", "DE"}
	out, err = runCLI(t, bootDir, api...)
	if err != nil || !strings.Contains(out, provider) || !strings.Contains(out, "QUALITY") || !strings.Contains(out, "0.25 (0)") {
		t.Fatalf("myst proposals through the daemon = %q, %v", out, err)
	}
	if out, err = runCLI(t, bootDir, append(api, "--json")...); err != nil || !strings.Contains(out, `"quality": {`) {
		t.Fatalf("myst proposals --json through the daemon = %q, %v", out, err)
	}

	// Clean stop withdraws the proposal.
	mysttest.Stop(t, prov, provLines)
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, code = mysttest.GetAuth(t, base+"/proposals", token)
		if code == 200 && strings.TrimSpace(body) == "[]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the provider stopped: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err = runCLI(t, t.TempDir(), args...)
	if err != nil || !strings.Contains(out, "no proposals found") {
		t.Fatalf("after the provider stopped: %q, %v", out, err)
	}
	mysttest.Stop(t, boot, bootLines)
}
