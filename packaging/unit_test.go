package packaging

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// unitKeys parses a systemd unit: section → key → values (a key may
// repeat).
func unitKeys(unit string) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			sec = l[1 : len(l)-1]
			if out[sec] == nil {
				out[sec] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(l, "=")
			if ok && sec != "" {
				out[sec][strings.TrimSpace(k)] = append(out[sec][strings.TrimSpace(k)], strings.TrimSpace(v))
			}
		}
	}
	return out
}

// checkUnit fails t for each problem of unitProblems.
func checkUnit(t *testing.T, unit string) {
	t.Helper()
	for _, p := range unitProblems(unit) {
		t.Error(p)
	}
}

// unitProblems lists where the unit breaks the hardening it must keep: a
// dedicated user, CAP_NET_ADMIN and nothing else, no privilege gain, a
// read-only system.
func unitProblems(unit string) []string {
	var probs []string
	svc := unitKeys(unit)["Service"]
	want := map[string]string{
		"User": "openmyst", "Group": "openmyst",
		"ExecStart":             "/usr/bin/myst --data-dir=/var/lib/openmyst daemon",
		"StateDirectory":        "openmyst",
		"StateDirectoryMode":    "0700",
		"AmbientCapabilities":   "CAP_NET_ADMIN",
		"CapabilityBoundingSet": "CAP_NET_ADMIN",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            "yes",
		"RestrictSUIDSGID":      "yes",
	}
	for k, v := range want {
		got := svc[k]
		if len(got) != 1 || got[0] != v {
			probs = append(probs, fmt.Sprintf("unit [Service] %s = %q, want exactly %q", k, got, v))
		}
	}
	for _, k := range []string{"ProtectKernelTunables", "PrivateUsers", "PrivateNetwork"} {
		if v, ok := svc[k]; ok {
			// Each breaks the kernel exit mode (ip_forward, netlink as
			// the host's CAP_NET_ADMIN).
			probs = append(probs, fmt.Sprintf("unit sets %s=%v, which breaks kernel mode", k, v))
		}
	}
	return probs
}

// TestUnitDirectives checks the shipped unit without any tool.
func TestUnitDirectives(t *testing.T) {
	b, err := os.ReadFile("deb/openmyst.service")
	if err != nil {
		t.Fatal(err)
	}
	checkUnit(t, string(b))
}

// TestCheckUnitCatchesWideCapabilities: the check fails a unit that grants
// more than CAP_NET_ADMIN or runs as root.
func TestCheckUnitCatchesWideCapabilities(t *testing.T) {
	b, err := os.ReadFile("deb/openmyst.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ from, to string }{
		{"CapabilityBoundingSet=CAP_NET_ADMIN", "CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_ADMIN"},
		{"User=openmyst", "User=root"},
		{"NoNewPrivileges=yes", "NoNewPrivileges=no"},
	} {
		u := strings.Replace(string(b), bad.from, bad.to, 1)
		if len(unitProblems(u)) == 0 {
			t.Errorf("checkUnit passed a unit with %s", bad.to)
		}
	}
}
