package kernel

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeResolvectl puts a resolvectl on PATH that appends its arguments,
// one call per line, to the returned log, and fails when its first
// argument is failOn.
func fakeResolvectl(t *testing.T, failOn string) string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$*\" >> " + log + "\n"
	if failOn != "" {
		script += "[ \"$1\" = " + failOn + " ] && { echo 'Failed to set' >&2; exit 1; }\n"
	}
	script += "exit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "resolvectl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

func calls(t *testing.T, log string) string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestResolvedManaged: a resolv.conf is systemd-resolved's when it links
// into /run/systemd/resolve/ or names only the stub, and resolvectl is
// installed.
func TestResolvedManaged(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		path string
		want bool
	}{
		{link("stub-link", "/run/systemd/resolve/stub-resolv.conf"), true},
		{link("uplink-link", "/run/systemd/resolve/resolv.conf"), true},
		{link("dir-link", "/run/systemd/resolve"), false},
		{link("other-link", "/run/NetworkManager/resolv.conf"), false},
		{link("relative-link", "resolv.conf.stub"), false}, // relative to dir, not /run
		{file("stub", "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n"), true},
		{file("plain", "nameserver 192.0.2.53\n"), false},
		{file("stub-and-other", "nameserver 127.0.0.53\nnameserver 192.0.2.53\n"), false},
		{file("empty", ""), false},
		{filepath.Join(dir, "missing"), false},
		{"", false},
	}
	// Without resolvectl nothing is managed by resolved.
	t.Setenv("PATH", t.TempDir())
	for _, c := range cases {
		if ResolvedManaged(c.path) {
			t.Errorf("without resolvectl: %s counted as managed by systemd-resolved", c.path)
		}
	}
	fakeResolvectl(t, "")
	for _, c := range cases {
		if got := ResolvedManaged(c.path); got != c.want {
			t.Errorf("ResolvedManaged(%s) = %v, want %v", filepath.Base(c.path), got, c.want)
		}
	}
}

// TestResolvedDNS runs the client's DNS steps against a fake resolvectl:
// connect sets the servers, "~." and the default route on the TUN link,
// a reconfigure sets the new servers, and the undo stack reverts the
// link; resolv.conf is never written. What this cannot test without a
// running systemd-resolved: that resolved then sends every query through
// the TUN (its per-link servers, the routing domain) and forgets the
// link's settings when a crashed client's TUN goes away.
func TestResolvedDNS(t *testing.T) {
	log := fakeResolvectl(t, "")
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	const stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\n"
	if err := os.WriteFile(resolv, []byte(stub), 0o644); err != nil {
		t.Fatal(err)
	}
	if !ResolvedManaged(resolv) {
		t.Fatal("stub resolv.conf not recognised")
	}
	ctx := context.Background()
	c := &Client{cfg: ClientConfig{Interface: "myst0", ResolvConf: resolv}, resolved: true}
	if err := c.setDNS(ctx, resolv, []netip.Addr{netip.MustParseAddr("10.182.0.1"), netip.MustParseAddr("fd7e:6d79:7374::1")}); err != nil {
		t.Fatal(err)
	}
	if err := c.setDNS(ctx, resolv, []netip.Addr{netip.MustParseAddr("9.9.9.9")}); err != nil {
		t.Fatal(err)
	}
	if err := c.teardown(ctx); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"dns myst0 10.182.0.1 fd7e:6d79:7374::1", "domain myst0 ~.", "default-route myst0 true",
		"dns myst0 9.9.9.9", "domain myst0 ~.", "default-route myst0 true",
		"revert myst0",
	}, "\n") + "\n"
	if got := calls(t, log); got != want {
		t.Errorf("resolvectl calls:\n%s\nwant:\n%s", got, want)
	}
	if b, _ := os.ReadFile(resolv); string(b) != stub {
		t.Errorf("resolv.conf written: %q", b)
	}
}

// TestResolvedDNSFailure: a setting resolvectl refuses fails the connect,
// and what was set is reverted.
func TestResolvedDNSFailure(t *testing.T) {
	log := fakeResolvectl(t, "domain")
	c := &Client{cfg: ClientConfig{Interface: "myst0"}, resolved: true}
	err := c.setDNS(context.Background(), "/etc/resolv.conf", []netip.Addr{netip.MustParseAddr("10.182.0.1")})
	if err == nil || !strings.Contains(err.Error(), "resolvectl domain myst0 ~.") || !strings.Contains(err.Error(), "Failed to set") {
		t.Fatalf("err = %v, want resolvectl's refusal with the command", err)
	}
	if err := c.teardown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := calls(t, log), "dns myst0 10.182.0.1\ndomain myst0 ~.\nrevert myst0\n"; got != want {
		t.Errorf("resolvectl calls:\n%s\nwant:\n%s", got, want)
	}
}
