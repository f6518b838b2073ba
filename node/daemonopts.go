package node

import (
	"fmt"
	"time"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/p2p"
)

// P2POptions are a node's libp2p settings as flags give them.
type P2POptions struct {
	// Listen are the listen multiaddrs; Bootstrap and Relays are
	// multiaddrs with /p2p/ID (p2p.ParseBootstrap).
	Listen, Bootstrap, Relays []string
	// NAT, PublicAddrsOnly and Bootstrapper: see NetworkConfig.
	NAT, PublicAddrsOnly, Bootstrapper bool
	// ChainID is the chain whose proposals are gossiped.
	ChainID uint64
}

// Config is the NetworkConfig the options describe.
func (o P2POptions) Config() (NetworkConfig, error) {
	boot, err := p2p.ParseBootstrap(o.Bootstrap)
	if err != nil {
		return NetworkConfig{}, err
	}
	return NetworkConfig{ListenAddrs: o.Listen, Bootstrap: boot, Relays: o.Relays, NAT: o.NAT,
		PublicAddrsOnly: o.PublicAddrsOnly, Bootstrapper: o.Bootstrapper, ChainID: o.ChainID}, nil
}

// DaemonOptions are a daemon's settings as `myst daemon`'s flags give
// them; Apply checks them and fills in a DaemonConfig.
type DaemonOptions struct {
	// Chain is the daemon's one chain source.
	Chain ChainFlags
	// P2P is its libp2p host.
	P2P P2POptions
	// ProviderIdentity and ProviderPassphraseFile name the provider
	// identity (empty: the default identity).
	ProviderIdentity, ProviderPassphraseFile string
	// Announce announces Offer (its ChainID is P2P.ChainID) every TTL/3.
	Announce bool
	TTL      time.Duration
	Offer    OfferOptions
	// Serve serves paid sessions with ServeOptions (priced by Offer).
	Serve        bool
	ServeOptions ServeOptions
	// ConsumerIdentity and ConsumerPassphraseFile name the consumer
	// identity (empty: the default identity).
	ConsumerIdentity, ConsumerPassphraseFile string
	// SOCKS is a connection's default local SOCKS5 address.
	SOCKS string
	// ConsumerICEPort is the consumer's ICE socket port mapped with
	// ServeOptions.PortMap (DaemonConsumer.ICEPort).
	ConsumerICEPort uint16
	// TunInterface and ResolvConf configure tun-mode connections.
	TunInterface, ResolvConf string
}

// Apply sets cfg's chain source (through l), p2p host, provider,
// consumer and ICE settings from o.
func (o DaemonOptions) Apply(l *Local, cfg *DaemonConfig) error {
	var err error
	if cfg.Chain, err = l.ChainConfig(o.Chain); err != nil {
		return err
	}
	cfg.Consumer = DaemonConsumer{SOCKS: o.SOCKS, VPN: VPNConfig{Interface: o.TunInterface, ResolvConf: o.ResolvConf},
		PortMap: o.ServeOptions.PortMap, ICEPort: o.ConsumerICEPort}
	if cfg.Consumer.Identity, err = ParseIdentityRef(o.ConsumerIdentity, o.ConsumerPassphraseFile); err != nil {
		return fmt.Errorf("--consumer.identity: %w", err)
	}
	cfg.ICE = o.ServeOptions.ICE
	if cfg.P2P, err = o.P2P.Config(); err != nil {
		return err
	}
	prov := &cfg.Provider
	if prov.Identity, err = ParseIdentityRef(o.ProviderIdentity, o.ProviderPassphraseFile); err != nil {
		return fmt.Errorf("--provider.identity: %w", err)
	}
	prov.TTL = o.TTL
	if o.Announce {
		prov.Announce = true
		offer := o.Offer
		offer.ChainID, offer.Allow = o.P2P.ChainID, o.ServeOptions.Caps.Allow
		if prov.Offer, err = offer.Offer(); err != nil {
			return err
		}
	}
	if o.Announce || o.Serve { // (Offer checked it when announcing)
		if prov.Location, err = o.Offer.Location.Config(); err != nil {
			return fmt.Errorf("--provider.serve: %w", err)
		}
	}
	so := o.ServeOptions
	so.PriceHour, so.PriceGiB = o.Offer.PriceHour, o.Offer.PriceGiB
	prov.Defaults = ServiceOptions{Serve: so, Location: o.Offer.Location}
	if o.Serve {
		pc, err := so.Config()
		if err != nil {
			return err
		}
		prov.Serve = &pc
	}
	return nil
}

// ParseIdentityRef is an identity flag (empty: the default identity) and
// its passphrase file.
func ParseIdentityRef(addr, passFile string) (IdentityRef, error) {
	r := IdentityRef{PassphraseFile: passFile}
	if addr == "" {
		return r, nil
	}
	a, err := identity.ParseAddress(addr)
	r.Address = a
	return r, err
}
