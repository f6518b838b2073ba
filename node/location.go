package node

import (
	"net/netip"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/openmyst/openmyst/market"
)

// Locator decides the location a provider announces, from the p2p host's
// addresses (geoip.Locator: an offline GeoIP database plus the
// --location.* flags).
type Locator interface {
	Locate(hostAddrs []netip.Addr) (market.Location, error)
}

// HostIPs are the IP addresses h knows for itself, best first: addresses
// AutoNAT confirmed reachable, then its advertised addresses (NAT port
// mappings, addresses peers observed through identify once enough peers
// agree, interface addresses), then every listen address. Duplicates are
// dropped; private addresses are kept (the caller filters).
func HostIPs(h host.Host) []netip.Addr {
	var addrs []ma.Multiaddr
	if c, ok := h.(interface {
		ConfirmedAddrs() (reachable, unreachable, unknown []ma.Multiaddr)
	}); ok {
		reachable, _, _ := c.ConfirmedAddrs()
		addrs = append(addrs, reachable...)
	}
	addrs = append(addrs, h.Addrs()...)
	if a, ok := h.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		addrs = append(addrs, a.AllAddrs()...)
	}
	addrs = append(addrs, h.Network().ListenAddresses()...)
	seen := make(map[netip.Addr]bool)
	var out []netip.Addr
	for _, m := range addrs {
		ip, err := manet.ToIP(m)
		if err != nil {
			continue
		}
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		a = a.Unmap()
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
