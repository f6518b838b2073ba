package kernel

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/openmyst/openmyst/tunnel"
)

// blockComment prefixes the comment of every counted exit-policy drop rule;
// Blocked sums the packet counters of the rules that carry it.
const blockComment = "block:"

// exitRuleset is everything the provider's nftables table is rendered from.
type exitRuleset struct {
	Table   string
	Iface   string
	Pool4   netip.Prefix
	Pool6   netip.Prefix // invalid: no IPv6
	Gateway tunnel.Lease
	DNS4    netip.Addr // upstream resolver for the IPv4 gateway; invalid: none
	DNS6    netip.Addr // upstream resolver for the IPv6 gateway; invalid: none
	Allow   []tunnel.Rule
	Deny    []tunnel.Rule
	// DenyPrefixes are denied regardless of port (defaults + own addresses).
	DenyPrefixes []netip.Prefix
	// Offload lists the devices of a flowtable (the TUN and the uplinks):
	// established flows then skip the forward path in the kernel's software
	// fast path. Empty: no flowtable.
	Offload []string
}

func (r exitRuleset) validate() error {
	if err := validTableName(r.Table); err != nil {
		return err
	}
	if err := validIfName(r.Iface); err != nil {
		return err
	}
	for _, d := range r.Offload {
		if err := validIfName(d); err != nil {
			return fmt.Errorf("exit ruleset: offload device: %w", err)
		}
	}
	if !r.Pool4.IsValid() || !r.Pool4.Addr().Is4() || !r.Gateway.V4.Is4() {
		return fmt.Errorf("exit ruleset: need an IPv4 pool and gateway")
	}
	if r.Pool6.IsValid() != r.Gateway.V6.IsValid() {
		return fmt.Errorf("exit ruleset: IPv6 pool and gateway must be set together")
	}
	if r.DNS4.IsValid() && !r.DNS4.Is4() || r.DNS6.IsValid() && (!r.DNS6.Is6() || r.DNS6.Is4In6()) {
		return fmt.Errorf("exit ruleset: DNS upstream of the wrong family")
	}
	for _, rl := range append(append([]tunnel.Rule(nil), r.Allow...), r.Deny...) {
		if !rl.Prefix.IsValid() || rl.PortMax < rl.PortMin {
			return fmt.Errorf("exit ruleset: invalid rule %v", rl)
		}
	}
	return nil
}

// nftFamily is the nft address family of a's matches: ip, or ip6 for an
// IPv6 address (an IPv4-mapped one included).
func nftFamily(a netip.Addr) string {
	if a.Is6() {
		return "ip6"
	}
	return "ip"
}

// ruleMatch renders the match part of an exit-policy rule.
func ruleMatch(r tunnel.Rule) string {
	fam := nftFamily(r.Prefix.Addr())
	var b strings.Builder
	fmt.Fprintf(&b, "%s daddr %s", fam, r.Prefix.Masked())
	ports := ""
	if r.PortMin != 0 || r.PortMax != 0 {
		ports = strconv.Itoa(int(r.PortMin))
		if r.PortMax != r.PortMin {
			ports += "-" + strconv.Itoa(int(r.PortMax))
		}
	}
	switch r.Proto {
	case tunnel.ProtoAny:
		if ports != "" {
			b.WriteString(" meta l4proto { tcp, udp } th dport " + ports)
		}
	case tunnel.ProtoTCP, tunnel.ProtoUDP:
		if ports != "" {
			fmt.Fprintf(&b, " %s dport %s", r.Proto, ports)
		} else {
			fmt.Fprintf(&b, " meta l4proto %s", r.Proto)
		}
	case tunnel.ProtoICMP:
		if fam == "ip6" {
			b.WriteString(" meta l4proto ipv6-icmp")
		} else {
			b.WriteString(" meta l4proto icmp")
		}
	default:
		fmt.Fprintf(&b, " meta l4proto %d", uint8(r.Proto))
		if ports != "" {
			b.WriteString(" th dport " + ports)
		}
	}
	return b.String()
}

func q(s string) string { return strconv.Quote(s) }

// replaceTable starts an nft -f script that atomically replaces the inet
// table: declaring it, then deleting it, makes the load idempotent in one
// transaction. It returns the script and a line writer, with the new
// table's opening line written.
func replaceTable(table string) (*strings.Builder, func(format string, args ...any)) {
	b := new(strings.Builder)
	w := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	w("table inet %s {}", table)
	w("delete table inet %s", table)
	w("table inet %s {", table)
	return b, w
}

// splitFamilies renders prefixes as nft set elements, IPv4 and IPv6 apart.
func splitFamilies(prefixes []netip.Prefix) (v4, v6 []string) {
	for _, p := range prefixes {
		p = p.Masked()
		if p.Addr().Is4() {
			v4 = append(v4, p.String())
		} else if p.Addr().Is6() && !p.Addr().Is4In6() {
			v6 = append(v6, p.String())
		}
	}
	return v4, v6
}

// renderDenySets returns an nft -f script that replaces the elements of
// the exit table's deny4 and deny6 sets with prefixes. nft -f applies a
// script as one transaction, so no packet sees the sets half updated; the
// rules, their counters and the peer limits stay as they are.
func renderDenySets(table string, prefixes []netip.Prefix) string {
	v4, v6 := splitFamilies(prefixes)
	var b strings.Builder
	for _, set := range []struct {
		name  string
		elems []string
	}{{"deny4", v4}, {"deny6", v6}} {
		fmt.Fprintf(&b, "flush set inet %s %s\n", table, set.name)
		if len(set.elems) > 0 {
			fmt.Fprintf(&b, "add element inet %s %s { %s }\n", table, set.name, strings.Join(set.elems, ", "))
		}
	}
	return b.String()
}

// render returns an nft -f script that atomically replaces the table.
func (r exitRuleset) render() (string, error) {
	if err := r.validate(); err != nil {
		return "", err
	}
	v4, v6 := splitFamilies(r.DenyPrefixes)
	ifc := q(r.Iface)
	b, w := replaceTable(r.Table)
	w("\tset deny4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge")
	if len(v4) > 0 {
		w("\t\telements = { %s }", strings.Join(v4, ", "))
	}
	w("\t}")
	w("\tset deny6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t\tauto-merge")
	if len(v6) > 0 {
		w("\t\telements = { %s }", strings.Join(v6, ", "))
	}
	w("\t}")
	// Peers with a bandwidth limit: their flows are never offloaded, so the
	// limit keeps applying.
	w("\tset limited4 {\n\t\ttype ipv4_addr\n\t}")
	w("\tset limited6 {\n\t\ttype ipv6_addr\n\t}")
	if len(r.Offload) > 0 {
		devs := make([]string, len(r.Offload))
		for i, d := range r.Offload {
			devs[i] = q(d)
		}
		w("\tflowtable ft {\n\t\thook ingress priority filter\n\t\tdevices = { %s }\n\t}", strings.Join(devs, ", "))
	}

	// Forward path: clamp MSS, keep unsolicited connections out of the
	// tunnel, enforce per-peer limits and the exit policy.
	w("\tchain forward {")
	w("\t\ttype filter hook forward priority filter; policy accept;")
	w("\t\tiifname %s tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu", ifc)
	w("\t\toifname %s tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu", ifc)
	w("\t\toifname %s iifname != %s ct state new counter drop comment %s", ifc, ifc, q("inbound-new"))
	w("\t\tiifname %s jump peer_limits", ifc)
	w("\t\toifname %s jump peer_limits", ifc)
	if len(r.Offload) > 0 {
		// Only flows that exist already (the exit policy accepted their
		// first packet) are offloaded; the kernel offloads a flow once it
		// has seen traffic both ways.
		for _, dir := range []string{"iifname", "oifname"} {
			w("\t\t%s %s meta nfproto ipv4 meta l4proto { tcp, udp } ct state established ip saddr != @limited4 ip daddr != @limited4 flow add @ft", dir, ifc)
			w("\t\t%s %s meta nfproto ipv6 meta l4proto { tcp, udp } ct state established ip6 saddr != @limited6 ip6 daddr != @limited6 flow add @ft", dir, ifc)
		}
	}
	w("\t\tiifname %s jump exit_policy", ifc)
	w("\t}")
	w("\tchain peer_limits {")
	w("\t}")
	w("\tchain exit_policy {")
	w("\t\tct state established,related accept")
	w("\t\toifname %s counter drop comment %s", ifc, q(blockComment+"peer-to-peer"))
	if r.DNS4.IsValid() {
		w("\t\tct original ip daddr %s meta l4proto { tcp, udp } th dport 53 accept", r.Gateway.V4)
	}
	if r.DNS6.IsValid() && r.Gateway.V6.IsValid() {
		w("\t\tct original ip6 daddr %s meta l4proto { tcp, udp } th dport 53 accept", r.Gateway.V6)
	}
	for _, rl := range r.Allow {
		w("\t\t%s accept", ruleMatch(rl))
	}
	for _, rl := range r.Deny {
		w("\t\t%s counter drop comment %s", ruleMatch(rl), q(blockComment+"operator "+rl.String()))
	}
	w("\t\tip daddr @deny4 counter drop comment %s", q(blockComment+"deny4"))
	w("\t\tip6 daddr @deny6 counter drop comment %s", q(blockComment+"deny6"))
	if !r.Pool6.IsValid() {
		// No IPv6 service: nothing may leave as IPv6.
		w("\t\tmeta nfproto ipv6 counter drop comment %s", q(blockComment+"no-ipv6"))
	}
	w("\t}")

	// Input: consumers reach the node itself only for ping on the gateway.
	w("\tchain input {")
	w("\t\ttype filter hook input priority filter; policy accept;")
	w("\t\tiifname %s jump exit_input", ifc)
	w("\t}")
	w("\tchain exit_input {")
	w("\t\tip daddr %s icmp type echo-request accept", r.Gateway.V4)
	if r.Gateway.V6.IsValid() {
		w("\t\tip6 daddr %s icmpv6 type echo-request accept", r.Gateway.V6)
	}
	w("\t\tcounter drop comment %s", q(blockComment+"node"))
	w("\t}")

	w("\tchain nat_pre {")
	w("\t\ttype nat hook prerouting priority dstnat; policy accept;")
	if r.DNS4.IsValid() {
		w("\t\tiifname %s ip daddr %s meta l4proto { tcp, udp } th dport 53 dnat ip to %s", ifc, r.Gateway.V4, r.DNS4)
	}
	if r.DNS6.IsValid() && r.Gateway.V6.IsValid() {
		w("\t\tiifname %s ip6 daddr %s meta l4proto { tcp, udp } th dport 53 dnat ip6 to %s", ifc, r.Gateway.V6, r.DNS6)
	}
	w("\t}")
	w("\tchain nat_post {")
	w("\t\ttype nat hook postrouting priority srcnat; policy accept;")
	w("\t\toifname != %s ip saddr %s masquerade", ifc, r.Pool4.Masked())
	if r.Pool6.IsValid() {
		w("\t\toifname != %s ip6 saddr %s masquerade", ifc, r.Pool6.Masked())
	}
	w("\t}")
	w("}")
	return b.String(), nil
}

// peerLimitComment tags the rate-limit rules of one peer.
func peerLimitComment(pub tunnel.PublicKey) string { return "peer:" + pub.Hex()[:16] }

// renderPeerLimit returns nft commands that add the bandwidth limit rules
// of one peer (each direction limited to bytesPerSec).
func renderPeerLimit(table string, pub tunnel.PublicKey, addrs []netip.Prefix, bytesPerSec uint64) string {
	var b strings.Builder
	c := q(peerLimitComment(pub))
	for _, p := range addrs {
		fam, set := nftFamily(p.Addr()), "limited4"
		if fam == "ip6" {
			set = "limited6"
		}
		fmt.Fprintf(&b, "add element inet %s %s { %s }\n", table, set, p.Addr())
		for _, dir := range []string{"saddr", "daddr"} {
			fmt.Fprintf(&b, "add rule inet %s peer_limits %s %s %s limit rate over %d bytes/second drop comment %s\n",
				table, fam, dir, p.Addr(), bytesPerSec, c)
		}
	}
	return b.String()
}

// killSwitchRuleset is the consumer's leak protection table.
type killSwitchRuleset struct {
	Table string
	Iface string
	// Endpoint is the provider's WireGuard endpoint; invalid for a held
	// kill switch (no tunnel: only Direct leaves).
	Endpoint netip.AddrPort
	// Hold renders a kill switch without an endpoint (HoldKillSwitch).
	Hold bool
	// Direct are TCP/UDP destinations accepted outside the tunnel (the
	// provider's session control connection).
	Direct []netip.AddrPort
	// ICE: the tunnel's datagrams travel over an ICE connection, not from
	// the device's socket to Endpoint (which is then not admitted): Path
	// are the UDP destinations that connection sends to (the selected
	// pair's remote address; none when this side's TURN server, a Direct
	// destination, carries it).
	ICE  bool
	Path []netip.AddrPort
	// ICEChecks admits UDP out of, and unsolicited UDP into, the sockets
	// marked SocketMark (this host's ICE agent's) to and from any
	// address, while a session's ICE connectivity checks run: a peer first
	// heard from at an address it never offered (peer-reflexive: behind a
	// symmetric NAT) is answered. No other socket gains anything.
	ICEChecks bool
	// PortMapGateway, when valid, admits the port-mapping client's
	// sockets (marked PortMapMark) to that IPv4 router: SSDP searches to
	// the multicast group and the router's unicast answers, TCP to the
	// router (UPnP IGD's HTTP).
	PortMapGateway netip.Addr
}

// ssdpGroup is SSDP's IPv4 multicast group and port.
var ssdpGroup = netip.MustParseAddrPort("239.255.255.250:1900")

func (k killSwitchRuleset) render() (string, error) {
	if err := validTableName(k.Table); err != nil {
		return "", err
	}
	if err := validIfName(k.Iface); err != nil {
		return "", err
	}
	if !k.Hold && !k.ICE && (!k.Endpoint.IsValid() || k.Endpoint.Port() == 0) {
		return "", fmt.Errorf("kill switch: invalid endpoint %v", k.Endpoint)
	}
	gw := k.PortMapGateway.Unmap()
	if k.PortMapGateway.IsValid() && (!gw.Is4() || gw.IsUnspecified() || gw.IsMulticast()) {
		return "", fmt.Errorf("kill switch: invalid port-mapping gateway %v", k.PortMapGateway)
	}
	var udp []netip.AddrPort // WireGuard's datagrams to the provider
	switch {
	case k.ICE:
		udp = k.Path
	case k.Endpoint.IsValid():
		udp = []netip.AddrPort{k.Endpoint}
	}
	b, w := replaceTable(k.Table)
	w("\tchain output {")
	w("\t\ttype filter hook output priority filter; policy accept;")
	w("\t\toifname \"lo\" accept")
	w("\t\toifname %s accept", q(k.Iface))
	for _, u := range udp {
		if !u.IsValid() || u.Port() == 0 {
			return "", fmt.Errorf("kill switch: invalid path destination %v", u)
		}
		a := u.Addr().Unmap()
		w("\t\t%s daddr %s udp dport %d accept", nftFamily(a), a, u.Port())
	}
	for _, d := range k.Direct {
		if !d.IsValid() || d.Port() == 0 {
			return "", fmt.Errorf("kill switch: invalid direct destination %v", d)
		}
		a := d.Addr().Unmap()
		w("\t\t%s daddr %s meta l4proto { tcp, udp } th dport %d accept", nftFamily(a), a, d.Port())
	}
	if k.ICEChecks {
		// By socket, not by port: a port the agent has released may be
		// reused by another socket while this is loaded. Only a process
		// with CAP_NET_ADMIN can mark a socket.
		w("\t\tmeta mark %#x meta l4proto udp accept comment %s", SocketMark, q("ice-checks"))
	}
	if gw.IsValid() {
		// UPnP IGD: SSDP discovery, then HTTP to the port the router
		// names in its answer; only from the port-mapping client's
		// sockets, only to the router.
		w("\t\tmeta mark %#x ip daddr %s udp dport %d accept comment %s", PortMapMark, ssdpGroup.Addr(), ssdpGroup.Port(), q("portmap"))
		w("\t\tmeta mark %#x ip daddr %s meta l4proto tcp accept comment %s", PortMapMark, gw, q("portmap"))
	}
	w("\t\tudp sport 68 udp dport 67 accept")
	w("\t\tudp sport 546 udp dport 547 accept")
	w("\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept")
	w("\t\tcounter reject with icmpx type admin-prohibited comment %s", q("killswitch"))
	w("\t}")
	// Inbound: nothing unsolicited from outside the tunnel. Replies to
	// what the output chain let out (the provider, the ICE path, the
	// control destinations) are established; DHCP offers and IPv6
	// neighbour discovery keep the uplink configured.
	w("\tchain input {")
	w("\t\ttype filter hook input priority filter; policy accept;")
	w("\t\tiifname \"lo\" accept")
	w("\t\tiifname %s accept", q(k.Iface))
	w("\t\tct state established,related accept")
	if k.ICEChecks {
		// The socket a datagram is delivered to, looked up here: ours
		// only.
		w("\t\tmeta l4proto udp socket mark %#x accept comment %s", SocketMark, q("ice-checks"))
	}
	if gw.IsValid() {
		// SSDP's answers come from the router's own address, not the
		// group searched: no conntrack entry matches them.
		w("\t\tip saddr %s meta l4proto udp socket mark %#x accept comment %s", gw, PortMapMark, q("portmap"))
	}
	w("\t\tudp sport 67 udp dport 68 accept")
	w("\t\tudp sport 547 udp dport 546 accept")
	w("\t\ticmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept")
	w("\t\tcounter drop comment %s", q("killswitch-inbound"))
	w("\t}")
	w("}")
	return b.String(), nil
}

// sumBlocked sums the packet counters of the counted drop rules in the
// JSON output of `nft -j list table inet T` whose comment starts with
// prefix.
func sumBlocked(listJSON []byte, prefix string) (uint64, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(listJSON, &doc); err != nil {
		return 0, fmt.Errorf("parse nft json: %w", err)
	}
	var total uint64
	for _, obj := range doc.Nftables {
		raw, ok := obj["rule"]
		if !ok {
			continue
		}
		var rule struct {
			Comment string                       `json:"comment"`
			Expr    []map[string]json.RawMessage `json:"expr"`
		}
		if err := json.Unmarshal(raw, &rule); err != nil {
			return 0, fmt.Errorf("parse nft json rule: %w", err)
		}
		if !strings.HasPrefix(rule.Comment, prefix) {
			continue
		}
		for _, e := range rule.Expr {
			if c, ok := e["counter"]; ok {
				var ctr struct {
					Packets uint64 `json:"packets"`
				}
				if err := json.Unmarshal(c, &ctr); err != nil {
					return 0, fmt.Errorf("parse nft json counter: %w", err)
				}
				total += ctr.Packets
			}
		}
	}
	return total, nil
}
