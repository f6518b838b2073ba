package p2p

import (
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// PublicAddrs returns the addresses of addrs that a peer elsewhere on the
// internet can use: relay circuit addresses (through a public relay) and
// public IP addresses. Loopback, private, link-local, unspecified and
// other unroutable addresses are dropped, as are DNS names (which a node
// learns about itself only from configuration).
func PublicAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		if isCircuit(a) {
			// The relay's own part must be public too.
			relay, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
			if relay == nil || !manet.IsPublicAddr(relay) {
				continue
			}
			out = append(out, a)
			continue
		}
		if manet.IsPublicAddr(a) {
			out = append(out, a)
		}
	}
	return out
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// addrFilter is the DHT's filter of the addresses it stores and serves.
func addrFilter(publicOnly bool) func([]ma.Multiaddr) []ma.Multiaddr {
	if publicOnly {
		return PublicAddrs
	}
	return func(a []ma.Multiaddr) []ma.Multiaddr { return a }
}
