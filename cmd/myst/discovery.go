package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
)

// registerP2P declares the libp2p flags shared by `myst proposals` and
// the daemon.
func registerP2P(fs *pflag.FlagSet, o *node.P2POptions, listenDefault []string) {
	fs.StringSliceVar(&o.Listen, "p2p.listen", listenDefault, "libp2p listen multiaddrs (comma separated)")
	fs.StringSliceVar(&o.Bootstrap, "p2p.bootstrap", nil, "bootstrap peers: /ip4/.../tcp/PORT/p2p/PEERID, comma separated")
	fs.Uint64Var(&o.ChainID, "discovery.chain-id", 1337, "chain id whose proposals to gossip (1337: the built-in dev chain)")
}

// registerDiscovery declares the daemon's p2p node and, on a provider,
// its announced proposal (the prices also price --provider.serve).
func registerDiscovery(fs *pflag.FlagSet, o *node.DaemonOptions) {
	registerP2P(fs, &o.P2P, p2p.DefaultListenAddrs)
	fs.BoolVar(&o.P2P.NAT, "p2p.nat", true, "NAT traversal: port mapping, AutoNAT, hole punching, relays")
	fs.BoolVar(&o.P2P.PublicAddrsOnly, network.PublicAddrsOnlyFlag, false, network.PublicAddrsOnlyUsage)
	fs.StringSliceVar(&o.P2P.Relays, network.RelaysFlag, nil, network.RelaysUsage)
	fs.BoolVar(&o.P2P.Bootstrapper, "p2p.bootstrapper", false, "serve as a bootstrap node: circuit relay and peer exchange for joiners")
	fs.BoolVar(&o.Announce, "provider.announce", false, "announce a wireguard proposal for --provider.identity")
	fs.StringVar(&o.ProviderIdentity, "provider.identity", "", "provider identity (0x...; default: the default identity)")
	fs.StringVar(&o.ProviderPassphraseFile, "provider.passphrase-file", "", "file with the provider identity's passphrase (or $"+node.PassphraseEnv+")")
	fs.DurationVar(&o.TTL, "provider.proposal-ttl", 10*time.Minute, "validity of each announcement; re-announced every third of it")
	o.Offer.Location.Register(fs, "provider ")
	registerPrice(fs, &o.Offer.PriceHour, &o.Offer.PriceGiB)
	fs.StringSliceVar(&o.Offer.Hermes, "provider.hermes", nil, "accepted hermes ids (0x..., comma separated; required to announce)")
}

// registerPrice declares --price.per-hour and --price.per-gib.
func registerPrice(fs *pflag.FlagSet, hour, gib *string) {
	fs.StringVar(hour, "price.per-hour", "0.005", "price per hour in MYST")
	fs.StringVar(gib, "price.per-gib", "0.1", "price per GiB in MYST")
}

// registerServe declares the flags a served provider has under the same
// names in `myst service` and `myst daemon` (of: whose, in the help).
func registerServe(fs *pflag.FlagSet, s *node.ServeOptions, of string) {
	fs.StringSliceVar(&s.Allow, "exit.allow", nil, "extra exit allow rules"+of+", e.g. \"tcp:127.0.0.1/32 port 8080\" (use sparingly)")
	fs.StringVar(&s.Advertise, "wg.advertise", "", "address consumers reach the WireGuard port"+of+" at: your public IP, or auto (port mapping, STUN, a public interface; the default on every chain but a dev chain, and on a dev chain with --ice.server off this machine; else 127.0.0.1)")
	fs.Uint16Var(&s.WGPort, "wg.port", 51820, "WireGuard UDP port"+of+"; the next port carries ICE when --wg.advertise is public or --portmap maps it")
	fs.BoolVar(&s.PortMap, network.PortMapFlag, false, network.PortMapUsage)
	s.ICE.Register(fs, "")
	fs.DurationVar(&s.PayInterval, "payment.interval", 0, "invoice interval"+of+" (default 30s)")
	fs.DurationVar(&s.PayGrace, "payment.grace", 0, "how long an invoice may stay unpaid before the session ends (default 30s)")
}

// registerHermesTLS declares <prefix>ca and <prefix>insecure-http: how a
// provider trusts its hermes's HTTPS API.
func registerHermesTLS(fs *pflag.FlagSet, s *node.ServeOptions, prefix string) {
	s.HermesFlags = prefix
	fs.StringVar(&s.HermesCA, prefix+"ca", "", "PEM file of the CA that signed the hermes's TLS certificate (default: the system roots)")
	fs.BoolVar(&s.HermesInsecureHTTP, prefix+"insecure-http", false, "allow a plain http:// hermes URL to a non-loopback host (unencrypted; never on a real network)")
}
