package netns

import "testing"

// The addresses of a HubLab.
const (
	// HubAddr is the hub's address on the consumer link.
	HubAddr = "10.99.0.1"
	// HubAddr2 is the hub's second address on the consumer link: a
	// consumer reaches it directly (connected route), never through a
	// tunnel, so a listener there sees whatever leaks.
	HubAddr2 = "10.99.0.3"
	// ConsAddr is the consumer's address.
	ConsAddr = "10.99.0.2"
	// InetAddr is the internet host's address.
	InetAddr = "203.0.113.2"
	// HubInetAddr is the hub's address on the internet link.
	HubInetAddr = "203.0.113.1"
)

// HubLab is the topology of the end-to-end VPN tests: a consumer behind a
// hub (chain, hermes, bootstrap and providers run there or behind it) that
// routes to an "internet" host:
//
//	Cons c0 ConsAddr ── p0 HubAddr, HubAddr2 Hub u0 HubInetAddr ── i0 InetAddr Inet
//
// The consumer's default route is the hub, the hub forwards IPv4, and the
// internet host routes 10.99.0.0/24 back through the hub, so a packet
// leaking outside a tunnel reaches it with the consumer's own address.
type HubLab struct {
	Hub, Cons, Inet *NS
}

// NewHubLab builds a HubLab for tb; label prefixes the namespaces' names
// (label+"hub", label+"cons", label+"inet"). Everything goes when the test
// ends.
func NewHubLab(tb testing.TB, label string) *HubLab {
	tb.Helper()
	l := &HubLab{Hub: New(tb, label+"hub"), Cons: New(tb, label+"cons"), Inet: New(tb, label+"inet")}
	Link(tb, l.Hub, "p0", HubAddr+"/24,"+HubAddr2+"/24", l.Cons, "c0", ConsAddr+"/24")
	Link(tb, l.Hub, "u0", HubInetAddr+"/24", l.Inet, "i0", InetAddr+"/24")
	l.Cons.MustRun("ip", "route", "add", "default", "via", HubAddr)
	l.Inet.MustRun("ip", "route", "add", "10.99.0.0/24", "via", HubInetAddr)
	l.Hub.MustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")
	return l
}
