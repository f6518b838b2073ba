package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/discovery"
	"github.com/openmyst/openmyst/identity"
	"github.com/openmyst/openmyst/market"
	"github.com/openmyst/openmyst/p2p"
	"github.com/openmyst/openmyst/tequilapi"
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
	country    string
	city       string
	asn        uint32
	ipType     string
	priceHour  string
	priceGiB   string
	hermes     []string
	accessList []string
	// geo holds --location.geoip-db, --location.geoip-asn-db and
	// --location.ip (location.go).
	geo locationFlags
}

var discFlags discoveryFlags

func init() {
	registerDaemonExtension(daemonExtension{
		Name: "discovery",
		Base: true,
		Flags: func(fs *pflag.FlagSet) {
			f := &discFlags
			f.p2p.register(fs, p2p.DefaultListenAddrs)
			fs.BoolVar(&f.p2p.nat, "p2p.nat", true, "NAT traversal: port mapping, AutoNAT, hole punching, relays")
			fs.BoolVar(&f.bootstrapper, "p2p.bootstrapper", false, "serve as a bootstrap node: circuit relay and peer exchange for joiners")
			fs.BoolVar(&f.announce, "provider.announce", false, "announce a wireguard proposal for --provider.identity")
			fs.StringVar(&f.identity, "provider.identity", "", "provider identity (0x...; default: the default identity)")
			fs.StringVar(&f.passFile, "provider.passphrase-file", "", "file with the provider identity's passphrase (or $"+passphraseEnv+")")
			fs.DurationVar(&f.ttl, "provider.proposal-ttl", 10*time.Minute, "validity of each announcement; re-announced every third of it")
			fs.StringVar(&f.country, "location.country", "", "provider country, ISO 3166-1 alpha-2 (required to announce unless --location.geoip-db detects it; overrides it)")
			fs.StringVar(&f.city, "location.city", "", "provider city (overrides --location.geoip-db)")
			fs.Uint32Var(&f.asn, "location.asn", 0, "provider autonomous system number (overrides --location.geoip-db)")
			fs.StringVar(&f.ipType, "location.ip-type", "", ipTypeUsage)
			f.geo.registerDetection(fs)
			fs.StringVar(&f.priceHour, "price.per-hour", "0.005", "price per hour in MYST")
			fs.StringVar(&f.priceGiB, "price.per-gib", "0.1", "price per GiB in MYST")
			fs.StringSliceVar(&f.hermes, "provider.hermes", nil, "accepted hermes ids (0x..., comma separated; required to announce)")
			fs.StringSliceVar(&f.accessList, "provider.allow", nil, "serve only these consumer identities (default: public)")
		},
		Start: startDiscovery,
	})
}

// startDiscovery runs the node's libp2p host, proposal gossip, GET
// /proposals and, with --provider.announce, the provider's announcer.
func startDiscovery(ctx context.Context, n *daemonNode) (func(context.Context) error, error) {
	f := discFlags
	log := n.Log
	boot, err := p2p.ParseBootstrap(f.p2p.bootstrap)
	if err != nil {
		return nil, err
	}
	var offer market.Proposal
	var locateLater func(host.Host) (market.Location, error)
	if f.announce {
		if offer, err = f.offer(); err != nil {
			return nil, err
		}
		if offer.Location, locateLater, err = f.announceLocation(log); err != nil {
			return nil, err
		}
	}
	key, err := p2p.LoadOrCreateKey(filepath.Join(n.DataDir, p2p.KeyFile))
	if err != nil {
		return nil, err
	}
	node, err := p2p.New(p2p.Config{
		Key: key, ListenAddrs: f.p2p.listen, Bootstrap: boot, DHTMode: p2p.DHTServer,
		NAT: f.p2p.nat, RelayService: f.bootstrapper, Log: log,
	})
	if err != nil {
		return nil, err
	}
	svc, err := discovery.New(node.Host, discovery.Config{
		ValidatorConfig: discovery.ValidatorConfig{ChainID: f.p2p.chainID},
		Log:             log, Bootstrapper: f.bootstrapper,
	})
	if err != nil {
		node.Close()
		return nil, err
	}
	n.P2P, n.Discovery = node, svc
	n.API.Add(tequilapi.ProposalRoutes(svc.Cache(), log)...)
	for _, a := range node.Multiaddrs() {
		log.Info("p2p: reachable as", "addr", a)
	}

	var signer identity.Signer
	if f.announce {
		if signer, err = f.signer(ctx, n.Identities); err != nil {
			svc.Close()
			node.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := node.Bootstrap(ctx); err != nil {
			log.Warn("p2p: bootstrap", "err", err)
		}
		if k := svc.SyncConnected(ctx, 3); k > 0 {
			log.Info("discovery: proposals pulled from peers", "count", k)
		}
		if signer == nil {
			return
		}
		if locateLater != nil {
			loc, err := locateLater(node.Host)
			if err != nil {
				log.Error("discovery: not announcing", "err", err)
				return
			}
			offer.Location = loc
		}
		ann, err := discovery.NewAnnouncer(svc, discovery.AnnouncerConfig{
			Proposal: offer, Signer: signer, Host: node.Host, TTL: f.ttl, Log: log,
		})
		if err != nil {
			log.Error("discovery: announcer", "err", err)
			return
		}
		log.Info("discovery: announcing proposal", "provider", signer.Address().Hex(), "country", offer.Location.Country,
			"per_gib", offer.Price.PerGiB.MYST(), "per_hour", offer.Price.PerHour.MYST())
		if err := ann.Run(ctx); err != nil {
			log.Error("discovery: announce", "err", err)
		}
	}()
	return func(context.Context) error {
		cancel()
		wg.Wait() // the announcer has published its withdrawal
		return errors.Join(svc.Close(), node.Close())
	}, nil
}

// offer builds the provider's proposal template from the flags.
func (f *discoveryFlags) offer() (market.Proposal, error) {
	var p market.Proposal
	lf := f.location()
	if err := lf.check(); err != nil {
		return p, fmt.Errorf("--provider.announce: %w", err)
	}
	hour, err := market.ParseMYST(f.priceHour)
	if err != nil {
		return p, fmt.Errorf("--price.per-hour: %w", err)
	}
	gib, err := market.ParseMYST(f.priceGiB)
	if err != nil {
		return p, fmt.Errorf("--price.per-gib: %w", err)
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
		Location:    lf.provisional(),
		Price:       market.Price{PerHour: market.NewAmount(hour), PerGiB: market.NewAmount(gib)},
		Hermes:      hermes,
		Access:      access,
	}
	if err := p.ValidateOffer(); err != nil {
		return p, err
	}
	return p, nil
}

// signer unlocks the provider identity.
func (f *discoveryFlags) signer(ctx context.Context, ids *identity.Manager) (identity.Signer, error) {
	var addr common.Address
	var err error
	if f.identity != "" {
		addr, err = identity.ParseAddress(f.identity)
	} else {
		addr, err = ids.Default(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("provider identity: %w", err)
	}
	if !ids.IsUnlocked(addr) {
		if f.passFile == "" && os.Getenv(passphraseEnv) == "" {
			return nil, fmt.Errorf("provider identity %s is locked: give --provider.passphrase-file or $%s", addr.Hex(), passphraseEnv)
		}
		pw, err := readPassphrase(nil, f.passFile, "", false)
		if err != nil {
			return nil, err
		}
		if err := ids.Unlock(addr, pw); err != nil {
			return nil, fmt.Errorf("unlock provider identity: %w", err)
		}
	}
	return ids.Signer(addr)
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
