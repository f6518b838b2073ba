package main

import (
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/node"
)

// registerLocation declares a provider's --location.* flags into o; who
// ("" or "provider ") starts the help of the override flags.
func registerLocation(fs *pflag.FlagSet, o *node.LocationOptions, who string) {
	fs.StringVar(&o.Country, "location.country", "", who+"country, ISO 3166-1 alpha-2 (required unless --location.geoip-db detects it; overrides it)")
	fs.StringVar(&o.City, "location.city", "", who+"city (overrides --location.geoip-db)")
	fs.Uint32Var(&o.ASN, "location.asn", 0, who+"autonomous system number (overrides --location.geoip-db)")
	fs.StringVar(&o.IPType, "location.ip-type", "", "residential, hosting or mobile (default: from --location.geoip-db, else residential)")
	fs.StringVar(&o.DB, "location.geoip-db", "", "offline MaxMind-format GeoIP database (GeoLite2/GeoIP2 City or Country, .mmdb) to detect the location from; unset: the --location.* flags alone")
	fs.StringVar(&o.ASNDB, "location.geoip-asn-db", "", "separate MaxMind-format ASN database (GeoLite2-ASN) for --location.geoip-db")
	fs.StringVar(&o.IP, "location.ip", "", "public IP to look up in --location.geoip-db (default: the p2p host's observed or listen addresses)")
}
