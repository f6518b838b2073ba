package kernel

import (
	"net/netip"
	"os"
	"testing"

	"github.com/openmyst/openmyst/tunnel"
)

func TestCheckAllowedIPs(t *testing.T) {
	pool, err := tunnel.NewAddressPool(tunnel.DefaultPoolV4, tunnel.DefaultPoolV6)
	if err != nil {
		t.Fatal(err)
	}
	e := &Exit{cfg: ExitConfig{Pool: pool}, gateway: pool.Gateway()}
	l, err := pool.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.checkAllowedIPs(l.Prefixes()); err != nil {
		t.Fatalf("lease rejected: %v", err)
	}
	for _, bad := range []string{
		"0.0.0.0/0",             // would capture all traffic
		"::/0",                  //
		"10.182.0.0/24",         // not a host prefix
		"10.182.0.1/32",         // the gateway
		"fd7e:6d79:7374::1/128", // the IPv6 gateway
		"10.183.0.2/32",         // outside the pool
		"192.0.2.1/32",          //
	} {
		if err := e.checkAllowedIPs([]netip.Prefix{netip.MustParsePrefix(bad)}); err == nil {
			t.Errorf("allowed IP %s accepted", bad)
		}
	}
}

func TestResolvConfNameservers(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	writeFile(t, path, "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example\nnameserver 2001:db8::53\nnameserver fe80::1%eth0\nnameserver bogus\n")
	got := resolvConfNameservers(path)
	want := []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("nameservers = %v, want %v", got, want)
	}
	if got := resolvConfNameservers(path + ".missing"); got != nil {
		t.Fatalf("missing file gave %v", got)
	}
}

func TestConfigValidationWithoutRoot(t *testing.T) {
	// Bad configs fail before anything touches the host.
	if _, err := NewExit(t.Context(), ExitConfig{Interface: "bad name", Log: nil}); err == nil {
		t.Error("NewExit accepted an invalid interface name")
	}
	if _, err := Connect(t.Context(), ClientConfig{}); err == nil {
		t.Error("Connect accepted an empty session")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
