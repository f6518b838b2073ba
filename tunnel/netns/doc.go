// Package netns is a small test harness for tests that need real Linux
// network namespaces: it creates named namespaces and veth links between them
// with iproute2's `ip` command, runs commands inside a namespace
// (`ip netns exec`) or a Go function on an OS thread switched into it (Do),
// and removes everything it created through t.Cleanup.
//
// It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and the `ip` command; when
// either is missing, or when the kernel refuses `ip netns add` (for example
// inside an unprivileged container), New skips the test with the reason
// through internal/testenv, so the same tests run everywhere; on CI (root,
// OPENMYST_REQUIRE_NETNS=1) the same situation fails the test instead.
//
// Nothing here touches the host's own interfaces, routes or firewall: links
// are created directly inside the namespaces.
package netns
