package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/openmyst/openmyst/market"
)

// ErrNotFound is returned by Lookup when no database has a record for the
// address.
var ErrNotFound = errors.New("geoip: address not in the database")

// ErrNotPublic is returned by Lookup for an address that is not public
// (see Public); the databases are not consulted.
var ErrNotPublic = errors.New("geoip: not a public address")

// Record is what the databases say about one address. Empty fields were not
// found.
type Record struct {
	// Country is an ISO 3166-1 alpha-2 code in upper case.
	Country string
	// City is the English city name.
	City string
	// ASN is the autonomous system number; ASOrg its organisation.
	ASN   uint32
	ASOrg string
	// IPType is the detected ip type, empty when no field says.
	IPType market.IPType
}

// Location is r as a market.Location (IPType may be empty).
func (r Record) Location() market.Location {
	return market.Location{Country: r.Country, City: r.City, ASN: r.ASN, IPType: r.IPType}
}

// DB is one or more open MaxMind-format databases. It is safe for
// concurrent Lookup; Close must not race with Lookup.
type DB struct {
	files []file
}

type file struct {
	path string
	r    *maxminddb.Reader
}

// Open opens the database at path and any more (e.g. a separate ASN
// database). Each field of a Record comes from the first file that has it.
// Errors name the file.
func Open(path string, more ...string) (*DB, error) {
	db := &DB{}
	for _, p := range append([]string{path}, more...) {
		if p == "" {
			continue
		}
		r, err := maxminddb.Open(p)
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("geoip: open %s: %w", p, err)
		}
		db.files = append(db.files, file{path: p, r: r})
	}
	if len(db.files) == 0 {
		return nil, errors.New("geoip: no database file given")
	}
	return db, nil
}

// Close releases every file.
func (db *DB) Close() error {
	var errs []error
	for _, f := range db.files {
		if err := f.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("geoip: close %s: %w", f.path, err))
		}
	}
	db.files = nil
	return errors.Join(errs...)
}

// Types are the database types the files declare (metadata
// database_type), in order, e.g. "GeoLite2-City".
func (db *DB) Types() []string {
	out := make([]string, len(db.files))
	for i, f := range db.files {
		out[i] = f.r.Metadata.DatabaseType
	}
	return out
}

// record is the union of the fields read from every supported layout.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
	ASN    uint32 `maxminddb:"autonomous_system_number"`
	ASOrg  string `maxminddb:"autonomous_system_organization"`
	Traits struct {
		ASN               uint32 `maxminddb:"autonomous_system_number"`
		ASOrg             string `maxminddb:"autonomous_system_organization"`
		UserType          string `maxminddb:"user_type"`
		IsHostingProvider bool   `maxminddb:"is_hosting_provider"`
	} `maxminddb:"traits"`
	IPType            string `maxminddb:"ip_type"`
	ConnectionType    string `maxminddb:"connection_type"`
	IsHostingProvider bool   `maxminddb:"is_hosting_provider"`
}

// Lookup returns what the databases know about ip: ErrNotPublic for a
// non-public address (never looked up), ErrNotFound when no file has a
// record, and an error naming the file when a file cannot be decoded.
func (db *DB) Lookup(ip netip.Addr) (Record, error) {
	ip = ip.Unmap()
	if !Public(ip) {
		return Record{}, fmt.Errorf("%w: %s", ErrNotPublic, ip)
	}
	var out Record
	found := false
	for _, f := range db.files {
		if f.r.Metadata.IPVersion == 4 && !ip.Is4() {
			continue
		}
		res := f.r.Lookup(ip)
		if err := res.Err(); err != nil {
			return Record{}, fmt.Errorf("geoip: %s: look up %s: %w", f.path, ip, err)
		}
		if !res.Found() {
			continue
		}
		var rec record
		if err := res.Decode(&rec); err != nil {
			return Record{}, fmt.Errorf("geoip: %s: decode record of %s: %w", f.path, ip, err)
		}
		r, err := rec.fields()
		if err != nil {
			return Record{}, fmt.Errorf("geoip: %s: record of %s: %w", f.path, ip, err)
		}
		found = true
		out = merge(out, r)
	}
	if !found {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, ip)
	}
	return out, nil
}

// merge fills the empty fields of a from b.
func merge(a, b Record) Record {
	if a.Country == "" {
		a.Country = b.Country
	}
	if a.City == "" {
		a.City = b.City
	}
	if a.ASN == 0 {
		a.ASN, a.ASOrg = b.ASN, b.ASOrg
	}
	if a.IPType == "" {
		a.IPType = b.IPType
	}
	return a
}

// fields applies the derivation rules of the package doc.
func (r *record) fields() (Record, error) {
	var out Record
	out.Country = strings.ToUpper(r.Country.ISOCode)
	if out.Country == "" {
		out.Country = strings.ToUpper(r.RegisteredCountry.ISOCode)
	}
	if out.Country != "" && !market.ValidCountry(out.Country) {
		return Record{}, fmt.Errorf("country %q is not an ISO 3166-1 alpha-2 code", out.Country)
	}
	out.City = r.City.Names["en"]
	if out.City != "" && (market.Location{Country: "DE", City: out.City, IPType: market.IPResidential}).Validate() != nil {
		out.City = "" // too long or not printable for a proposal: leave it out
	}
	out.ASN, out.ASOrg = r.ASN, r.ASOrg
	if out.ASN == 0 {
		out.ASN, out.ASOrg = r.Traits.ASN, r.Traits.ASOrg
	}
	switch {
	case r.IPType != "":
		t, err := market.ParseIPType(r.IPType)
		if err != nil {
			return Record{}, fmt.Errorf("field ip_type: %w", err)
		}
		out.IPType = t
	case userType(r.Traits.UserType) != "":
		out.IPType = userType(r.Traits.UserType)
	case connectionType(r.ConnectionType) != "":
		out.IPType = connectionType(r.ConnectionType)
	case r.IsHostingProvider || r.Traits.IsHostingProvider:
		out.IPType = market.IPHosting
	}
	return out, nil
}

// userType maps GeoIP2 traits.user_type.
func userType(s string) market.IPType {
	switch s {
	case "residential":
		return market.IPResidential
	case "cellular":
		return market.IPMobile
	case "hosting", "content_delivery_network":
		return market.IPHosting
	}
	return ""
}

// connectionType maps GeoIP2-Connection-Type connection_type.
func connectionType(s string) market.IPType {
	switch s {
	case "Cable/DSL", "Dialup":
		return market.IPResidential
	case "Cellular":
		return market.IPMobile
	}
	return ""
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598).
var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")
	benchmark = netip.MustParsePrefix("198.18.0.0/15")
	reserved4 = netip.MustParsePrefix("240.0.0.0/4")
	ietf4     = netip.MustParsePrefix("192.0.0.0/24")
)

// Public reports whether ip can be a provider's public exit address worth
// looking up: not loopback, private (RFC 1918, IPv6 ULA), carrier-grade NAT
// (100.64.0.0/10), link-local, multicast, unspecified, 0.0.0.0/8,
// 192.0.0.0/24, 198.18.0.0/15 (benchmarking) or 240.0.0.0/4 (reserved,
// broadcast included). The documentation prefixes (192.0.2.0/24,
// 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) count as public so that
// tests and examples can use them.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return false
	}
	if ip.Is4() {
		for _, p := range []netip.Prefix{cgnat, thisNet, benchmark, reserved4, ietf4} {
			if p.Contains(ip) {
				return false
			}
		}
	}
	return true
}

// FirstPublic returns the first public address of candidates.
func FirstPublic(candidates []netip.Addr) (netip.Addr, bool) {
	for _, a := range candidates {
		if Public(a) {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
