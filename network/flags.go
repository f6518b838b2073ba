package network

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openmyst/openmyst/chain"
)

// Flag is the flag naming the network definition a command joins.
const Flag = "network"

// Commands are the myst commands that talk to a network and so take
// --network (with their subcommands).
var Commands = []string{"daemon", "service", "connect", "proposals", "account", "hermes", "transactor"}

// AddFlag gives every command of Commands under root a
// persistent --network flag. Like every flag it may come from
// MYST_NETWORK or the config file (network = "...").
func AddFlag(root *cobra.Command) {
	for _, c := range root.Commands() {
		for _, name := range Commands {
			if c.Name() == name {
				c.PersistentFlags().String(Flag, "", "network to join: a network file (.toml, e.g. written by `myst devnet`) or the NAME of <data-dir>/networks/NAME.toml; sets the chain, contracts, hermes, peers and servers (explicit flags, MYST_* and config.toml override it)")
			}
		}
	}
}

// ApplyFlags loads cmd's --network, if any (nil, nil when none), and sets every
// flag of cmd it covers that flags, environment and config file left
// unset (so precedence is: flags > MYST_* > config.toml > network file >
// defaults). It refuses defaults that point at a devnet on the machine
// (such as --wg.advertise 127.0.0.1) once a network is named: a real
// network sets --wg.advertise auto; a dev network leaves it to the
// provider's default from its STUN servers (auto, or 127.0.0.1 when every
// server is on loopback), or, listing none, wants it given.
func ApplyFlags(cmd *cobra.Command, dataDir string) (*Network, error) {
	f := cmd.Flags().Lookup(Flag)
	if f == nil || f.Value.String() == "" {
		return nil, nil
	}
	n, err := Resolve(dataDir, f.Value.String())
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", Flag, err)
	}
	fl := cmd.Flags()
	turnCreds := false
	if ff := fl.Lookup(TURNCredentialsFlag); ff != nil {
		turnCreds = ff.Value.String() != ""
	}
	vals := FlagValues(n, fl.Lookup("hermes.url") != nil, turnCreds)
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
			return nil, fmt.Errorf("--%s %s: %s: %w", Flag, n.Name, name, err)
		}
	}
	for _, name := range localAddressFlags {
		if ff := fl.Lookup(name); ff != nil && !ff.Changed && needsLocalAddress(cmd) && !hasICEServer(fl) {
			return nil, fmt.Errorf("--%s %s: pass --%s (the address consumers reach this node at): the network lists no STUN server to find it with, and 127.0.0.1 only fits a devnet on this machine", Flag, n.Name, name)
		}
	}
	return n, nil
}

// hasICEServer reports whether fl's ICEServerFlag names a server: a
// provider on a dev network then defaults its advertised address from
// them (node.DefaultAdvertise: found by STUN when a server is off this
// machine, 127.0.0.1 when all are on loopback).
func hasICEServer(fl *pflag.FlagSet) bool {
	f := fl.Lookup(ICEServerFlag)
	if f == nil {
		return false
	}
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return len(sv.GetSlice()) > 0
	}
	return f.Value.String() != ""
}

// PublicAddrsOnlyFlag is the flag that limits the advertised libp2p
// addresses to public and circuit ones.
const PublicAddrsOnlyFlag = "p2p.public-addrs-only"

// PublicAddrsOnlyUsage is the help text of PublicAddrsOnlyFlag.
const PublicAddrsOnlyUsage = "advertise only public and relay (circuit) libp2p addresses, not private or loopback ones (always on outside dev chains)"

// PortMapFlag is the flag that maps a provider's WireGuard and ICE
// ports on the home router (NAT-PMP, UPnP IGD).
const PortMapFlag = "portmap"

// PortMapUsage is the help text of PortMapFlag.
const PortMapUsage = "ask the home router (NAT-PMP, UPnP) to forward the WireGuard port and the next one (ICE) while serving, and the daemon consumer's ICE port while connected; a mapped port is advertised unless --wg.advertise is public (--network turns it on outside dev chains)"

// RelaysFlag is the flag naming circuit relay peers used behind a NAT.
const RelaysFlag = "p2p.relays"

// RelaysUsage is the help text of RelaysFlag.
const RelaysUsage = "circuit relay peers used behind a NAT besides the bootstrap peers: /ip4/.../tcp/PORT/p2p/PEERID, comma separated"

// AdvertiseFlag is the flag naming the address consumers reach a
// provider's WireGuard port at.
const AdvertiseFlag = "wg.advertise"

// AdvertiseAuto is AdvertiseFlag's value that has the provider find the
// address itself (the router's port mapping, STUN, a public interface
// address; node.ProviderConfig.AdvertiseAuto). Naming a network that is
// not a devnet sets it.
const AdvertiseAuto = "auto"

// localAddressFlags are flags whose defaults are loopback addresses when
// no STUN/TURN server is configured, which only fits a devnet on this
// machine; with a dev network that lists no server they must be given
// (other networks set them, see FlagValues).
var localAddressFlags = []string{AdvertiseFlag}

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

// ICEServerFlag is the flag listing a node's STUN/TURN servers.
const ICEServerFlag = "ice.server"

// TURNCredentialsFlag is the flag naming the file with a node's TURN
// credentials (a network file never holds credentials).
const TURNCredentialsFlag = "ice.turn-credentials-file"

// FlagValues maps flag names to the values network n gives them.
// hermesClient says whether the command's hermes.* flags are a hermes
// client's (myst service) rather than the hermes server's own.
// turnCreds says whether the node has TURN credentials
// (TURNCredentialsFlag): only then does ICEServerFlag list the network's
// TURN servers besides its STUN servers (TURN without credentials
// cannot allocate).
func FlagValues(n *Network, hermesClient, turnCreds bool) map[string]string {
	contracts := make([]string, 0, len(n.Hermes))
	for _, c := range n.HermesContracts() {
		contracts = append(contracts, c.Hex())
	}
	v := map[string]string{
		"chain.rpc":           strings.Join(n.RPC, ","),
		"discovery.chain-id":  strconv.FormatUint(n.ChainID, 10),
		"p2p.bootstrap":       strings.Join(n.Bootstrap, ","),
		"provider.hermes-url": n.Hermes[0].URL,
		"provider.hermes":     strings.Join(contracts, ","),
		// Peers on a real network are elsewhere on the internet: private
		// and loopback addresses only waste their dials (a devnet may run
		// on one machine or in private namespaces).
		PublicAddrsOnlyFlag: strconv.FormatBool(!n.Dev()),
		// Like Tailscale and Mysterium nodes: map ports where the router
		// lets us, except on a devnet (no router to ask; packets to the
		// machine's real gateway).
		PortMapFlag: strconv.FormatBool(!n.Dev()),
	}
	if !n.Dev() {
		// A real network's provider finds its endpoint (port mapping,
		// STUN, public interface address) unless told one.
		v[AdvertiseFlag] = AdvertiseAuto
	}
	ice := n.STUN
	if turnCreds {
		ice = append(append([]string(nil), n.STUN...), n.TURN...)
	}
	if len(ice) > 0 {
		v[ICEServerFlag] = strings.Join(ice, ",")
	}
	if len(n.Relays) > 0 {
		v[RelaysFlag] = strings.Join(n.Relays, ",")
	}
	if n.TransactorURL != "" {
		// A transactor client's flag: `myst service`, `myst account`
		// (--transactor) and the daemon's provider (--provider.transactor).
		v["transactor"] = n.TransactorURL
		v["provider.transactor"] = n.TransactorURL
	}
	if n.Confirmations != nil {
		v["chain.confirmations"] = strconv.FormatUint(*n.Confirmations, 10)
	}
	insecure := PlainHTTPRemote(n.Hermes[0].URL)
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

// PlainHTTPRemote reports whether u is a plain http:// URL to a host that
// is not loopback (which hermes clients refuse unless told otherwise, and
// nodes refuse outside dev chains).
func PlainHTTPRemote(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" {
		return false
	}
	h := p.Hostname()
	ip := net.ParseIP(h)
	return h != "localhost" && (ip == nil || !ip.IsLoopback())
}

// RPCFlag returns the value of a repeatable --chain.rpc flag that keeps
// its URLs in *p, comma-separated as node.ChainConfig.RPC takes them:
// each use (and each comma-separated part of one) adds URLs, the first
// use replaces def. A config file may give an array.
func RPCFlag(p *string, def string) pflag.Value {
	*p = def
	return &rpcFlag{p: p}
}

// rpcFlag is RPCFlag's value; it implements pflag.SliceValue.
type rpcFlag struct {
	p   *string
	set bool
}

func (f *rpcFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}

// Type is the type name in help ("strings", as pflag's string slices).
func (f *rpcFlag) Type() string { return "strings" }

// Set adds the comma-separated URLs in s (the first Set drops the default).
func (f *rpcFlag) Set(s string) error {
	add := chain.SplitRPCURLs(s)
	if len(add) == 0 {
		return errors.New("no RPC URL")
	}
	if !f.set {
		f.set = true
		*f.p = ""
	}
	return f.Replace(append(f.GetSlice(), add...))
}

// Append adds one URL.
func (f *rpcFlag) Append(s string) error { return f.Set(s) }

// Replace sets the list to urls.
func (f *rpcFlag) Replace(urls []string) error {
	for _, u := range urls {
		if strings.ContainsAny(u, ", \t\r\n") || u == "" {
			return fmt.Errorf("RPC URL %q: empty, or holds a comma or a blank", chain.RedactURL(u))
		}
	}
	f.set = true
	*f.p = strings.Join(urls, ",")
	return nil
}

// GetSlice is the list.
func (f *rpcFlag) GetSlice() []string { return chain.SplitRPCURLs(f.String()) }
