package p2p

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Limits on connections through one of the network's relays. libp2p's
// resource manager counts a relayed (circuit) connection against the
// relay's IP address, and by default allows 8 connections per IPv4
// address and a new one every 5 s after a burst of 16: a node behind a
// NAT that talks to more than a handful of other NATed peers through the
// same relay — a consumer trying providers, a provider serving consumers —
// had its dials refused with "connections per ip limit exceeded" (seen in
// the NAT lab with seven providers and seven consumers). The relays a
// node is configured with (bootstrap peers and --p2p.relays) get these
// limits instead; every other address keeps libp2p's.
const (
	// RelayConnLimit is how many connections may be open through (or to)
	// one configured relay's address.
	RelayConnLimit = 256
	// relayConnRPS and relayConnBurst rate-limit new connections through
	// one configured relay's address.
	relayConnRPS, relayConnBurst = 10, 64
)

// resourceManager is libp2p's default resource manager with the limits
// above for the IP addresses of relays.
func resourceManager(relays []netip.Addr) (libp2p.Option, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	var conn4, conn6 []rcmgr.NetworkPrefixLimit
	var prefixes []rate.PrefixLimit
	for _, ip := range relays {
		p := netip.PrefixFrom(ip, ip.BitLen())
		if ip.Is4() {
			conn4 = append(conn4, rcmgr.NetworkPrefixLimit{Network: p, ConnCount: RelayConnLimit})
		} else {
			conn6 = append(conn6, rcmgr.NetworkPrefixLimit{Network: p, ConnCount: RelayConnLimit})
		}
		prefixes = append(prefixes, rate.PrefixLimit{Prefix: p, Limit: rate.Limit{RPS: relayConnRPS, Burst: relayConnBurst}})
	}
	// libp2p's own defaults: localhost unlimited, 0.2/s after a burst of
	// 16 per IPv4 address (/56 and /48 for IPv6).
	prefixes = append(prefixes,
		rate.PrefixLimit{Prefix: netip.MustParsePrefix("127.0.0.0/8")},
		rate.PrefixLimit{Prefix: netip.MustParsePrefix("::1/128")})
	limiter := &rate.Limiter{
		NetworkPrefixLimits: prefixes,
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: rate.Limit{RPS: 0.2, Burst: 16}}},
			IPv6SubnetLimits: []rate.SubnetLimit{
				{PrefixLength: 56, Limit: rate.Limit{RPS: 0.2, Burst: 16}},
				{PrefixLength: 48, Limit: rate.Limit{RPS: 0.5, Burst: 80}},
			},
			GracePeriod: time.Minute,
		},
	}
	mgr, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()),
		rcmgr.WithNetworkPrefixLimit(conn4, conn6), rcmgr.WithConnRateLimiters(limiter))
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	return libp2p.ResourceManager(mgr), nil
}

// relayIPs are the IP addresses of the configured relays' multiaddrs.
func relayIPs(cfg Config) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, ai := range StaticRelays(cfg) {
		for _, a := range ai.Addrs {
			ip, err := manet.ToIP(firstIP(a))
			if err != nil {
				continue
			}
			addr, ok := netip.AddrFromSlice(ip)
			addr = addr.Unmap()
			if ok && !seen[addr] {
				seen[addr] = true
				out = append(out, addr)
			}
		}
	}
	return out
}

// firstIP is a's leading /ip4 or /ip6 component (a DNS multiaddr has
// none).
func firstIP(a ma.Multiaddr) ma.Multiaddr {
	if len(a) == 0 {
		return nil
	}
	return ma.Multiaddr{a[0]}
}
