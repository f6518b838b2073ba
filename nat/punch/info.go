package punch

import (
	"errors"
	"fmt"
	"net/netip"
)

// Mappings a side announces: its NAT's mapping behaviour as STUN saw it.
const (
	// Easy is endpoint-independent mapping: one public port for every
	// destination, so the peer can aim at Info.Addr.
	Easy = "easy"
	// Hard is endpoint-dependent mapping: a new random public port for
	// every destination; only Info.Addr's IP address is useful.
	Hard = "hard"
)

// Info is one side's punch parameters, carried in its ICE offer over the
// signed session stream.
type Info struct {
	// Mapping is Easy or Hard.
	Mapping string `json:"mapping"`
	// Addr is the public address (IPv4 and port) STUN saw the side's
	// punch socket at.
	Addr string `json:"addr"`
}

// ErrBadInfo is returned for a peer's Info that cannot be used.
var ErrBadInfo = errors.New("punch: bad info")

// maxInfoAddr bounds Info.Addr ("255.255.255.255:65535").
const maxInfoAddr = 21

// Validate checks a peer's Info: a known mapping and an IPv4 address and
// port that allowed accepts (nat/addrs.Remote under the session's
// candidate policy: never loopback, link-local — which covers the cloud
// metadata address — multicast, broadcast or unspecified; private ones
// only on a devnet). It returns the address.
func (i Info) Validate(allowed func(netip.Addr) bool) (netip.AddrPort, error) {
	if i.Mapping != Easy && i.Mapping != Hard {
		return netip.AddrPort{}, fmt.Errorf("%w: mapping %.16q", ErrBadInfo, i.Mapping)
	}
	if len(i.Addr) > maxInfoAddr {
		return netip.AddrPort{}, fmt.Errorf("%w: address of %d bytes", ErrBadInfo, len(i.Addr))
	}
	ap, err := netip.ParseAddrPort(i.Addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: address %q: %w", ErrBadInfo, i.Addr, err)
	}
	a := ap.Addr()
	if !a.Is4() {
		return netip.AddrPort{}, fmt.Errorf("%w: address %s is not IPv4", ErrBadInfo, a)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: port 0", ErrBadInfo)
	}
	if allowed == nil || !allowed(a) {
		return netip.AddrPort{}, fmt.Errorf("%w: address %s is not allowed", ErrBadInfo, a)
	}
	return ap, nil
}

// Applies reports whether punching can help between a side with mapping
// mine and a peer with mapping peer: exactly one of them hard.
func Applies(mine, peer string) bool {
	return (mine == Hard && peer == Easy) || (mine == Easy && peer == Hard)
}
