package kernel

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// resolvedStub is systemd-resolved's stub resolver, the only nameserver
// of a resolv.conf it manages in its default (stub) mode.
var resolvedStub = netip.MustParseAddr("127.0.0.53")

// resolvedDir holds the resolv.conf files systemd-resolved writes
// (stub-resolv.conf, resolv.conf); /etc/resolv.conf links to one of them.
const resolvedDir = "/run/systemd/resolve/"

// ResolvedManaged reports whether systemd-resolved manages the
// resolv.conf at path, so that DNS is set per link with resolvectl
// instead of by rewriting the file (whose rewrite resolved would undo, or
// which is a symlink into resolved's runtime directory): resolvectl is
// installed, and path is a symlink into /run/systemd/resolve/ or names
// only the stub resolver 127.0.0.53.
func ResolvedManaged(path string) bool {
	if path == "" {
		return false
	}
	if _, err := exec.LookPath("resolvectl"); err != nil {
		return false
	}
	if target, err := os.Readlink(path); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		return strings.HasPrefix(filepath.Clean(target)+"/", resolvedDir) && filepath.Clean(target) != filepath.Clean(resolvedDir)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	ns := nameserverFields(b)
	for _, f := range ns {
		if a, err := netip.ParseAddr(f); err != nil || a != resolvedStub {
			return false
		}
	}
	return len(ns) > 0
}

// resolvedSetDNS points systemd-resolved at dns for every lookup while
// the tunnel is up: the servers on the TUN link, the routing domain "~."
// (all names) and the link as a default route for DNS. Resolved sends
// the queries through the TUN; the stub on loopback is what applications
// ask, and the kill switch admits loopback only.
func resolvedSetDNS(ctx context.Context, ifc string, dns []netip.Addr) error {
	args := []string{"dns", ifc}
	for _, d := range dns {
		args = append(args, d.String())
	}
	for _, a := range [][]string{args, {"domain", ifc, "~."}, {"default-route", ifc, "true"}} {
		if _, err := run(ctx, "", "resolvectl", a...); err != nil {
			return fmt.Errorf("dns through systemd-resolved: %w", err)
		}
	}
	return nil
}

// resolvedRevert drops the TUN link's DNS settings from
// systemd-resolved. Resolved also forgets them when the link goes away
// (a crashed client's TUN).
func resolvedRevert(ctx context.Context, ifc string) error {
	if _, err := run(ctx, "", "resolvectl", "revert", ifc); err != nil {
		return fmt.Errorf("dns: revert systemd-resolved settings of %s: %w", ifc, err)
	}
	return nil
}
