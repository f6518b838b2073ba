package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/node"
	"github.com/openmyst/openmyst/p2p"
)

// discoveryFlags configure the daemon's p2p node and, on a provider, its
// announced proposal.
type discoveryFlags struct {
	p2p          p2pFlags
	bootstrapper bool

	announce   bool
	identity   string
	passFile   string
	ttl        time.Duration
	hermes     []string
	accessList []string
	priceHour  string
	priceGiB   string
	loc        locationFlags
}

// register declares the flags (the prices also price --provider.serve).
func (f *discoveryFlags) register(fs *pflag.FlagSet) {
	f.p2p.register(fs, p2p.DefaultListenAddrs)
	fs.BoolVar(&f.p2p.nat, "p2p.nat", true, "NAT traversal: port mapping, AutoNAT, hole punching, relays")
	fs.BoolVar(&f.bootstrapper, "p2p.bootstrapper", false, "serve as a bootstrap node: circuit relay and peer exchange for joiners")
	fs.BoolVar(&f.announce, "provider.announce", false, "announce a wireguard proposal for --provider.identity")
	fs.StringVar(&f.identity, "provider.identity", "", "provider identity (0x...; default: the default identity)")
	fs.StringVar(&f.passFile, "provider.passphrase-file", "", "file with the provider identity's passphrase (or $"+node.PassphraseEnv+")")
	fs.DurationVar(&f.ttl, "provider.proposal-ttl", 10*time.Minute, "validity of each announcement; re-announced every third of it")
	f.loc.register(fs, "provider ")
	fs.StringVar(&f.priceHour, "price.per-hour", "0.005", "price per hour in MYST")
	fs.StringVar(&f.priceGiB, "price.per-gib", "0.1", "price per GiB in MYST")
	fs.StringSliceVar(&f.hermes, "provider.hermes", nil, "accepted hermes ids (0x..., comma separated; required to announce)")
	fs.StringSliceVar(&f.accessList, "provider.allow", nil, "serve only these consumer identities (default: public)")
}

// offer builds the provider's proposal template from the flags.
func (f *discoveryFlags) offer() (market.Proposal, error) {
	var p market.Proposal
	lc, err := f.loc.config()
	if err != nil {
		return p, fmt.Errorf("--provider.announce: %w", err)
	}
	price, err := parsePrice(f.priceHour, f.priceGiB)
	if err != nil {
		return p, err
	}
	if len(f.hermes) == 0 {
		return p, errors.New("--provider.announce needs --provider.hermes")
	}
	hermes, err := parseAddrs(f.hermes)
	if err != nil {
		return p, fmt.Errorf("--provider.hermes: %w", err)
	}
	access := market.AccessPolicy{Kind: market.AccessPublic}
	if len(f.accessList) > 0 {
		allow, err := parseAddrs(f.accessList)
		if err != nil {
			return p, fmt.Errorf("--provider.allow: %w", err)
		}
		access = market.AccessPolicy{Kind: market.AccessAllowList, Allow: allow}
	}
	p = market.Proposal{
		Version:     market.ProposalVersion,
		ChainID:     f.p2p.chainID,
		ServiceType: market.ServiceWireGuard,
		Location:    lc.Provisional(),
		Price:       price,
		Hermes:      hermes,
		Access:      access,
	}
	if err := p.ValidateOffer(); err != nil {
		return p, err
	}
	return p, nil
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
