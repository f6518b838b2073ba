package market

import (
	"fmt"
	"strings"
)

// IPType says what kind of address a provider exits from.
type IPType string

// The ip types a proposal may carry.
const (
	IPResidential IPType = "residential"
	IPHosting     IPType = "hosting"
	IPMobile      IPType = "mobile"
)

// ParseIPType validates s as an IPType.
func ParseIPType(s string) (IPType, error) {
	switch t := IPType(s); t {
	case IPResidential, IPHosting, IPMobile:
		return t, nil
	}
	return "", fmt.Errorf("market: ip type %q: want residential, hosting or mobile", s)
}

// MaxCityLen bounds Location.City in bytes.
const MaxCityLen = 64

// Location is where a provider's traffic exits.
type Location struct {
	// Country is an ISO 3166-1 alpha-2 code, upper case ("DE").
	Country string `json:"country"`
	// City is free text, optional, at most MaxCityLen bytes of printable text.
	City string `json:"city"`
	// ASN is the autonomous system number of the exit address, 0 if unknown.
	ASN uint32 `json:"asn"`
	// IPType is residential, hosting or mobile.
	IPType IPType `json:"ip_type"`
}

// Validate checks every field of l.
func (l Location) Validate() error {
	if !ValidCountry(l.Country) {
		return fmt.Errorf("market: location: country %q is not an ISO 3166-1 alpha-2 code", l.Country)
	}
	if len(l.City) > MaxCityLen {
		return fmt.Errorf("market: location: city is %d bytes, max %d", len(l.City), MaxCityLen)
	}
	for _, r := range l.City {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return fmt.Errorf("market: location: city contains control or invalid character %U", r)
		}
	}
	if _, err := ParseIPType(string(l.IPType)); err != nil {
		return fmt.Errorf("market: location: %w", err)
	}
	return nil
}

// iso3166 lists the officially assigned ISO 3166-1 alpha-2 codes.
const iso3166 = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ " +
	"EC EE EG EH ER ES ET " +
	"FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT " +
	"JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ " +
	"LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ " +
	"OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA " +
	"RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU " +
	"WF WS " +
	"YE YT " +
	"ZA ZM ZW"

var countries = func() map[string]struct{} {
	m := make(map[string]struct{}, 256)
	for _, c := range strings.Fields(iso3166) {
		m[c] = struct{}{}
	}
	return m
}()

// ValidCountry reports whether c is an assigned ISO 3166-1 alpha-2 code in
// upper case.
func ValidCountry(c string) bool {
	_, ok := countries[c]
	return ok
}
