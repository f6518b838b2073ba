package geoip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/openmyst/openmyst/market"
)

// Override is the operator's --location.* flags: every non-zero field
// replaces the detected one.
type Override struct {
	Country string
	City    string
	ASN     uint32
	IPType  market.IPType
}

// Validate checks the fields that are set (the country in upper case).
func (o Override) Validate() error {
	if o.Country != "" && !market.ValidCountry(o.Country) {
		return fmt.Errorf("geoip: --location.country %q: want an ISO 3166-1 alpha-2 code", o.Country)
	}
	if o.IPType != "" {
		if _, err := market.ParseIPType(string(o.IPType)); err != nil {
			return fmt.Errorf("geoip: --location.ip-type: %w", err)
		}
	}
	if err := (market.Location{Country: "DE", City: o.City, IPType: market.IPResidential}).Validate(); err != nil {
		return fmt.Errorf("geoip: --location.city: %w", err)
	}
	return nil
}

// LocatorConfig configures a Locator.
type LocatorConfig struct {
	// DB is the database; nil means no detection (the flags alone).
	DB *DB
	// IP, when valid, is the address looked up instead of the host's.
	// It must be public.
	IP netip.Addr
	// Override are the flags.
	Override Override
	// Log receives why detection was skipped (default slog.Default()).
	Log *slog.Logger
}

// Locator decides a provider's announced location.
type Locator struct {
	cfg     LocatorConfig
	logOnce sync.Once
}

// NewLocator checks cfg: the override's country, ip type and city must be
// valid when given, and an explicit IP must be public.
func NewLocator(cfg LocatorConfig) (*Locator, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	o := &cfg.Override
	o.Country = strings.ToUpper(o.Country)
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if cfg.IP.IsValid() {
		if cfg.DB == nil {
			return nil, errors.New("geoip: --location.ip needs --location.geoip-db")
		}
		if !Public(cfg.IP) {
			return nil, fmt.Errorf("geoip: --location.ip %s is not a public address", cfg.IP)
		}
		cfg.IP = cfg.IP.Unmap()
	}
	if cfg.DB == nil && o.Country == "" {
		return nil, errors.New("geoip: give --location.country, or --location.geoip-db to detect it")
	}
	return &Locator{cfg: cfg}, nil
}

// Detects reports whether the Locator uses a database.
func (l *Locator) Detects() bool { return l.cfg.DB != nil }

// NeedsHostAddrs reports whether Locate looks at the host's addresses (a
// database and no explicit IP).
func (l *Locator) NeedsHostAddrs() bool { return l.cfg.DB != nil && !l.cfg.IP.IsValid() }

// Locate returns the location to announce. With a database it looks up
// the explicit IP, else the first public address of hostAddrs (the p2p
// host's observed and listen addresses); a missing public address or
// record is logged once and the flags are used alone. Flags override
// detected fields one by one; the ip type defaults to residential. It
// fails only when no country is known.
func (l *Locator) Locate(hostAddrs []netip.Addr) (market.Location, error) {
	var det Record
	if l.cfg.DB != nil {
		ip, ok := l.cfg.IP, l.cfg.IP.IsValid()
		if !ok {
			ip, ok = FirstPublic(hostAddrs)
		}
		if !ok {
			l.once("geoip: no public address to look up (behind NAT and no peer has reported the observed address yet); using the --location.* flags; set --location.ip to your public IP",
				"addrs", fmt.Sprint(hostAddrs))
		} else if r, err := l.cfg.DB.Lookup(ip); err != nil {
			l.once("geoip: address not located; using the --location.* flags", "ip", ip.String(), "err", err)
		} else {
			det = r
			l.cfg.Log.Info("geoip: location detected", "ip", ip.String(), "country", r.Country, "city", r.City,
				"asn", r.ASN, "as_org", r.ASOrg, "ip_type", string(r.IPType))
		}
	}
	loc := det.Location()
	o := l.cfg.Override
	if o.Country != "" {
		loc.Country = o.Country
	}
	if o.City != "" {
		loc.City = o.City
	}
	if o.ASN != 0 {
		loc.ASN = o.ASN
	}
	if o.IPType != "" {
		loc.IPType = o.IPType
	}
	if loc.IPType == "" {
		loc.IPType = market.IPResidential
	}
	if loc.Country == "" {
		return market.Location{}, errors.New("geoip: location unknown: no country detected; give --location.country or --location.ip")
	}
	if err := loc.Validate(); err != nil {
		return market.Location{}, fmt.Errorf("geoip: %w", err)
	}
	return loc, nil
}

func (l *Locator) once(msg string, args ...any) {
	l.logOnce.Do(func() { l.cfg.Log.Info(msg, args...) })
}
