package geoip

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"
)

// BenchmarkLookup: DB.Lookup (every supported field decoded, rules
// applied) against a bare maxminddb lookup of country.iso_code on the same
// file, over 4096 /24s with City-style records. Compare the ns/op of
// the two sub-benchmarks: the ratio is the cost of the full record.
func BenchmarkLookup(b *testing.B) {
	var entries []entry
	for i := range 4096 {
		rec := city("DE", fmt.Sprintf("City %d", i))
		rec["autonomous_system_number"] = mmdbtype.Uint32(64500 + i)
		entries = append(entries, entry{fmt.Sprintf("1.%d.%d.0/24", i/256, i%256), rec})
	}
	path := writeDB(b, "GeoLite2-City", entries...)
	db, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ips := make([]netip.Addr, 4096)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{1, byte(i / 256), byte(i % 256), 7})
	}
	b.Run("baseline-country-only", func(b *testing.B) {
		r, err := maxminddb.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		var rec struct {
			Country struct {
				ISOCode string `maxminddb:"iso_code"`
			} `maxminddb:"country"`
		}
		for i := range b.N {
			if err := r.Lookup(ips[i%len(ips)]).Decode(&rec); err != nil || rec.Country.ISOCode != "DE" {
				b.Fatal(err)
			}
		}
	})
	b.Run("geoip", func(b *testing.B) {
		for i := range b.N {
			r, err := db.Lookup(ips[i%len(ips)])
			if err != nil || r.ASN == 0 {
				b.Fatal(err)
			}
		}
	})
}
