package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
)

// discoveryFlags configure the daemon's p2p node and, on a provider, its
// announced proposal.
type discoveryFlags struct {
	p2p          p2pFlags
	bootstrapper bool

	announce bool
	identity string
	passFile string
	ttl      time.Duration
	offer    node.OfferOptions
}

// register declares the flags (the prices also price --provider.serve).
func (f *discoveryFlags) register(fs *pflag.FlagSet) {
	f.p2p.register(fs, p2p.DefaultListenAddrs)
	fs.BoolVar(&f.p2p.nat, "p2p.nat", true, "NAT traversal: port mapping, AutoNAT, hole punching, relays")
	fs.BoolVar(&f.p2p.publicOnly, network.PublicAddrsOnlyFlag, false, network.PublicAddrsOnlyUsage)
	fs.StringSliceVar(&f.p2p.relays, network.RelaysFlag, nil, network.RelaysUsage)
	fs.BoolVar(&f.bootstrapper, "p2p.bootstrapper", false, "serve as a bootstrap node: circuit relay and peer exchange for joiners")
	fs.BoolVar(&f.announce, "provider.announce", false, "announce a wireguard proposal for --provider.identity")
	fs.StringVar(&f.identity, "provider.identity", "", "provider identity (0x...; default: the default identity)")
	fs.StringVar(&f.passFile, "provider.passphrase-file", "", "file with the provider identity's passphrase (or $"+node.PassphraseEnv+")")
	fs.DurationVar(&f.ttl, "provider.proposal-ttl", 10*time.Minute, "validity of each announcement; re-announced every third of it")
	registerLocation(fs, &f.offer.Location, "provider ")
	fs.StringVar(&f.offer.PriceHour, "price.per-hour", "0.005", "price per hour in MYST")
	fs.StringVar(&f.offer.PriceGiB, "price.per-gib", "0.1", "price per GiB in MYST")
	fs.StringSliceVar(&f.offer.Hermes, "provider.hermes", nil, "accepted hermes ids (0x..., comma separated; required to announce)")
}
