package main

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/openmyst/openmyst/network"
	"github.com/openmyst/openmyst/node"
)

// networkFlag names the network definition a command joins.
const networkFlag = "network"

// networkCommands are the commands that talk to a network and so take
// --network (with their subcommands).
var networkCommands = []string{"daemon", "service", "connect", "proposals", "account", "hermes"}

// addNetworkFlag gives every command of networkCommands under root a
// persistent --network flag. Like every flag it may come from
// MYST_NETWORK or the config file (network = "...").
func addNetworkFlag(root *cobra.Command) {
	for _, c := range root.Commands() {
		for _, name := range networkCommands {
			if c.Name() == name {
				c.PersistentFlags().String(networkFlag, "", "network to join: a network file (.toml, e.g. written by `myst devnet`) or the NAME of <data-dir>/networks/NAME.toml; sets the chain, contracts, hermes, peers and servers (explicit flags, MYST_* and config.toml override it)")
			}
		}
	}
}

// applyNetwork loads --network, if any, into a.network and sets every
// flag of cmd it covers that flags, environment and config file left
// unset (so precedence is: flags > MYST_* > config.toml > network file >
// defaults). It refuses defaults that point at a devnet on the machine
// (such as --wg.advertise 127.0.0.1) once a network is named.
func (a *app) applyNetwork(cmd *cobra.Command) error {
	f := cmd.Flags().Lookup(networkFlag)
	if f == nil || f.Value.String() == "" {
		return nil
	}
	n, err := network.Resolve(a.dataDir, f.Value.String())
	if err != nil {
		return fmt.Errorf("--%s: %w", networkFlag, err)
	}
	a.network = n
	fl := cmd.Flags()
	vals := networkFlagValues(n, fl.Lookup("hermes.url") != nil)
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ff := fl.Lookup(name)
		if ff == nil || ff.Changed {
			continue
		}
		if err := fl.Set(name, vals[name]); err != nil {
			return fmt.Errorf("--%s %s: %s: %w", networkFlag, n.Name, name, err)
		}
	}
	for _, name := range localAddressFlags {
		if ff := fl.Lookup(name); ff != nil && !ff.Changed && needsLocalAddress(cmd) {
			return fmt.Errorf("--%s %s: pass --%s (the address consumers reach this node at); its default %s only fits a devnet on this machine", networkFlag, n.Name, name, ff.DefValue)
		}
	}
	return nil
}

// publicAddrsOnlyFlag is the flag that limits the advertised libp2p
// addresses to public and circuit ones.
const publicAddrsOnlyFlag = "p2p.public-addrs-only"

const publicAddrsOnlyUsage = "advertise only public and relay (circuit) libp2p addresses, not private or loopback ones (--network turns it on outside dev chains)"

// localAddressFlags are flags whose defaults are loopback addresses that
// only fit a devnet on this machine; with a network named they must be
// given.
var localAddressFlags = []string{"wg.advertise"}

// needsLocalAddress reports whether cmd serves sessions, so that its
// local addresses matter: `myst service`, or a daemon with --provider.serve.
func needsLocalAddress(cmd *cobra.Command) bool {
	if cmd.Name() == "service" {
		return true
	}
	if f := cmd.Flags().Lookup("provider.serve"); f != nil {
		on, _ := strconv.ParseBool(f.Value.String())
		return on
	}
	return false
}

// networkFlagValues maps flag names to the values network n gives them.
// hermesClient says whether the command's hermes.* flags are a hermes
// client's (myst service) rather than the hermes server's own.
func networkFlagValues(n *network.Network, hermesClient bool) map[string]string {
	contracts := make([]string, 0, len(n.Hermes))
	for _, c := range n.HermesContracts() {
		contracts = append(contracts, c.Hex())
	}
	v := map[string]string{
		"chain.rpc":           n.RPC[0],
		"discovery.chain-id":  strconv.FormatUint(n.ChainID, 10),
		"p2p.bootstrap":       strings.Join(n.Bootstrap, ","),
		"provider.hermes-url": n.Hermes[0].URL,
		"provider.hermes":     strings.Join(contracts, ","),
		// Peers on a real network are elsewhere on the internet: private
		// and loopback addresses only waste their dials (a devnet may run
		// on one machine or in private namespaces).
		publicAddrsOnlyFlag: strconv.FormatBool(!n.Dev()),
	}
	if n.Confirmations != nil {
		v["chain.confirmations"] = strconv.FormatUint(*n.Confirmations, 10)
	}
	insecure := plainHTTPRemote(n.Hermes[0].URL)
	if hermesClient {
		v["hermes.url"] = n.Hermes[0].URL
		if insecure {
			v["hermes.insecure-http"] = "true" // network.Decode allows it on dev chains only
		}
	}
	if insecure {
		v["provider.hermes-insecure-http"] = "true"
	}
	return v
}

// chainDeployment points cfg at the contract deployment: the
// --chain.deployment file when given (flag), else the named network's,
// else <data-dir>/chain/deployment.json.
func (a *app) chainDeployment(cfg *node.ChainConfig, flag string) {
	switch {
	case flag != "":
		cfg.Deployment = flag
	case a.network != nil:
		dep := a.network.Deployment
		cfg.Deployed = &dep
	default:
		cfg.Deployment = a.defaultDeploymentPath()
	}
}

// plainHTTPRemote reports whether u is a plain http:// URL to a host that
// is not loopback (which hermes clients refuse unless told otherwise).
func plainHTTPRemote(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" {
		return false
	}
	h := p.Hostname()
	ip := net.ParseIP(h)
	return h != "localhost" && (ip == nil || !ip.IsLoopback())
}
