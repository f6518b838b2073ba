// Package addrs decides which remote addresses NAT traversal may send
// packets to: the one rule shared by ICE's candidate checks (nat/ice) and
// the relay's permissions (relay), so that neither a peer's candidates nor
// a relay client can aim a node's packets at its own host or network.
package addrs

import "net/netip"

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// Remote reports whether packets may be sent to a. Unspecified,
// multicast, broadcast and link-local addresses (the last include the
// cloud metadata address 169.254.169.254) never; loopback and private
// (RFC 1918, ULA) ones only with allowPrivate, for loopback devnets.
func Remote(a netip.Addr, allowPrivate bool) bool {
	a = a.Unmap()
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a == broadcast:
		return false
	case a.IsLoopback(), a.IsPrivate():
		return allowPrivate
	}
	return true
}

// sharedSpace is RFC 6598's shared address space, a carrier-grade NAT's
// inside.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// Public reports whether a is an address peers elsewhere on the internet
// can send to: Remote without private addresses, and not in a carrier's
// shared address space (RFC 6598, 100.64.0.0/10), where a home router
// behind a carrier-grade NAT gets its WAN address.
func Public(a netip.Addr) bool {
	return Remote(a, false) && !sharedSpace.Contains(a.Unmap())
}
