package geoip

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/openmyst/openmyst/market"
)

// net is one prefix and its record in a test database.
type entry struct {
	prefix string
	rec    mmdbtype.Map
}

// writeDB builds a MaxMind DB of dbType with the entries (reserved
// networks allowed, so private prefixes can be put in it too).
func writeDB(t testing.TB, dbType string, entries ...entry) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IncludeReservedNetworks: true, Languages: []string{"en"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		_, n, err := net.ParseCIDR(e.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, e.rec); err != nil {
			t.Fatalf("insert %s: %v", e.prefix, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func city(country, name string) mmdbtype.Map {
	m := mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(country)}}
	if name != "" {
		m["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(name)}}
	}
	return m
}

func asn(n uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(n), "autonomous_system_organization": mmdbtype.String(org)}
}

// cityDB maps the three IPv4 documentation prefixes and 2001:db8::/32;
// 10.0.0.0/8 is in it too, to prove private addresses are never looked up.
func cityDB(t testing.TB) string {
	return writeDB(t, "GeoLite2-City",
		entry{"192.0.2.0/24", city("DE", "Berlin")},
		entry{"198.51.100.0/24", city("FR", "")},
		entry{"2001:db8::/32", city("JP", "Tokyo")},
		entry{"10.0.0.0/8", city("US", "Private")},
		entry{"203.0.113.0/24", func() mmdbtype.Map {
			m := city("NL", "Amsterdam")
			m["traits"] = mmdbtype.Map{"user_type": mmdbtype.String("hosting")}
			return m
		}()},
	)
}

func asnDB(t testing.TB) string {
	return writeDB(t, "GeoLite2-ASN",
		entry{"192.0.2.0/24", asn(3320, "Deutsche Telekom AG")},
		entry{"203.0.113.0/24", asn(64500, "Example Hosting")},
	)
}

func TestLookupCityAndASN(t *testing.T) {
	db, err := Open(cityDB(t), asnDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Types(); len(got) != 2 || got[0] != "GeoLite2-City" || got[1] != "GeoLite2-ASN" {
		t.Fatalf("types %v", got)
	}
	cases := []struct {
		ip   string
		want Record
	}{
		{"192.0.2.7", Record{Country: "DE", City: "Berlin", ASN: 3320, ASOrg: "Deutsche Telekom AG"}},
		{"198.51.100.1", Record{Country: "FR"}},
		{"203.0.113.7", Record{Country: "NL", City: "Amsterdam", ASN: 64500, ASOrg: "Example Hosting", IPType: market.IPHosting}},
		{"::ffff:192.0.2.9", Record{Country: "DE", City: "Berlin", ASN: 3320, ASOrg: "Deutsche Telekom AG"}},
		{"2001:db8::1", Record{Country: "JP", City: "Tokyo"}},
	}
	for _, c := range cases {
		got, err := db.Lookup(netip.MustParseAddr(c.ip))
		if err != nil {
			t.Fatalf("%s: %v", c.ip, err)
		}
		if got != c.want {
			t.Errorf("%s: got %+v want %+v", c.ip, got, c.want)
		}
	}
}

func TestLookupMiss(t *testing.T) {
	db, err := Open(cityDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, ip := range []string{"8.8.8.8", "2001:db9::1"} {
		r, err := db.Lookup(netip.MustParseAddr(ip))
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: err %v, want ErrNotFound", ip, err)
		}
		if r != (Record{}) {
			t.Fatalf("%s: non-zero record %+v on a miss", ip, r)
		}
	}
}

func TestPrivateAddressNeverLookedUp(t *testing.T) {
	db, err := Open(cityDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The database has a record for 10.0.0.0/8; Lookup must not return it.
	for _, ip := range []string{"10.1.2.3", "127.0.0.1", "192.168.1.1", "172.16.0.1", "100.64.0.1", "169.254.1.1",
		"::1", "fd00::1", "fe80::1", "0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "::ffff:10.1.2.3"} {
		r, err := db.Lookup(netip.MustParseAddr(ip))
		if !errors.Is(err, ErrNotPublic) {
			t.Fatalf("%s: err %v, want ErrNotPublic", ip, err)
		}
		if r.Country != "" {
			t.Fatalf("%s: looked up: %+v", ip, r)
		}
	}
	// A locator given only private host addresses keeps the flags.
	var logs bytes.Buffer
	l, err := NewLocator(LocatorConfig{DB: db, Override: Override{Country: "SE"}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		loc, err := l.Locate([]netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("127.0.0.1")})
		if err != nil {
			t.Fatal(err)
		}
		if loc != (market.Location{Country: "SE", IPType: market.IPResidential}) {
			t.Fatalf("location %+v", loc)
		}
	}
	if n := strings.Count(logs.String(), "no public address"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
	// An explicit private --location.ip is refused.
	if _, err := NewLocator(LocatorConfig{DB: db, IP: netip.MustParseAddr("10.1.2.3")}); err == nil || !strings.Contains(err.Error(), "not a public address") {
		t.Fatalf("private --location.ip accepted: %v", err)
	}
}

func TestPublic(t *testing.T) {
	for ip, want := range map[string]bool{
		"203.0.113.7": true, "1.1.1.1": true, "2a00:1450::1": true, "2001:db8::1": true,
		"10.0.0.1": false, "100.127.255.255": false, "100.128.0.1": true, "198.18.0.1": false,
		"240.0.0.1": false, "0.1.2.3": false, "192.0.0.8": false, "fc00::1": false, "ff02::1": false,
	} {
		if got := Public(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Public(%s) = %v, want %v", ip, got, want)
		}
	}
	if _, ok := FirstPublic(nil); ok {
		t.Fatal("public address from nothing")
	}
	got, ok := FirstPublic([]netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("1.1.1.1")})
	if !ok || got != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("FirstPublic = %v %v", got, ok)
	}
}

func TestIPTypeDerivation(t *testing.T) {
	with := func(k string, v mmdbtype.DataType) mmdbtype.Map {
		m := city("DE", "")
		m[mmdbtype.String(k)] = v
		return m
	}
	traits := func(k string, v mmdbtype.DataType) mmdbtype.Map {
		return with("traits", mmdbtype.Map{mmdbtype.String(k): v})
	}
	path := writeDB(t, "openmyst-test",
		entry{"1.0.0.0/24", with("ip_type", mmdbtype.String("mobile"))},
		entry{"1.0.1.0/24", traits("user_type", mmdbtype.String("cellular"))},
		entry{"1.0.2.0/24", traits("user_type", mmdbtype.String("residential"))},
		entry{"1.0.3.0/24", with("connection_type", mmdbtype.String("Cellular"))},
		entry{"1.0.4.0/24", with("connection_type", mmdbtype.String("Cable/DSL"))},
		entry{"1.0.5.0/24", with("is_hosting_provider", mmdbtype.Bool(true))},
		entry{"1.0.6.0/24", traits("user_type", mmdbtype.String("business"))},
		entry{"1.0.7.0/24", func() mmdbtype.Map { // ip_type wins over user_type
			m := traits("user_type", mmdbtype.String("hosting"))
			m["ip_type"] = mmdbtype.String("residential")
			return m
		}()},
		entry{"1.0.8.0/24", with("ip_type", mmdbtype.String("satellite"))},
		entry{"1.0.9.0/24", mmdbtype.Map{"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("AT")},
			"traits": mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(8447)}}},
		entry{"1.0.10.0/24", city("XX", "")},
		entry{"1.0.11.0/24", city("DE", strings.Repeat("x", 65))},
	)
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for ip, want := range map[string]Record{
		"1.0.0.1":  {Country: "DE", IPType: market.IPMobile},
		"1.0.1.1":  {Country: "DE", IPType: market.IPMobile},
		"1.0.2.1":  {Country: "DE", IPType: market.IPResidential},
		"1.0.3.1":  {Country: "DE", IPType: market.IPMobile},
		"1.0.4.1":  {Country: "DE", IPType: market.IPResidential},
		"1.0.5.1":  {Country: "DE", IPType: market.IPHosting},
		"1.0.6.1":  {Country: "DE"},
		"1.0.7.1":  {Country: "DE", IPType: market.IPResidential},
		"1.0.9.1":  {Country: "AT", ASN: 8447},
		"1.0.11.1": {Country: "DE"},
	} {
		got, err := db.Lookup(netip.MustParseAddr(ip))
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		if got != want {
			t.Errorf("%s: got %+v want %+v", ip, got, want)
		}
	}
	for _, ip := range []string{"1.0.8.1", "1.0.10.1"} {
		if _, err := db.Lookup(netip.MustParseAddr(ip)); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: bad record accepted or error without the file name: %v", ip, err)
		}
	}
}

func TestOpenBadFiles(t *testing.T) {
	good, err := os.ReadFile(cityDB(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := map[string][]byte{
		"empty.mmdb":     nil,
		"text.mmdb":      []byte("this is not a MaxMind database\n"),
		"truncated.mmdb": good[:len(good)/2],
		"nometa.mmdb":    good[:len(good)-200],
	}
	for name, data := range bad {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := Open(p)
		if err == nil {
			// Some damage only shows on lookup; it must still be an error
			// naming the file, never a crash or a wrong answer.
			_, err = db.Lookup(netip.MustParseAddr("192.0.2.1"))
			db.Close()
		}
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err %v, want an error naming the file", name, err)
		}
	}
	missing := filepath.Join(dir, "missing.mmdb")
	if _, err := Open(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: %v", err)
	}
	// A bad second file closes the first and names the second.
	if _, err := Open(cityDB(t), missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing second file: %v", err)
	}
}

func TestLocatorFlagsOverride(t *testing.T) {
	db, err := Open(cityDB(t), asnDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	host := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.44")}
	cases := []struct {
		name string
		cfg  LocatorConfig
		want market.Location
	}{
		{"detected from host", LocatorConfig{DB: db}, market.Location{Country: "DE", City: "Berlin", ASN: 3320, IPType: market.IPResidential}},
		{"explicit ip", LocatorConfig{DB: db, IP: netip.MustParseAddr("203.0.113.7")}, market.Location{Country: "NL", City: "Amsterdam", ASN: 64500, IPType: market.IPHosting}},
		{"country flag", LocatorConfig{DB: db, Override: Override{Country: "at"}}, market.Location{Country: "AT", City: "Berlin", ASN: 3320, IPType: market.IPResidential}},
		{"city flag", LocatorConfig{DB: db, Override: Override{City: "Potsdam"}}, market.Location{Country: "DE", City: "Potsdam", ASN: 3320, IPType: market.IPResidential}},
		{"asn flag", LocatorConfig{DB: db, Override: Override{ASN: 1}}, market.Location{Country: "DE", City: "Berlin", ASN: 1, IPType: market.IPResidential}},
		{"ip type flag", LocatorConfig{DB: db, IP: netip.MustParseAddr("203.0.113.7"), Override: Override{IPType: market.IPMobile}}, market.Location{Country: "NL", City: "Amsterdam", ASN: 64500, IPType: market.IPMobile}},
		{"miss keeps flags", LocatorConfig{DB: db, IP: netip.MustParseAddr("8.8.8.8"), Override: Override{Country: "GB"}}, market.Location{Country: "GB", IPType: market.IPResidential}},
		{"no db", LocatorConfig{Override: Override{Country: "DE", City: "Bonn", ASN: 5, IPType: market.IPHosting}}, market.Location{Country: "DE", City: "Bonn", ASN: 5, IPType: market.IPHosting}},
	}
	for _, c := range cases {
		c.cfg.Log = slog.New(slog.DiscardHandler)
		l, err := NewLocator(c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := l.Locate(host)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: got %+v want %+v", c.name, got, c.want)
		}
	}
	// Nothing detected and no country flag: a clear error.
	l, err := NewLocator(LocatorConfig{DB: db, IP: netip.MustParseAddr("8.8.8.8"), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Locate(nil); err == nil || !strings.Contains(err.Error(), "--location.country") {
		t.Fatalf("unknown location accepted: %v", err)
	}
	for _, cfg := range []LocatorConfig{
		{}, // nothing at all
		{Override: Override{Country: "XX"}},
		{Override: Override{Country: "DE", IPType: "satellite"}},
		{Override: Override{Country: "DE", City: "a\x01b"}},
		{IP: netip.MustParseAddr("192.0.2.1"), Override: Override{Country: "DE"}}, // --location.ip without a database
	} {
		if _, err := NewLocator(cfg); err == nil {
			t.Errorf("NewLocator(%+v) accepted", cfg)
		}
	}
}
