// Package openmyst_test holds tests about the module as a whole.
//
// TestLayering is the one place where the layers of the module and the
// allowed import directions between them are written down (in the spirit of
// Tailscale's depaware): every package belongs to exactly one room, rooms sit
// on numbered layers, and a package may import
//
//   - any package of its own room, and
//   - any package of a room on a lower layer.
//
// An import that runs upward, or sideways into another room of the same
// layer, fails the test. Test files may additionally import sideways (an
// integration test of session/pingpong may start a real hermes), never
// upward. docs/architecture.md carries the same table; the test checks that
// the two agree.
package openmyst_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

// modulePath is the module's import path prefix.
const modulePath = "github.com/openmyst/openmyst"

// room is a group of packages that may import each other freely.
type room struct {
	name     string
	layer    int
	packages []string // module-relative paths; each also covers its subpackages
	about    string
}

// rooms is THE layering table. Lower layers never import higher ones; rooms
// on the same layer never import each other.
var rooms = []room{
	{"base", 0, []string{"buildinfo", "config", "storage", "identity", "money", "payments", "ratelimit", "internal/testenv", "internal/servetest", "internal/keytest", "internal/clocktest", "internal/strictjson", "internal/retry", "internal/atomicfile", "internal/httpserve", "internal/defaults", "internal/tick"},
		"build info, configuration, node-local storage, keys and signatures, MYST amounts, promise/invoice values, rate limits, test capability checks, tests' small servers, throwaway keys and settable clock, the strict JSON decoder, retry/backoff, atomic file writes, HTTP serving until shutdown, configuration defaults, periodic checks"},
	{"chain", 1, []string{"chain"},
		"contract bindings, the chain client, the in-process dev chain"},
	{"market", 2, []string{"market", "p2p", "discovery", "geoip", "quality"},
		"proposals, the libp2p host and session protocol, discovery, location, fraud proofs and the blacklist"},
	{"tunnel", 2, []string{"tunnel", "internal/natlab"},
		"the WireGuard data plane (userspace and kernel), proxies, exit policy, the namespace and NAT labs"},
	{"nat", 2, []string{"nat", "relay", "probe"},
		"NAT traversal: port mapping; the relay role (STUN, TURN); peer reachability checks"},
	{"network", 2, []string{"network"},
		"network definitions: one file naming a network's chain, contracts, hermes hubs, peers and servers"},
	{"session", 3, []string{"session"},
		"provider and consumer sessions, invoice tracking and paying, history"},
	{"hermes", 3, []string{"hermes"},
		"the payment hub: API, stores, settlement, its client"},
	{"transactor", 3, []string{"transactor"},
		"the gasless relay: signed fee quotes, relayed registration/beneficiary/settlement, referral vouchers, its client"},
	{"tequilapi", 4, []string{"tequilapi", "webui"},
		"the local REST API and its Go client, the web UI served beside it"},
	{"node", 5, []string{"node"},
		"assembly of provider, consumer, hermes and devnet; lifecycle"},
	{"cmd", 6, []string{"cmd", "bench", "packaging"},
		"binaries: flag parsing and wiring only; the .deb and its tests"},
}

// exceptions lists imports that break the layering today, each with the
// reason and the work that removes it. The test fails when an exception is
// no longer needed, so the list only shrinks.
var exceptions = map[[2]string]string{}

// seams lists rooms that production code of another room may enter only
// through the named interface packages: the session layer talks to the
// data plane through package tunnel's interfaces (tunnel.Exit,
// tunnel.Client); node injects tunnel/userspace or tunnel/kernel.
var seams = map[[2]string][]string{
	{"session", "tunnel"}: {"tunnel"},
}

// throughSeam reports whether production code of room from may import
// package irel of room to under seams.
func throughSeam(from, to room, irel string) bool {
	pkgs, ok := seams[[2]string{from.name, to.name}]
	return !ok || slices.Contains(pkgs, irel)
}

// roomOf returns the room that owns the module-relative package path rel.
func roomOf(rel string) (room, bool) {
	var best room
	bestLen := -1
	for _, r := range rooms {
		for _, p := range r.packages {
			if (rel == p || strings.HasPrefix(rel, p+"/")) && len(p) > bestLen {
				best, bestLen = r, len(p)
			}
		}
	}
	return best, bestLen >= 0
}

// allowed reports whether a package in room from may import a package in
// room to; sideways is whether same-layer rooms are allowed (test files).
func allowed(from, to room, sideways bool) bool {
	if from.name == to.name || to.layer < from.layer {
		return true
	}
	return sideways && to.layer == from.layer
}

// listedPackage is the part of `go list -json` output the test reads.
type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// listPackages runs `go list -json ./...` in the module root.
func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the layering test needs the go command: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages; run from the module root", len(pkgs))
	}
	return pkgs
}

// internalRel returns the module-relative path of an import of this module.
func internalRel(path string) (string, bool) {
	if path == modulePath {
		return "", true
	}
	rel, ok := strings.CutPrefix(path, modulePath+"/")
	return rel, ok
}

func TestLayering(t *testing.T) {
	used := map[[2]string]bool{}
	var problems []string
	for _, p := range listPackages(t) {
		rel, ok := internalRel(p.ImportPath)
		if !ok || rel == "" { // the module root holds only this test
			continue
		}
		from, ok := roomOf(rel)
		if !ok {
			problems = append(problems, fmt.Sprintf("package %s belongs to no room: add it to the table in layers_test.go and docs/architecture.md", rel))
			continue
		}
		check := func(imports []string, sideways bool, what string) {
			for _, imp := range imports {
				irel, ok := internalRel(imp)
				if !ok {
					continue
				}
				to, ok := roomOf(irel)
				if !ok {
					problems = append(problems, fmt.Sprintf("%s imports %s, which belongs to no room", rel, irel))
					continue
				}
				if allowed(from, to, sideways) && (sideways || throughSeam(from, to, irel)) {
					continue
				}
				key := [2]string{rel, irel}
				if _, ok := exceptions[key]; ok {
					used[key] = true
					continue
				}
				dir := "upward"
				switch {
				case allowed(from, to, sideways):
					dir = "past the interface package (" + strings.Join(seams[[2]string{from.name, to.name}], ", ") + ")"
				case to.layer == from.layer:
					dir = "sideways"
				}
				problems = append(problems, fmt.Sprintf("%s%s imports %s %s: room %s (layer %d) may not import room %s (layer %d)",
					rel, what, irel, dir, from.name, from.layer, to.name, to.layer))
			}
		}
		check(p.Imports, false, "")
		check(p.TestImports, true, " (tests)")
		check(p.XTestImports, true, " (external tests)")
	}
	for key, why := range exceptions {
		if !used[key] {
			problems = append(problems, fmt.Sprintf("exception %s -> %s (%s) is no longer needed: delete it", key[0], key[1], why))
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

func TestLayeringRules(t *testing.T) {
	get := func(rel string) room {
		r, ok := roomOf(rel)
		if !ok {
			t.Fatalf("%s has no room", rel)
		}
		return r
	}
	cases := []struct {
		from, to string
		sideways bool
		want     bool
	}{
		{"session/consumer", "tunnel", false, true},           // downward
		{"session/consumer", "session/pingpong", false, true}, // same room
		{"tunnel/kernel", "node", false, false},               // upward
		{"session/pingpong", "hermes", false, false},          // sideways in production code
		{"session/pingpong", "hermes", true, true},            // sideways in a test
		{"identity", "chain", true, false},                    // upward, even in a test
		{"hermes/client", "hermes/store", false, true},        // subpackages share a room
		{"chain/bindings", "chain", false, true},
		{"cmd/myst", "node", false, true},
	}
	for _, c := range cases {
		if got := allowed(get(c.from), get(c.to), c.sideways); got != c.want {
			t.Errorf("allowed(%s -> %s, sideways=%v) = %v, want %v", c.from, c.to, c.sideways, got, c.want)
		}
	}
	if throughSeam(get("session/consumer"), get("tunnel/kernel"), "tunnel/kernel") ||
		!throughSeam(get("session/consumer"), get("tunnel"), "tunnel") ||
		!throughSeam(get("node"), get("tunnel/kernel"), "tunnel/kernel") {
		t.Error("session must reach tunnel only through package tunnel; node may use the modes")
	}
	if _, ok := roomOf("newthing"); ok {
		t.Error("an unknown package must belong to no room")
	}
}

// layerTable renders the rooms as the markdown table that
// docs/architecture.md carries between its layers markers.
func layerTable() string {
	var b strings.Builder
	b.WriteString("| layer | room | packages (and their subpackages) | may import | what lives there |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for i := len(rooms) - 1; i >= 0; i-- {
		r := rooms[i]
		var below []string
		for _, o := range rooms {
			if o.layer < r.layer {
				below = append(below, o.name)
			}
		}
		may := "its own room"
		if len(below) > 0 {
			may += ", " + strings.Join(below, ", ")
		}
		pkgs := make([]string, len(r.packages))
		for j, p := range r.packages {
			pkgs[j] = "`" + p + "`"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", r.layer, r.name, strings.Join(pkgs, ", "), may, r.about)
	}
	return b.String()
}

func TestArchitectureDocMatchesTable(t *testing.T) {
	const begin, end = "<!-- layers:begin (generated from layers_test.go; keep equal) -->\n", "<!-- layers:end -->"
	doc, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatalf("read docs/architecture.md: %v", err)
	}
	s := string(doc)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("docs/architecture.md lacks the %q ... %q markers", begin, end)
	}
	if got, want := s[i+len(begin):j], layerTable(); got != want {
		t.Errorf("docs/architecture.md's layer table differs from layers_test.go; replace it with:\n%s", want)
	}
}
