package probe

import (
	"net/netip"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/openmyst/openmyst/nat/addrs"
)

// MaxDialAddrs is the most of a requester's addresses a checker dials.
const MaxDialAddrs = 8

// Dialable returns the addresses of as a checker may dial (at most
// MaxDialAddrs): IP addresses over TCP or QUIC, and circuit addresses
// whose relay part is such an address; never DNS names, and never an
// address nat/addrs.Remote refuses (loopback and private ones only with
// allowPrivate).
func Dialable(as []ma.Multiaddr, allowPrivate bool) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, min(len(as), MaxDialAddrs))
	for _, a := range as {
		if len(out) == MaxDialAddrs {
			break
		}
		if dialable(a, allowPrivate) {
			out = append(out, a)
		}
	}
	return out
}

func dialable(a ma.Multiaddr, allowPrivate bool) bool {
	if len(a.Bytes()) > MaxTextLen {
		return false
	}
	target := a
	if relay, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT }); relay != nil && !relay.Equal(a) {
		// A circuit address: the relay's part is what gets dialled.
		target = relay
		if _, err := target.ValueForProtocol(ma.P_P2P); err != nil {
			return false
		}
	}
	if len(target) == 0 {
		return false
	}
	switch target[0].Protocol().Code {
	case ma.P_IP4, ma.P_IP6:
	default:
		return false // DNS names and anything else: not dialled
	}
	ip, err := manet.ToIP(target)
	if err != nil {
		return false
	}
	ap, ok := netip.AddrFromSlice(ip)
	if !ok || !addrs.Remote(ap, allowPrivate) {
		return false
	}
	_, tcpErr := target.ValueForProtocol(ma.P_TCP)
	_, quicErr := target.ValueForProtocol(ma.P_QUIC_V1)
	return tcpErr == nil || quicErr == nil
}
