package node

import (
	"strings"
	"testing"

	"github.com/openmyst/openmyst/market"
	"github.com/spf13/pflag"
)

// TestOfferOptions: the announce options build a valid proposal; each bad
// option is refused.
func TestOfferOptions(t *testing.T) {
	good := OfferOptions{ChainID: 1337, Location: LocationOptions{Country: "de", IPType: "hosting"}, PriceHour: "0.01", PriceGiB: "0.2",
		Hermes: []string{"0x00000000000000000000000000000000000000aa"}}
	p, err := good.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if p.Location.Country != "DE" || p.Location.IPType != market.IPHosting || p.Price.PerGiB.MYST() != "0.2" || p.Access.Kind != market.AccessPublic {
		t.Fatalf("offer = %+v", p)
	}
	for name, mut := range map[string]func(f *OfferOptions){
		"no country":  func(f *OfferOptions) { f.Location.Country = "" },
		"bad country": func(f *OfferOptions) { f.Location.Country = "XX" },
		"bad ip type": func(f *OfferOptions) { f.Location.IPType = "cloud" },
		"bad price":   func(f *OfferOptions) { f.PriceGiB = "-1" },
		"no hermes":   func(f *OfferOptions) { f.Hermes = nil },
		"bad hermes":  func(f *OfferOptions) { f.Hermes = []string{"0x12"} },
		"bad allow":   func(f *OfferOptions) { f.Allow = []string{"nope"} },
		"float hour":  func(f *OfferOptions) { f.PriceHour = "1e-3" },
		"long city":   func(f *OfferOptions) { f.Location.City = strings.Repeat("x", market.MaxCityLen+1) },
		"dup allowed": func(f *OfferOptions) { f.Allow = []string{good.Hermes[0], good.Hermes[0]} },
		"zero hermes": func(f *OfferOptions) { f.Hermes = []string{"0x0000000000000000000000000000000000000000"} },
	} {
		f := good
		mut(&f)
		if _, err := f.Offer(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestServeOptionsRelays: --p2p.relays reach the provider's p2p
// configuration; a bad one is refused naming the flag.
func TestServeOptionsRelays(t *testing.T) {
	o := ServeOptions{ExitMode: "userspace", Advertise: "192.0.2.9", PriceHour: "0", PriceGiB: "0",
		Relays: []string{"/ip4/192.0.2.8/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"}}
	cfg, err := o.Config()
	if err != nil || len(cfg.Relays) != 1 || cfg.Relays[0].ID.String() != "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN" {
		t.Fatalf("%+v %v", cfg.Relays, err)
	}
	o.Relays = []string{"/ip4/192.0.2.8/tcp/4001"}
	if _, err := o.Config(); err == nil || !strings.Contains(err.Error(), "--p2p.relays") {
		t.Fatalf("a relay without peer id: %v", err)
	}
}

// TestServeOptionsDefaultAdvertise: without --wg.advertise a provider on
// a dev chain whose STUN/TURN servers are off this machine finds its
// endpoint (auto); one whose servers are all on loopback (a devnet on
// this machine), or that has none, advertises 127.0.0.1; a given address
// wins. (Other chains: TestDevnetShortcutsOnlyOnDevChains.)
func TestServeOptionsDefaultAdvertise(t *testing.T) {
	for _, c := range []struct {
		advertise string
		servers   []string
		auto      bool
		addr      string
	}{
		{"", []string{"stun:25.0.0.1:3478", "stun:25.0.0.1:3479"}, true, ""},
		{"", []string{"stun:127.0.0.1:3478", "stun:10.98.0.4:3478"}, true, ""},
		{"", []string{"stun:stun.example.org:3478"}, true, ""},
		{"", []string{"stun:127.0.0.1:3478", "stun:127.0.0.1:3479"}, false, "127.0.0.1"},
		{"", nil, false, "127.0.0.1"},
		{"192.0.2.9", []string{"stun:25.0.0.1:3478"}, false, "192.0.2.9"},
		{"auto", nil, true, ""},
	} {
		o := ServeOptions{ExitMode: "userspace", Advertise: c.advertise, WGPort: 51820, PriceHour: "0", PriceGiB: "0",
			ICE: ICESettings{Servers: c.servers}}
		cfg, err := o.Config()
		if err == nil {
			err = resolveAdvertise(1337, &cfg)
		}
		if err != nil {
			t.Fatalf("%q %v: %v", c.advertise, c.servers, err)
		}
		addr := ""
		if cfg.AdvertiseAddr.IsValid() {
			addr = cfg.AdvertiseAddr.String()
		}
		if cfg.AdvertiseAuto != c.auto || addr != c.addr {
			t.Errorf("--wg.advertise %q with servers %v: auto %v, address %q; want %v, %q", c.advertise, c.servers, cfg.AdvertiseAuto, addr, c.auto, c.addr)
		}
	}
}

// TestProviderOptionFlags: --location.* and --settle.* set their options;
// the settle defaults make the default policy.
func TestProviderOptionFlags(t *testing.T) {
	var loc LocationOptions
	var st SettleOptions
	fs := pflag.NewFlagSet("service", pflag.ContinueOnError)
	loc.Register(fs, "")
	st.Register(fs)
	if err := fs.Parse([]string{"--location.country", "DE", "--location.asn", "3320", "--location.geoip-db", "/g.mmdb"}); err != nil {
		t.Fatal(err)
	}
	if loc.Country != "DE" || loc.ASN != 3320 || loc.DB != "/g.mmdb" {
		t.Fatalf("location %+v", loc)
	}
	p, err := st.Policy()
	if err != nil || p == nil || p.Threshold.Cmp(DefaultSettleThreshold) != 0 || p.Interval != DefaultSettleInterval {
		t.Fatalf("default settle policy %+v, %v", p, err)
	}
	if err := fs.Parse([]string{"--settle.auto=false"}); err != nil {
		t.Fatal(err)
	}
	if p, err := st.Policy(); p != nil || err != nil {
		t.Fatalf("--settle.auto=false: %+v %v", p, err)
	}
}
