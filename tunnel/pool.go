package tunnel

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
)

// ErrPoolExhausted is returned by AddressPool.Allocate when every address is in use.
var ErrPoolExhausted = errors.New("tunnel address pool exhausted")

// Default tunnel address ranges of a provider.
var (
	DefaultPoolV4 = netip.MustParsePrefix("10.182.0.0/16")
	DefaultPoolV6 = netip.MustParsePrefix("fd7e:6d79:7374::/64")
)

// Lease is the pair of tunnel addresses one session holds: an IPv4 /32 and,
// if the pool has an IPv6 range, an IPv6 /128 with the same host index.
type Lease struct {
	V4 netip.Addr
	V6 netip.Addr // invalid if the pool has no IPv6 range
}

// Prefixes returns the lease as host prefixes (/32 and /128), the consumer's
// AllowedIPs on the provider and its Address in wg-quick.
func (l Lease) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	if l.V4.IsValid() {
		out = append(out, netip.PrefixFrom(l.V4, 32))
	}
	if l.V6.IsValid() {
		out = append(out, netip.PrefixFrom(l.V6, 128))
	}
	return out
}

// AddressPool hands out per-session tunnel addresses. Host index 1 of each
// range is the provider's own tunnel address (Gateway); index 0 and the
// IPv4 broadcast address are never handed out. It is safe for concurrent use.
type AddressPool struct {
	v4, v6 netip.Prefix
	size   uint32 // number of allocatable indices, 2..size+1
	mu     sync.Mutex
	used   map[uint32]bool
	next   uint32
}

// NewAddressPool returns a pool over v4 (required, at most /30) and v6
// (optional: pass netip.Prefix{}; at most /120).
func NewAddressPool(v4, v6 netip.Prefix) (*AddressPool, error) {
	if !v4.IsValid() || !v4.Addr().Is4() {
		return nil, fmt.Errorf("address pool: need an IPv4 prefix, got %v", v4)
	}
	if v4.Bits() > 30 {
		return nil, fmt.Errorf("address pool: %v is too small (need at most /30)", v4)
	}
	if v6.IsValid() && (!v6.Addr().Is6() || v6.Addr().Is4In6() || v6.Bits() > 120) {
		return nil, fmt.Errorf("address pool: bad IPv6 prefix %v (need a native IPv6 prefix of at most /120)", v6)
	}
	hostBits := 32 - v4.Bits()
	if hostBits > 24 {
		hostBits = 24 // cap the table: 16M sessions is plenty
	}
	size := uint32(1)<<hostBits - 3 // minus network, gateway, broadcast
	return &AddressPool{v4: v4.Masked(), v6: v6.Masked(), size: size, used: map[uint32]bool{}}, nil
}

func addrAt(p netip.Prefix, idx uint32) netip.Addr {
	if !p.IsValid() {
		return netip.Addr{}
	}
	base := new(big.Int).SetBytes(p.Addr().AsSlice())
	base.Add(base, big.NewInt(int64(idx)))
	b := base.FillBytes(make([]byte, p.Addr().BitLen()/8))
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Gateway returns the provider's own tunnel addresses (host index 1).
func (p *AddressPool) Gateway() Lease {
	return Lease{V4: addrAt(p.v4, 1), V6: addrAt(p.v6, 1)}
}

// Ranges returns the pool's prefixes (the provider's tunnel network).
func (p *AddressPool) Ranges() (v4, v6 netip.Prefix) { return p.v4, p.v6 }

// Allocate reserves the next free lease.
func (p *AddressPool) Allocate() (Lease, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range p.size {
		idx := 2 + p.next
		p.next = (p.next + 1) % p.size
		if !p.used[idx] {
			p.used[idx] = true
			return Lease{V4: addrAt(p.v4, idx), V6: addrAt(p.v6, idx)}, nil
		}
	}
	return Lease{}, ErrPoolExhausted
}

func (p *AddressPool) index(l Lease) (uint32, error) {
	if !p.v4.Contains(l.V4) {
		return 0, fmt.Errorf("address pool: %v is not in %v", l.V4, p.v4)
	}
	b := l.V4.As4()
	base := p.v4.Addr().As4()
	idx := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) -
		(uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3]))
	if idx < 2 || idx >= 2+p.size {
		return 0, fmt.Errorf("address pool: %v is not allocatable", l.V4)
	}
	if l.V6.IsValid() && l.V6 != addrAt(p.v6, idx) {
		return 0, fmt.Errorf("address pool: %v does not pair with %v", l.V6, l.V4)
	}
	return idx, nil
}

// Reserve marks a specific lease as used, for restoring sessions after a
// restart. It fails if the lease is outside the pool or already taken.
func (p *AddressPool) Reserve(l Lease) error {
	idx, err := p.index(l)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used[idx] {
		return fmt.Errorf("address pool: %v already in use", l.V4)
	}
	p.used[idx] = true
	return nil
}

// Release returns a lease to the pool. Releasing a free or foreign lease is
// an error (it points at a session-layer bug).
func (p *AddressPool) Release(l Lease) error {
	idx, err := p.index(l)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.used[idx] {
		return fmt.Errorf("address pool: %v was not allocated", l.V4)
	}
	delete(p.used, idx)
	return nil
}

// InUse returns the number of allocated leases.
func (p *AddressPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}
