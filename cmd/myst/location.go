package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/geoip"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/node"
)

// locationFlags are a provider's --location.* flags: the GeoIP databases
// and the address to look up, and the fields that override detection.
type locationFlags struct {
	country, city, ipType string
	asn                   uint32
	ip, db, asnDB         string
}

// register declares the detection flags (the override flags are declared
// by the commands themselves, next to their other flags).
func (f *locationFlags) registerDetection(fs *pflag.FlagSet) {
	fs.StringVar(&f.db, "location.geoip-db", "", "offline MaxMind-format GeoIP database (GeoLite2/GeoIP2 City or Country, .mmdb) to detect the location from; unset: the --location.* flags alone")
	fs.StringVar(&f.asnDB, "location.geoip-asn-db", "", "separate MaxMind-format ASN database (GeoLite2-ASN) for --location.geoip-db")
	fs.StringVar(&f.ip, "location.ip", "", "public IP to look up in --location.geoip-db (default: the p2p host's observed or listen addresses)")
}

// ipTypeUsage is the help text of --location.ip-type.
const ipTypeUsage = "residential, hosting or mobile (default: from --location.geoip-db, else residential)"

// override is the flags that replace detected fields.
func (f *locationFlags) override() (geoip.Override, error) {
	o := geoip.Override{Country: strings.ToUpper(f.country), City: f.city, ASN: f.asn}
	if f.ipType != "" {
		t, err := market.ParseIPType(f.ipType)
		if err != nil {
			return o, fmt.Errorf("--location.ip-type: %w", err)
		}
		o.IPType = t
	}
	return o, o.Validate()
}

// check validates the flags without opening a database.
func (f *locationFlags) check() error {
	if _, err := f.override(); err != nil {
		return err
	}
	if f.db == "" {
		if f.country == "" {
			return fmt.Errorf("give --location.country (ISO 3166-1 alpha-2), or --location.geoip-db to detect it")
		}
		if f.ip != "" || f.asnDB != "" {
			return fmt.Errorf("--location.ip and --location.geoip-asn-db need --location.geoip-db")
		}
	}
	if f.ip != "" {
		ip, err := netip.ParseAddr(f.ip)
		if err != nil {
			return fmt.Errorf("--location.ip: %w", err)
		}
		if !geoip.Public(ip) {
			return fmt.Errorf("--location.ip %s is not a public address", ip)
		}
	}
	return nil
}

// provisional is the location the flags give before detection, good
// enough to validate the rest of a proposal (detection replaces it).
func (f *locationFlags) provisional() market.Location {
	o, _ := f.override()
	loc := market.Location{Country: o.Country, City: o.City, ASN: o.ASN, IPType: o.IPType}
	if loc.IPType == "" {
		loc.IPType = market.IPResidential
	}
	if loc.Country == "" && f.db != "" {
		loc.Country = "DE" // any valid code: the database decides
	}
	return loc
}

// locator opens the databases (if any) and builds the provider's
// geoip.Locator; closeDB releases them.
func (f *locationFlags) locator(log *slog.Logger) (l *geoip.Locator, closeDB func(), err error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	o, _ := f.override()
	cfg := geoip.LocatorConfig{Override: o, Log: log}
	closeDB = func() {}
	if f.db != "" {
		db, err := geoip.Open(f.db, f.asnDB)
		if err != nil {
			return nil, nil, err
		}
		log.Info("geoip: databases opened", "files", strings.TrimSpace(f.db+" "+f.asnDB), "types", fmt.Sprint(db.Types()))
		cfg.DB = db
		closeDB = func() { _ = db.Close() }
	}
	if f.ip != "" {
		cfg.IP, _ = netip.ParseAddr(f.ip)
	}
	if l, err = geoip.NewLocator(cfg); err != nil {
		closeDB()
		return nil, nil, err
	}
	return l, closeDB, nil
}

// location is the daemon's --location.* flags.
func (f *discoveryFlags) location() locationFlags {
	l := f.geo
	l.country, l.city, l.asn, l.ipType = f.country, f.city, f.asn, f.ipType
	return l
}

// announceLocation decides the location of the daemon's --provider.announce
// proposal: at once when no host address is needed (no database, or
// --location.ip), else through later once the p2p host is bootstrapped.
// later is nil when the location is final; it may be called once.
func (f *discoveryFlags) announceLocation(log *slog.Logger) (now market.Location, later func(h host.Host) (market.Location, error), err error) {
	lf := f.location()
	l, closeDB, err := lf.locator(log)
	if err != nil {
		return now, nil, err
	}
	if !l.NeedsHostAddrs() {
		defer closeDB()
		now, err = l.Locate(nil)
		return now, nil, err
	}
	return lf.provisional(), func(h host.Host) (market.Location, error) {
		defer closeDB()
		return l.Locate(node.HostIPs(h))
	}, nil
}
