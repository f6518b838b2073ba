package node

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/openmyst/openmyst/geoip"
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

// LocationConfig decides a provider's location: an optional offline
// GeoIP database and the fields that override it.
type LocationConfig struct {
	// Override replaces detected fields (and is the whole location
	// without a database).
	Override geoip.Override
	// DB and ASNDB are MaxMind-format database files (optional).
	DB, ASNDB string
	// IP is the public address to look up (zero: the p2p host's).
	IP netip.Addr
}

// Provisional is the location before detection, good enough to validate
// the rest of a proposal (detection replaces it).
func (c LocationConfig) Provisional() market.Location {
	o := c.Override
	loc := market.Location{Country: o.Country, City: o.City, ASN: o.ASN, IPType: o.IPType}
	if loc.IPType == "" {
		loc.IPType = market.IPResidential
	}
	if loc.Country == "" && c.DB != "" {
		loc.Country = "DE" // any valid code: the database decides
	}
	return loc
}

// OpenLocator opens the databases (if any) and builds the provider's
// geoip.Locator; closeDB releases them.
func OpenLocator(c LocationConfig, log *slog.Logger) (l *geoip.Locator, closeDB func(), err error) {
	if log == nil {
		log = slog.Default()
	}
	cfg := geoip.LocatorConfig{Override: c.Override, IP: c.IP, Log: log}
	closeDB = func() {}
	if c.DB != "" {
		db, err := geoip.Open(c.DB, c.ASNDB)
		if err != nil {
			return nil, nil, err
		}
		log.Info("geoip: databases opened", "files", strings.TrimSpace(c.DB+" "+c.ASNDB), "types", fmt.Sprint(db.Types()))
		cfg.DB = db
		closeDB = func() { _ = db.Close() }
	}
	if l, err = geoip.NewLocator(cfg); err != nil {
		closeDB()
		return nil, nil, err
	}
	return l, closeDB, nil
}

// AnnounceLocation decides the location of an announced proposal: at once
// when no host address is needed (no database, or an IP given), else
// through later once the p2p host is bootstrapped. later is nil when the
// location is final; it may be called once.
func AnnounceLocation(c LocationConfig, log *slog.Logger) (now market.Location, later func(h host.Host) (market.Location, error), err error) {
	l, closeDB, err := OpenLocator(c, log)
	if err != nil {
		return now, nil, err
	}
	if !l.NeedsHostAddrs() {
		defer closeDB()
		now, err = l.Locate(nil)
		return now, nil, err
	}
	return c.Provisional(), func(h host.Host) (market.Location, error) {
		defer closeDB()
		return l.Locate(HostIPs(h))
	}, nil
}
