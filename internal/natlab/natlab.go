// Package natlab builds NAT topologies out of network namespaces for
// tests: an "internet" segment with public-looking addresses, and sites
// (a home network with one host) behind routers that translate with real
// nftables NAT of a chosen kind. It is the lab in which reachability
// (hole punching, port mapping, relays) is proven; nothing in it is
// simulated above the kernel.
//
// Topology:
//
//	inet ns: bridge br0, 25.0.0.1/16 (the "internet"; also a place to
//	         run services: chain, hermes, bootstrap/STUN/relay)
//	  ├─ public host: wan0 25.0.X.Y/16
//	  └─ router ns: wan0 25.0.X.Y/16, lan0 192.168.S.1/24
//	       └─ site host: eth0 192.168.S.2/24 (default route via the router)
//
// A carrier-grade NAT (DoubleNAT) puts a second router between the home
// router and the internet, on 100.64.S.0/24.
//
// Every namespace belongs to the test that created the lab and is removed
// when it ends (tunnel/netns). The addresses exist only inside those
// namespaces: they have no link to the machine's own network.
package natlab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openmyst/openmyst/internal/testenv"
	"github.com/openmyst/openmyst/tunnel/netns"
)

// Kind is the kind of NAT in front of a site's host.
type Kind int

// The NAT kinds of the lab. The names follow RFC 4787's terms: mapping
// (which external port a flow gets) and filtering (which inbound packets
// the mapping lets in).
const (
	// Public: no NAT; the host sits on the internet with its own address.
	Public Kind = iota
	// EndpointIndependent is a typical home router: nftables masquerade,
	// which keeps the source port when it is free (endpoint-independent
	// mapping) and lets in only replies from the exact remote address and
	// port a flow went to (address-and-port-dependent filtering, a
	// "port-restricted cone").
	EndpointIndependent
	// FullCone maps like EndpointIndependent and also lets in any packet
	// to a mapped port (endpoint-independent filtering): inbound UDP to the
	// router is forwarded to the site's only host on the same port.
	FullCone
	// Symmetric is endpoint-dependent mapping: masquerade fully-random, a
	// new random external port for every remote endpoint.
	Symmetric
	// UDPBlocked is an EndpointIndependent router that drops every UDP
	// packet in both directions: only TCP leaves the site.
	UDPBlocked
	// Forwarded is an EndpointIndependent router whose owner forwarded
	// ports by hand (Site's forward list: UDP and TCP to the host).
	Forwarded
	// UPnP is an EndpointIndependent router that runs miniupnpd (UPnP IGD
	// with NAT-PMP and PCP) on its LAN side; see Site.StartUPnP.
	UPnP
	// DoubleNAT is an EndpointIndependent home router behind a carrier's
	// EndpointIndependent NAT (CGNAT on 100.64.0.0/10).
	DoubleNAT
)

// Kinds lists every Kind, in order.
var Kinds = []Kind{Public, EndpointIndependent, FullCone, Symmetric, UDPBlocked, Forwarded, UPnP, DoubleNAT}

func (k Kind) String() string {
	switch k {
	case Public:
		return "public"
	case EndpointIndependent:
		return "eim"
	case FullCone:
		return "fullcone"
	case Symmetric:
		return "symmetric"
	case UDPBlocked:
		return "udpblocked"
	case Forwarded:
		return "forwarded"
	case UPnP:
		return "upnp"
	case DoubleNAT:
		return "doublenat"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Internet addressing. The lab's internet is not in a reserved range
// (RFC 2544 benchmarking, RFC 5737 documentation, ...): libp2p
// (go-multiaddr's IsPublicAddr), miniupnpd and openmyst's own exit policy
// all treat those as unroutable, so a lab on them would not behave like
// the internet. The addresses exist only inside the lab's namespaces,
// which have no link to any other network.
var (
	internetPrefix = netip.MustParsePrefix("25.0.0.0/16")
	// InternetGateway is the inet namespace's own address on the
	// internet segment, where tests run shared services.
	InternetGateway = netip.MustParseAddr("25.0.0.1")
)

// upnpWANPrefix holds the WAN addresses of UPnP routers. miniupnpd 2.3.1
// declares port forwarding impossible when its WAN address is in any
// reserved range (RFC 1918, 6598, 5737 documentation, 2544 benchmarking,
// 240/4, ...), and refuses such an ext_ip too, so a UPnP router gets an
// address outside them. Like every lab address it exists only inside the
// lab's namespaces, which have no link to any other network.
var upnpWANPrefix = netip.MustParsePrefix("25.18.0.0/24")

// Lab is one NAT laboratory owned by a test.
type Lab struct {
	tb   testing.TB
	inet *netns.NS

	mu       sync.Mutex
	nextHost int // last octets handed out on the internet segment
	nextSite int
	links    []link // the internet's side of every attached namespace
	// delayMode is "" until SetDelay, then "netem" or "lines"; lines
	// are the delay lines by link interface; delay is the delay (ns).
	delayMode string
	lines     map[string]*delayLine
	delay     atomic.Int64
}

// link is the internet namespace's side of an attached namespace:
// interface ifc on the bridge, or (routed) a point-to-point link to addr.
type link struct {
	ifc    string
	routed netip.Addr
}

// New builds the internet segment. It fails (or skips, outside CI) like
// netns.New when namespaces or nft are not usable.
func New(tb testing.TB) *Lab {
	tb.Helper()
	inet := netns.New(tb, "inet")
	testenv.RequireTools(tb, "nft")
	// A bridge without an address of its own takes the lowest MAC among
	// its ports, so attaching a site could change the MAC of
	// InternetGateway (where the lab's relay and servers listen) under
	// every router's ARP entry: traffic to it then went to a stale MAC
	// until the neighbour entries were re-resolved, 10-15 s of silence
	// for every relayed pair (TestLabPairs's CI failure). A set address
	// stays.
	inet.MustRun("ip", "link", "add", "br0", "address", bridgeMAC, "type", "bridge")
	inet.MustRun("ip", "addr", "add", InternetGateway.String()+"/16", "dev", "br0")
	inet.MustRun("ip", "link", "set", "br0", "up")
	inet.MustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")
	return &Lab{tb: tb, inet: inet, nextHost: 9}
}

// bridgeMAC is the internet bridge's fixed (locally administered) MAC.
const bridgeMAC = "02:00:19:00:00:01"

// Internet is the namespace that holds the internet segment; processes
// started in it listen on InternetGateway.
func (l *Lab) Internet() *netns.NS { return l.inet }

// attach links ns to the internet bridge as interface wan0 with a fresh
// public address and a default route through the gateway.
func (l *Lab) attach(ns *netns.NS) netip.Addr {
	l.tb.Helper()
	l.mu.Lock()
	l.nextHost++
	n := l.nextHost
	ifc := fmt.Sprintf("i%d", n)
	l.mu.Unlock()
	addr := internetPrefix.Addr().As4()
	addr[2], addr[3] = byte(n/250), byte(n%250+2)
	pub := netip.AddrFrom4(addr)
	netns.Link(l.tb, l.inet, ifc, "", ns, "wan0", pub.String()+"/16")
	l.inet.MustRun("ip", "link", "set", ifc, "master", "br0")
	ns.MustRun("ip", "route", "add", "default", "via", InternetGateway.String())
	l.addLink(link{ifc: ifc})
	return pub
}

// attachRouted links ns to the internet through a routed point-to-point
// link instead of the bridge, with the given address (outside the
// internet segment's prefix).
func (l *Lab) attachRouted(ns *netns.NS, addr netip.Addr) {
	l.tb.Helper()
	l.mu.Lock()
	l.nextHost++
	ifc := fmt.Sprintf("i%d", l.nextHost)
	l.mu.Unlock()
	gw := InternetGateway.String()
	netns.Link(l.tb, l.inet, ifc, gw+"/32", ns, "wan0", addr.String()+"/32")
	l.inet.MustRun("ip", "route", "add", addr.String()+"/32", "dev", ifc)
	ns.MustRun("ip", "route", "add", gw, "dev", "wan0")
	ns.MustRun("ip", "route", "add", "default", "via", gw, "dev", "wan0")
	l.addLink(link{ifc: ifc, routed: addr})
}

// addLink records a new link; after SetDelay it gets the delay at once.
func (l *Lab) addLink(k link) {
	l.mu.Lock()
	l.links = append(l.links, k)
	delayed := l.delayMode != ""
	l.mu.Unlock()
	if delayed {
		if err := l.applyDelay(k); err != nil {
			l.tb.Fatalf("natlab: %v", err)
		}
	}
}

// Host is one machine in the lab.
type Host struct {
	// NS is the host's own namespace.
	NS *netns.NS
	// Addr is the host's own address (public for a public host, on the
	// site's LAN otherwise).
	Addr netip.Addr
	// Site is the network the host sits in, nil for a public host.
	Site *Site
}

// PublicHost adds a host with its own public address.
func (l *Lab) PublicHost(label string) *Host {
	l.tb.Helper()
	ns := netns.New(l.tb, label)
	return &Host{NS: ns, Addr: l.attach(ns)}
}

// Site is a home network: a router of some Kind and one host behind it.
type Site struct {
	Kind Kind
	// Router is the home router's namespace.
	Router *netns.NS
	// Carrier is the carrier-grade NAT's namespace (DoubleNAT only).
	Carrier *netns.NS
	// WAN is the site's address as the internet sees it: the router's
	// (or, behind a CGNAT, the carrier's) public address.
	WAN netip.Addr
	// RouterWAN is the home router's own upstream address (equal to WAN
	// unless DoubleNAT).
	RouterWAN netip.Addr
	// LAN is the router's address on the home network.
	LAN netip.Addr
	// Host is the machine behind the router.
	Host *Host

	lab *Lab
}

// SiteOption configures a site.
type SiteOption func(*siteConfig)

type siteConfig struct {
	forward []uint16
}

// WithForward forwards the given ports (UDP and TCP) from the router's
// WAN address to the host, as an owner would by hand (Forwarded sites).
func WithForward(ports ...uint16) SiteOption {
	return func(c *siteConfig) { c.forward = append(c.forward, ports...) }
}

// Site adds a home network of the given kind with one host. For Public it
// is just a public host with no router (Site.Router is nil).
func (l *Lab) Site(label string, kind Kind, opts ...SiteOption) *Site {
	l.tb.Helper()
	var cfg siteConfig
	for _, o := range opts {
		o(&cfg)
	}
	if kind == Public {
		h := l.PublicHost(label)
		s := &Site{Kind: kind, WAN: h.Addr, RouterWAN: h.Addr, Host: h, lab: l}
		h.Site = s
		return s
	}
	l.mu.Lock()
	l.nextSite++
	n := l.nextSite
	l.mu.Unlock()
	if n > 250 {
		l.tb.Fatalf("natlab: too many sites")
	}

	router := netns.New(l.tb, label+"-r")
	s := &Site{Kind: kind, Router: router, lab: l}
	if kind == DoubleNAT {
		carrier := netns.New(l.tb, label+"-cg")
		s.Carrier = carrier
		s.WAN = l.attach(carrier)
		cgLAN := fmt.Sprintf("100.64.%d.1", n)
		s.RouterWAN = netip.MustParseAddr(fmt.Sprintf("100.64.%d.2", n))
		netns.Link(l.tb, carrier, "lan0", cgLAN+"/24", router, "wan0", s.RouterWAN.String()+"/24")
		router.MustRun("ip", "route", "add", "default", "via", cgLAN)
		natRouter(l.tb, carrier, EndpointIndependent, netip.Addr{}, nil)
	} else if kind == UPnP {
		a := upnpWANPrefix.Addr().As4()
		a[3] = byte(n)
		s.WAN = netip.AddrFrom4(a)
		s.RouterWAN = s.WAN
		l.attachRouted(router, s.WAN)
	} else {
		s.WAN = l.attach(router)
		s.RouterWAN = s.WAN
	}

	hostNS := netns.New(l.tb, label)
	s.LAN = netip.MustParseAddr(fmt.Sprintf("192.168.%d.1", n))
	hostAddr := netip.MustParseAddr(fmt.Sprintf("192.168.%d.2", n))
	netns.Link(l.tb, router, "lan0", s.LAN.String()+"/24", hostNS, "eth0", hostAddr.String()+"/24")
	hostNS.MustRun("ip", "route", "add", "default", "via", s.LAN.String())
	s.Host = &Host{NS: hostNS, Addr: hostAddr, Site: s}

	routerKind := kind
	if kind == DoubleNAT || kind == UPnP {
		routerKind = EndpointIndependent
	}
	natRouter(l.tb, router, routerKind, hostAddr, cfg.forward)
	return s
}

// natRouter turns ns into a NAT router from lan0 to wan0 of the given
// kind. host is the LAN host that FullCone and Forwarded send inbound
// traffic to.
func natRouter(tb testing.TB, ns *netns.NS, kind Kind, host netip.Addr, forward []uint16) {
	tb.Helper()
	ns.MustRun("sysctl", "-qw", "net.ipv4.ip_forward=1")
	masq := "masquerade"
	if kind == Symmetric {
		masq = "masquerade fully-random"
	}
	var pre, fwd strings.Builder
	switch kind {
	case FullCone:
		// Endpoint-independent filtering for the one host: any inbound
		// UDP to a port goes to the host on the same port (masquerade
		// keeps ports, so this is the mapping's own port).
		fmt.Fprintf(&pre, "\t\tiifname \"wan0\" meta l4proto udp dnat to %s\n", host)
	case Forwarded:
		for _, p := range forward {
			fmt.Fprintf(&pre, "\t\tiifname \"wan0\" meta l4proto { tcp, udp } th dport %d dnat to %s\n", p, host)
		}
	case UDPBlocked:
		fwd.WriteString("\t\tmeta l4proto udp drop\n")
	}
	rules := fmt.Sprintf(`table ip natlab {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
%s	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" %s
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
%s		iifname "lan0" accept
		ct state established,related accept
		ct status dnat accept
	}
	chain input {
		# Like a home router's firewall: nothing new from the internet
		# reaches the router itself. Dropping here also keeps conntrack
		# from confirming an entry for the unsolicited flow, which would
		# make masquerade move a later outbound flow to another port.
		type filter hook input priority filter; policy accept;
		iifname "wan0" ct state new drop
	}
}
`, pre.String(), masq, fwd.String())
	runNft(tb, ns, rules)
}

func runNft(tb testing.TB, ns *netns.NS, rules string) {
	tb.Helper()
	if err := ns.Nft(tb.Context(), rules); err != nil {
		tb.Fatalf("natlab: %v\n%s", err, rules)
	}
}

// SetDelay adds a one-way delay of d to every internet link, in the
// direction from the internet to the attached namespace, so a packet
// between two attached namespaces is delayed once by d each way; links
// attached later get it too. d = 0 removes the delay. It uses tc netem
// where the kernel has it, and delay lines (see delay.go: the frames
// pass through this process) where it does not
// (CONFIG_NET_SCH_NETEM unset).
func (l *Lab) SetDelay(d time.Duration) error {
	l.tb.Helper()
	if err := l.probeNetem(); err != nil {
		return err
	}
	l.delay.Store(int64(max(d, 0)))
	l.mu.Lock()
	links := append([]link(nil), l.links...)
	l.mu.Unlock()
	for _, k := range links {
		if err := l.applyDelay(k); err != nil {
			return err
		}
	}
	return nil
}

// probeNetem decides, once, between netem and delay lines: netem when a
// netem qdisc can be put on the bridge.
func (l *Lab) probeNetem() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.delayMode != "" {
		return nil
	}
	out, err := l.inet.Run(l.tb.Context(), "tc", "qdisc", "add", "dev", "br0", "root", "netem", "delay", "1us")
	switch {
	case err == nil:
		_, _ = l.inet.Run(l.tb.Context(), "tc", "qdisc", "del", "dev", "br0", "root")
		l.delayMode = "netem"
	case noNetem(out):
		l.delayMode, l.lines = "lines", map[string]*delayLine{}
	default:
		return fmt.Errorf("natlab: delay: tc: %w: %s", err, out)
	}
	return nil
}

// applyDelay gives link k the current delay: a netem qdisc (replaced,
// none for 0) or a delay line (inserted once; it reads the delay).
func (l *Lab) applyDelay(k link) error {
	l.mu.Lock()
	mode := l.delayMode
	l.mu.Unlock()
	if mode == "lines" {
		return l.insertLine(k)
	}
	_, _ = l.inet.Run(l.tb.Context(), "tc", "qdisc", "del", "dev", k.ifc, "root")
	if d := time.Duration(l.delay.Load()); d > 0 {
		if out, err := l.inet.Run(l.tb.Context(), "tc", "qdisc", "add", "dev", k.ifc, "root", "netem", "delay", fmt.Sprintf("%dus", d.Microseconds())); err != nil {
			return fmt.Errorf("natlab: delay on %s: %w: %s", k.ifc, err, out)
		}
	}
	return nil
}

// insertLine puts a delay line into link k (once): a veth pair jN/kN
// takes k's place on the bridge (or its address and route, for a routed
// link, with k's MAC address, which k gives up, so that the attached
// namespace's neighbour entry stays right), and the line copies frames
// between k and kN.
func (l *Lab) insertLine(k link) error {
	l.mu.Lock()
	if _, ok := l.lines[k.ifc]; ok {
		l.mu.Unlock()
		return nil
	}
	l.lines[k.ifc] = nil
	l.mu.Unlock()
	n := strings.TrimPrefix(k.ifc, "i")
	j, kk := "j"+n, "k"+n
	run := func(args ...string) error {
		if out, err := l.inet.Run(l.tb.Context(), args[0], args[1:]...); err != nil {
			return fmt.Errorf("natlab: delay line on %s: %s: %w: %s", k.ifc, strings.Join(args, " "), err, out)
		}
		return nil
	}
	steps := [][]string{{"ip", "link", "add", j, "type", "veth", "peer", "name", kk}}
	if k.routed.IsValid() {
		mac, err := l.inet.Run(l.tb.Context(), "cat", "/sys/class/net/"+k.ifc+"/address")
		if err != nil {
			return fmt.Errorf("natlab: delay line on %s: %w", k.ifc, err)
		}
		gw := InternetGateway.String() + "/32"
		steps = append(steps,
			[]string{"ip", "link", "set", k.ifc, "address", lineMAC(n)},
			[]string{"ip", "link", "set", j, "address", strings.TrimSpace(mac)},
			[]string{"ip", "addr", "del", gw, "dev", k.ifc},
			[]string{"ip", "addr", "add", gw, "dev", j},
			[]string{"ip", "link", "set", j, "up"},
			[]string{"ip", "route", "replace", k.routed.String() + "/32", "dev", j})
	} else {
		steps = append(steps, []string{"ip", "link", "set", k.ifc, "nomaster"}, []string{"ip", "link", "set", j, "master", "br0", "up"})
	}
	steps = append(steps, []string{"ip", "link", "set", kk, "up", "promisc", "on"}, []string{"ip", "link", "set", k.ifc, "promisc", "on"})
	for _, s := range steps {
		if err := run(s...); err != nil {
			return err
		}
	}
	var line *delayLine
	if err := l.inet.Do(func() (err error) {
		line, err = startDelayLine(k.ifc, kk, &l.delay)
		return err
	}); err != nil {
		return fmt.Errorf("natlab: delay line on %s: %w", k.ifc, err)
	}
	l.mu.Lock()
	l.lines[k.ifc] = line
	l.mu.Unlock()
	l.tb.Cleanup(line.close)
	return nil
}

// lineMAC is a locally administered MAC for link number n's own side
// once a delay line took its old one.
func lineMAC(n string) string {
	v, _ := strconv.Atoi(n)
	return fmt.Sprintf("02:00:19:01:%02x:%02x", (v>>8)&0xff, v&0xff)
}

// UPnPOnly is a StartUPnP line that turns NAT-PMP and PCP off: the
// router speaks UPnP IGD only.
const UPnPOnly = "enable_natpmp=no"

// StartUPnP runs miniupnpd (Debian's package; UPnP IGD, NAT-PMP and PCP)
// in the router of a UPnP site, serving the LAN, with its nftables chains
// hooked in front of the lab's own NAT rules. It returns once miniupnpd
// listens; the process is stopped when the test ends. extra lines are
// added to the configuration file (e.g. "ext_ip=..." or STUN options); a
// "key=value" line replaces the default of key (UPnPOnly: a router that
// speaks UPnP IGD and not NAT-PMP/PCP).
func (s *Site) StartUPnP(tb testing.TB, extra ...string) *netns.Proc {
	tb.Helper()
	if s.Kind != UPnP {
		tb.Fatalf("natlab: StartUPnP on a %v site", s.Kind)
	}
	bin, err := exec.LookPath("miniupnpd")
	if err != nil {
		testenv.SkipOrFail(tb, "natlab: the UPnP router needs Debian's miniupnpd: %v", err)
	}
	runNft(tb, s.Router, `table inet miniupnpd {
	chain forward {
		type filter hook forward priority filter - 1; policy accept;
		jump miniupnpd
	}
	chain miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority dstnat - 1; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority srcnat - 1; policy accept;
		jump postrouting_miniupnpd
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
}
`)
	lan := netip.PrefixFrom(s.LAN, 24).Masked()
	defaults := []string{
		"ext_ifname=wan0",
		"listening_ip=lan0",
		"enable_natpmp=yes",
		"enable_upnp=yes",
		"secure_mode=yes",
		"system_uptime=no",
		"upnp_table_name=miniupnpd",
		"upnp_nat_table_name=miniupnpd",
		"uuid=3f1b2c4d-0000-4000-8000-00000000000" + fmt.Sprint(s.LAN.As4()[2]%10),
		"lease_file=" + tb.TempDir() + "/leases",
		"allow 1024-65535 " + lan.String() + " 1024-65535",
		"deny 0-65535 0.0.0.0/0 0-65535",
	}
	var lines []string
	for _, d := range defaults {
		key, _, isKey := strings.Cut(d, "=")
		if isKey && slices.ContainsFunc(extra, func(e string) bool { return strings.HasPrefix(e, key+"=") }) {
			continue
		}
		lines = append(lines, d)
	}
	lines = append(lines, extra...)
	conf := strings.Join(lines, "\n") + "\n"
	// miniupnpd logs this last once it listens.
	ready := "Listening for NAT-PMP"
	if slices.Contains(lines, UPnPOnly) {
		ready = "HTTP listening on port"
	}
	path := tb.TempDir() + "/miniupnpd.conf"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	// Its own pid file: Debian's default /var/run/miniupnpd.pid would make
	// two labs (tests of two packages at once) refuse each other.
	p := s.Router.Start(bin, "-f", path, "-d", "-P", tb.TempDir()+"/miniupnpd.pid")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), ready) {
		select {
		case <-p.Exited():
			tb.Fatalf("natlab: miniupnpd exited: %s", p.Output())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("natlab: miniupnpd did not start: %s", p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}
