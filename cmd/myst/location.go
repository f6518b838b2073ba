package main

import (
	"fmt"
	"net/netip"
	"strings"

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

// register declares the --location.* flags; who ("" or "provider ")
// starts the help of the override flags.
func (f *locationFlags) register(fs *pflag.FlagSet, who string) {
	fs.StringVar(&f.country, "location.country", "", who+"country, ISO 3166-1 alpha-2 (required unless --location.geoip-db detects it; overrides it)")
	fs.StringVar(&f.city, "location.city", "", who+"city (overrides --location.geoip-db)")
	fs.Uint32Var(&f.asn, "location.asn", 0, who+"autonomous system number (overrides --location.geoip-db)")
	fs.StringVar(&f.ipType, "location.ip-type", "", "residential, hosting or mobile (default: from --location.geoip-db, else residential)")
	fs.StringVar(&f.db, "location.geoip-db", "", "offline MaxMind-format GeoIP database (GeoLite2/GeoIP2 City or Country, .mmdb) to detect the location from; unset: the --location.* flags alone")
	fs.StringVar(&f.asnDB, "location.geoip-asn-db", "", "separate MaxMind-format ASN database (GeoLite2-ASN) for --location.geoip-db")
	fs.StringVar(&f.ip, "location.ip", "", "public IP to look up in --location.geoip-db (default: the p2p host's observed or listen addresses)")
}

// config checks the flags (without opening a database) and returns the
// node.LocationConfig they describe.
func (f *locationFlags) config() (node.LocationConfig, error) {
	o := geoip.Override{Country: strings.ToUpper(f.country), City: f.city, ASN: f.asn}
	if f.ipType != "" {
		t, err := market.ParseIPType(f.ipType)
		if err != nil {
			return node.LocationConfig{}, fmt.Errorf("--location.ip-type: %w", err)
		}
		o.IPType = t
	}
	c := node.LocationConfig{Override: o, DB: f.db, ASNDB: f.asnDB}
	if err := o.Validate(); err != nil {
		return c, err
	}
	if f.db == "" {
		if f.country == "" {
			return c, fmt.Errorf("give --location.country (ISO 3166-1 alpha-2), or --location.geoip-db to detect it")
		}
		if f.ip != "" || f.asnDB != "" {
			return c, fmt.Errorf("--location.ip and --location.geoip-asn-db need --location.geoip-db")
		}
	}
	if f.ip != "" {
		ip, err := netip.ParseAddr(f.ip)
		if err != nil {
			return c, fmt.Errorf("--location.ip: %w", err)
		}
		if !geoip.Public(ip) {
			return c, fmt.Errorf("--location.ip %s is not a public address", ip)
		}
		c.IP = ip
	}
	return c, nil
}
