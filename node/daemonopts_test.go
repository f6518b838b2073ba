package node

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// goodDaemonOptions announce and serve a provider with valid settings.
func goodDaemonOptions() DaemonOptions {
	return DaemonOptions{
		P2P: P2POptions{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, ChainID: 80002, PublicAddrsOnly: true,
			Bootstrap: []string{"/ip4/192.0.2.8/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"}},
		ProviderIdentity: "0x00000000000000000000000000000000000000bb", ProviderPassphraseFile: "ppw",
		ConsumerPassphraseFile: "cpw", SOCKS: "127.0.0.1:1081", TunInterface: "myst9", ResolvConf: "/r", ConsumerICEPort: 4444,
		Announce: true, TTL: time.Minute, Serve: true,
		Offer: OfferOptions{Location: LocationOptions{Country: "DE"}, PriceHour: "0.01", PriceGiB: "0.2",
			Hermes: []string{"0x00000000000000000000000000000000000000aa"}},
		ServeOptions: ServeOptions{ExitMode: "userspace", Advertise: "192.0.2.9", ICE: ICESettings{Servers: []string{"stun:192.0.2.1:3478"}},
			HermesFlags: "provider.hermes-", Settle: SettleOptions{Auto: true, Threshold: "1", MaxFeeShare: 0.1, Interval: time.Minute}},
	}
}

// TestDaemonOptionsApply: the options reach the daemon configuration:
// the offer is for the p2p chain id, the served provider is priced by
// the offer and settles automatically, ICE is shared, the identities
// and their passphrase files are kept.
func TestDaemonOptionsApply(t *testing.T) {
	o := goodDaemonOptions()
	var cfg DaemonConfig
	if err := o.Apply(&Local{DataDir: "/d"}, &cfg); err != nil {
		t.Fatal(err)
	}
	p := cfg.Provider
	if !p.Announce || p.Offer.ChainID != 80002 || p.TTL != time.Minute || p.Location.Override.Country != "DE" {
		t.Fatalf("provider %+v", p)
	}
	if p.Identity.Address != common.HexToAddress("0xbb") || p.Identity.PassphraseFile != "ppw" {
		t.Fatalf("provider identity %+v", p.Identity)
	}
	if p.Serve == nil || p.Serve.Price.PerGiB.MYST() != "0.2" || p.Serve.AutoSettle == nil {
		t.Fatalf("served provider %+v", p.Serve)
	}
	c := cfg.Consumer
	if c.Identity.Address != (common.Address{}) || c.Identity.PassphraseFile != "cpw" || c.SOCKS != "127.0.0.1:1081" || c.VPN.Interface != "myst9" || c.VPN.ResolvConf != "/r" ||
		c.ICEPort != 4444 || c.PortMap {
		t.Fatalf("consumer %+v", c)
	}
	if len(cfg.ICE.Servers) != 1 || !cfg.P2P.PublicAddrsOnly || len(cfg.P2P.Bootstrap) != 1 || cfg.P2P.ChainID != 80002 {
		t.Fatalf("ice %+v p2p %+v", cfg.ICE, cfg.P2P)
	}
	if cfg.Chain.Deployment != "/d/chain/deployment.json" {
		t.Fatalf("chain %+v", cfg.Chain)
	}
	// --portmap maps the served provider's ports and the consumer's ICE port.
	o.ServeOptions.PortMap = true
	if err := o.Apply(&Local{DataDir: "/d"}, &cfg); err != nil || !cfg.Consumer.PortMap || !cfg.Provider.Serve.PortMap {
		t.Fatalf("portmap: %v consumer %v provider %+v", err, cfg.Consumer.PortMap, cfg.Provider.Serve)
	}
}

// TestDaemonOptionsRefuse: each bad option is refused, naming its flag
// where it has one.
func TestDaemonOptionsRefuse(t *testing.T) {
	for name, c := range map[string]struct {
		mut  func(o *DaemonOptions)
		want string
	}{
		"consumer identity": {func(o *DaemonOptions) { o.ConsumerIdentity = "0x12" }, "--consumer.identity"},
		"provider identity": {func(o *DaemonOptions) { o.ProviderIdentity = "nope" }, "--provider.identity"},
		"chain hermes":      {func(o *DaemonOptions) { o.Chain = ChainFlags{Hermes: "0x1", HermesFlag: "chain.hermes"} }, "--chain.hermes"},
		"bootstrap":         {func(o *DaemonOptions) { o.P2P.Bootstrap = []string{"/ip4/192.0.2.8/tcp/4001"} }, ""},
		"offer":             {func(o *DaemonOptions) { o.Offer.Hermes = nil }, ""},
		"serve location":    {func(o *DaemonOptions) { o.Announce, o.Offer.Location.Country = false, "" }, "--provider.serve"},
		"hermes ca":         {func(o *DaemonOptions) { o.ServeOptions.HermesCA = filepath.Join(t.TempDir(), "none.pem") }, "--provider.hermes-ca"},
		"settle threshold":  {func(o *DaemonOptions) { o.ServeOptions.Settle.Threshold = "x" }, "--settle.threshold"},
		"serve price":       {func(o *DaemonOptions) { o.Announce, o.Offer.PriceGiB = false, "-1" }, ""},
	} {
		o := goodDaemonOptions()
		c.mut(&o)
		var cfg DaemonConfig
		err := o.Apply(&Local{DataDir: "/d"}, &cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming %q", name, err, c.want)
		}
	}
	// Serving off: its settings are not looked at.
	o := goodDaemonOptions()
	o.Serve, o.ServeOptions.HermesCA = false, "/none.pem"
	var cfg DaemonConfig
	if err := o.Apply(&Local{DataDir: "/d"}, &cfg); err != nil || cfg.Provider.Serve != nil {
		t.Fatalf("serve off: %v, %+v", err, cfg.Provider.Serve)
	}
}
