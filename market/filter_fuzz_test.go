package market

import (
	"net/url"
	"reflect"
	"testing"
)

// FuzzParseFilter feeds GET /proposals query strings to ParseFilter: it
// must never panic, and every filter it accepts must survive a round trip
// through Values unchanged (so what a client sends is what is applied).
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"",
		"country=de&ip_type=residential&max_price_gib=0.2",
		"service_type=wireguard&max_price_hour=0.000000000000000001&sort=price",
		"provider_id=0x0000000000000000000000000000000000000001&hermes_id=0x00000000000000000000000000000000000000aA",
		"country=DE&country=NL",
		"max_price_gib=-1",
		"max_price_gib=1e3",
		"sort=quality",
		"colour=blue",
		"provider_id=0xZZ",
		"%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := ParseFilter(q)
		if err != nil {
			return
		}
		back, err := ParseFilter(flt.Values())
		if err != nil {
			t.Fatalf("accepted %q but its Values %q are rejected: %v", raw, flt.Values().Encode(), err)
		}
		if !reflect.DeepEqual(back.Values(), flt.Values()) {
			t.Fatalf("round trip of %q changed the filter: %q -> %q", raw, flt.Values().Encode(), back.Values().Encode())
		}
	})
}
