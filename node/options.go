package node

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/geoip"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/money"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/tunnel"
)

// LocationOptions are a provider's location settings as an operator gives
// them (the --location.* flags bind here): an optional GeoIP database and
// the address to look up, and the fields that override detection.
type LocationOptions struct {
	// Country (ISO 3166-1 alpha-2, any case), City, ASN and IPType
	// override the database (and are the whole location without one).
	Country, City, IPType string
	ASN                   uint32
	// IP is the public address to look up; DB and ASNDB are MaxMind-format
	// database files.
	IP, DB, ASNDB string
}

// Register declares a provider's --location.* flags on fs; who ("" or
// "provider ") starts the help of the override flags.
func (o *LocationOptions) Register(fs *pflag.FlagSet, who string) {
	fs.StringVar(&o.Country, "location.country", "", who+"country, ISO 3166-1 alpha-2 (required unless --location.geoip-db detects it; overrides it)")
	fs.StringVar(&o.City, "location.city", "", who+"city (overrides --location.geoip-db)")
	fs.Uint32Var(&o.ASN, "location.asn", 0, who+"autonomous system number (overrides --location.geoip-db)")
	fs.StringVar(&o.IPType, "location.ip-type", "", "residential, hosting or mobile (default: from --location.geoip-db, else residential)")
	fs.StringVar(&o.DB, "location.geoip-db", "", "offline MaxMind-format GeoIP database (GeoLite2/GeoIP2 City or Country, .mmdb) to detect the location from; unset: the --location.* flags alone")
	fs.StringVar(&o.ASNDB, "location.geoip-asn-db", "", "separate MaxMind-format ASN database (GeoLite2-ASN) for --location.geoip-db")
	fs.StringVar(&o.IP, "location.ip", "", "public IP to look up in --location.geoip-db (default: the p2p host's observed or listen addresses)")
}

// Config checks the options (without opening a database) and returns the
// LocationConfig they describe.
func (o LocationOptions) Config() (LocationConfig, error) {
	ov := geoip.Override{Country: strings.ToUpper(o.Country), City: o.City, ASN: o.ASN}
	if o.IPType != "" {
		t, err := market.ParseIPType(o.IPType)
		if err != nil {
			return LocationConfig{}, fmt.Errorf("--location.ip-type: %w", err)
		}
		ov.IPType = t
	}
	c := LocationConfig{Override: ov, DB: o.DB, ASNDB: o.ASNDB}
	if err := ov.Validate(); err != nil {
		return c, err
	}
	if o.DB == "" {
		if o.Country == "" {
			return c, errors.New("give --location.country (ISO 3166-1 alpha-2), or --location.geoip-db to detect it")
		}
		if o.IP != "" || o.ASNDB != "" {
			return c, errors.New("--location.ip and --location.geoip-asn-db need --location.geoip-db")
		}
	}
	if o.IP != "" {
		ip, err := netip.ParseAddr(o.IP)
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

// ParsePrice parses a price per hour and per GiB in MYST.
func ParsePrice(hour, gib string) (market.Price, error) {
	ph, err := money.ParseMYST(hour)
	if err != nil {
		return market.Price{}, fmt.Errorf("--price.per-hour: %w", err)
	}
	pg, err := money.ParseMYST(gib)
	if err != nil {
		return market.Price{}, fmt.Errorf("--price.per-gib: %w", err)
	}
	return market.Price{PerHour: money.MustAmount(ph), PerGiB: money.MustAmount(pg)}, nil
}

// OfferOptions are what a provider announces, as an operator gives them.
type OfferOptions struct {
	// ChainID is the chain whose proposals the network gossips.
	ChainID uint64
	// Location decides the proposal's location.
	Location LocationOptions
	// PriceHour and PriceGiB are MYST decimals.
	PriceHour, PriceGiB string
	// Hermes are the accepted hermes ids (at least one).
	Hermes []string
	// Allow, when set, serves only these consumer identities.
	Allow []string
}

// Offer builds and checks the provider's proposal template (its
// location is provisional until detection).
func (o OfferOptions) Offer() (market.Proposal, error) {
	var p market.Proposal
	lc, err := o.Location.Config()
	if err != nil {
		return p, fmt.Errorf("--provider.announce: %w", err)
	}
	price, err := ParsePrice(o.PriceHour, o.PriceGiB)
	if err != nil {
		return p, err
	}
	if len(o.Hermes) == 0 {
		return p, errors.New("--provider.announce needs --provider.hermes")
	}
	hermes, err := parseAddrs(o.Hermes)
	if err != nil {
		return p, fmt.Errorf("--provider.hermes: %w", err)
	}
	access := market.AccessPolicy{Kind: market.AccessPublic}
	if len(o.Allow) > 0 {
		allow, err := parseAddrs(o.Allow)
		if err != nil {
			return p, fmt.Errorf("--provider.allow: %w", err)
		}
		access = market.AccessPolicy{Kind: market.AccessAllowList, Allow: allow}
	}
	p = market.Proposal{Version: market.ProposalVersion, ChainID: o.ChainID, ServiceType: market.ServiceWireGuard,
		Location: lc.Provisional(), Price: price, Hermes: hermes, Access: access}
	return p, p.ValidateOffer()
}

func parseAddrs(ss []string) ([]common.Address, error) {
	out := make([]common.Address, 0, len(ss))
	for _, s := range ss {
		a, err := identity.ParseAddress(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// ServeOptions are a served provider's settings as an operator gives them
// (`myst service` and `myst daemon --provider.serve` bind their flags
// here, each under its own names).
type ServeOptions struct {
	// HermesURL is the hermes API (empty: DevHermesURL on a dev chain,
	// refused elsewhere).
	HermesURL string
	// HermesCA is a PEM file of the CA that signed the hermes's TLS
	// certificate (empty: the system roots); HermesInsecureHTTP allows a
	// plain http:// HermesURL to a non-loopback host (LoadHermesTLS).
	HermesCA           string
	HermesInsecureHTTP bool
	// HermesFlags is the prefix of the flags giving HermesCA (errors name
	// <prefix>ca).
	HermesFlags string
	// ExitMode is "userspace" or "kernel".
	ExitMode string
	// Advertise is the address consumers reach WGPort at, or
	// AdvertiseAuto to find it (ProviderConfig.AdvertiseAuto); empty:
	// decided by the chain and the ICE servers (LoopbackAdvertise).
	Advertise string
	WGPort    uint16
	// PortMap maps the WireGuard and ICE ports on the home router
	// (ProviderConfig.PortMap).
	PortMap bool
	// Allow are extra exit allow rules (tunnel.ParseRule).
	Allow []string
	// PayInterval and PayGrace tune invoicing (0: defaults).
	PayInterval, PayGrace time.Duration
	// PriceHour and PriceGiB are MYST decimals.
	PriceHour, PriceGiB string
	// ICE are the STUN and TURN servers of the provider's sessions.
	ICE ICESettings
	// TransactorURL, when set, registers and settles the provider through
	// that transactor (docs/transactor.md).
	TransactorURL string
	// Relays are circuit relay peers (multiaddrs with /p2p/ID) a provider
	// with its own libp2p host uses behind a NAT (ProviderConfig.Relays).
	Relays []string
	// Caps are the operator's caps (ProviderConfig.Caps).
	Caps CapsOptions
	// Settle is the automatic settlement of the provider's earnings.
	Settle SettleOptions
}

// LoopbackAdvertise is the advertised address of a provider on a devnet
// that lives on this machine: without --wg.advertise, a provider on a dev
// chain whose STUN/TURN servers are all on loopback (as `myst devnet`
// writes them), or that has none, advertises it; any other provider
// finds its endpoint (AdvertiseAuto), and one on a chain that is not a
// dev chain never advertises a loopback address (resolveAdvertise).
const LoopbackAdvertise = "127.0.0.1"

// HermesTLS loads how the provider trusts its hermes (HermesCA).
func (o ServeOptions) HermesTLS() (HermesTLS, error) {
	ht, err := LoadHermesTLS(o.HermesCA, o.HermesInsecureHTTP)
	if err != nil {
		return ht, fmt.Errorf("--%sca: %w", o.HermesFlags, err)
	}
	return ht, nil
}

// Config is the provider configuration the options describe (without
// identity, chain, p2p host and locator): it reads the hermes CA file.
func (o ServeOptions) Config() (ProviderConfig, error) {
	var cfg ProviderConfig
	ht, err := o.HermesTLS()
	if err != nil {
		return cfg, err
	}
	mode, err := tunnel.ParseMode(o.ExitMode)
	if err != nil {
		return cfg, err
	}
	price, err := ParsePrice(o.PriceHour, o.PriceGiB)
	if err != nil {
		return cfg, err
	}
	// Without --wg.advertise the provider decides by its chain's id
	// (resolveAdvertise).
	var adv netip.Addr
	advAuto := o.Advertise == AdvertiseAuto
	if !advAuto && o.Advertise != "" {
		if adv, err = netip.ParseAddr(o.Advertise); err != nil {
			return cfg, fmt.Errorf("--wg.advertise: %w (or %q to find it)", err, AdvertiseAuto)
		}
	}
	var rules []tunnel.Rule
	for _, a := range o.Allow {
		r, err := tunnel.ParseRule(a)
		if err != nil {
			return cfg, fmt.Errorf("--exit.allow: %w", err)
		}
		rules = append(rules, r)
	}
	iceCfg, err := o.ICE.Config()
	if err != nil {
		return cfg, err
	}
	relays, err := p2p.ParseBootstrap(o.Relays)
	if err != nil {
		return cfg, fmt.Errorf("--p2p.relays: %w", err)
	}
	caps, err := o.Caps.Caps()
	if err != nil {
		return cfg, err
	}
	auto, err := o.Settle.Policy()
	if err != nil {
		return cfg, err
	}
	return ProviderConfig{Relays: relays, Caps: caps, AutoSettle: auto,
		HermesURL: o.HermesURL, HermesTLS: ht, Price: price, WGPort: o.WGPort, AdvertiseAddr: adv, AdvertiseAuto: advAuto, PortMap: o.PortMap, Allow: rules, ExitMode: mode,
		Payment: Payment{Interval: o.PayInterval, Grace: o.PayGrace}, ICE: iceCfg, TransactorURL: o.TransactorURL,
	}, nil
}
