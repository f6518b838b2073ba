package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/openmyst/openmyst/chain"
	"github.com/openmyst/openmyst/hermes/api"
	"github.com/openmyst/openmyst/nat/ice"
	"github.com/openmyst/openmyst/network"
)

// Devnet shortcuts are the defaults and allowances that only fit a devnet
// on this machine: a loopback advertised address or hermes URL, plain
// HTTP to another host, the public dev keys, a fast gossip heartbeat, no
// confirmations, minting from the dev faucet. A node takes them only when
// the chain it talks to is a dev chain (chain.IsDevChainID of the id the
// chain's RPC endpoint answers, which the deployment names), never from a
// flag an operator could forget: on any other chain each one either
// becomes the real network's value or is refused with an error naming
// the flag to set (docs/node.md, "Devnet shortcuts").

// ErrDevnetShortcut is returned when a devnet shortcut would run on a
// chain that is not a dev chain.
var ErrDevnetShortcut = errors.New("devnet shortcut refused")

// DevHermesURL is the hermes API of a provider given none on a dev chain:
// `myst hermes`'s default listen address on this machine.
const DevHermesURL = "http://127.0.0.1:4060"

// devShortcut is the error refusing shortcut on chain chainID; fix says
// what to do instead.
func devShortcut(chainID uint64, shortcut, fix string) error {
	return fmt.Errorf("%w: %s fits only a dev chain %v, and chain %d is not one: %s", ErrDevnetShortcut, shortcut, chain.DevChainIDs, chainID, fix)
}

// resolveAdvertise decides the advertised WireGuard endpoint of a
// provider on chain chainID. Given an address or AdvertiseAuto, that is
// kept, except that a loopback address is refused off dev chains. Given
// neither (--wg.advertise unset), a dev chain whose STUN/TURN servers
// are all on loopback, or that has none, advertises LoopbackAdvertise (a
// devnet on this machine); otherwise, and on every other chain whatever
// its servers, the provider finds its endpoint (AdvertiseAuto), which
// needs a fixed WGPort.
func resolveAdvertise(chainID uint64, cfg *ProviderConfig) error {
	dev := chain.IsDevChainID(chainID)
	switch {
	case cfg.AdvertiseAuto:
		cfg.AdvertiseAddr = netip.Addr{}
	case cfg.AdvertiseAddr.IsValid():
		if !dev && (cfg.AdvertiseAddr.IsLoopback() || cfg.AdvertiseAddr.IsUnspecified()) {
			return devShortcut(chainID, "--wg.advertise "+cfg.AdvertiseAddr.String(), "give the public address consumers reach the WireGuard port at, or --wg.advertise auto")
		}
		return nil
	case DefaultAdvertise(chainID, cfg.ICE) == LoopbackAdvertise:
		cfg.AdvertiseAddr = netip.MustParseAddr(LoopbackAdvertise)
		return nil
	default:
		if cfg.WGPort == 0 && !dev {
			return devShortcut(chainID, "a WireGuard endpoint on "+LoopbackAdvertise, "give --wg.advertise (your public address), or a fixed --wg.port for the provider to find its endpoint (--wg.advertise auto)")
		}
		cfg.AdvertiseAuto = true
	}
	if cfg.WGPort == 0 {
		return errors.New("node: finding the advertised WireGuard endpoint (--wg.advertise auto) needs a fixed WireGuard port (--wg.port)")
	}
	return nil
}

// DefaultAdvertise is the advertised WireGuard address of a provider on
// chain chainID given none (--wg.advertise unset), with ICE servers ic
// (ICESettings.Config): LoopbackAdvertise on a dev chain when there is no
// server or every one is on loopback (a devnet on this machine, as `myst
// devnet` writes it), else AdvertiseAuto: on a network spanning hosts,
// and on every chain that is not a dev chain whatever its servers, the
// provider finds its endpoint (port mapping, STUN, a public interface).
func DefaultAdvertise(chainID uint64, ic *ice.Config) string {
	if chain.IsDevChainID(chainID) && (ic == nil || ic.Loopback) {
		return LoopbackAdvertise
	}
	return AdvertiseAuto
}

// hermesClientURL is the hermes API a provider on chain chainID talks to:
// u, or DevHermesURL when u is empty on a dev chain (empty elsewhere is
// refused: the loopback hermes is a devnet's). Plain HTTP to a host that
// is not loopback (insecure, --hermes.insecure-http) is refused off dev
// chains.
func hermesClientURL(chainID uint64, u string, insecure bool) (string, error) {
	dev := chain.IsDevChainID(chainID)
	if u == "" {
		if !dev {
			return "", devShortcut(chainID, "the hermes at "+DevHermesURL, "give the network's hermes API (--hermes.url with myst service, --provider.hermes-url with myst daemon, or --network)")
		}
		return DevHermesURL, nil
	}
	if insecure && !dev && network.PlainHTTPRemote(u) {
		return "", devShortcut(chainID, "plain HTTP to hermes "+u+" (--hermes.insecure-http, --provider.hermes-insecure-http)", "use the hermes's https:// URL (--hermes.ca or --provider.hermes-ca for a private CA)")
	}
	return u, nil
}

// transactorClientURL refuses a transactor URL in plain HTTP to a host
// that is not loopback off dev chains (a network file cannot name one
// either, see network.Decode).
func transactorClientURL(chainID uint64, u string) error {
	if !chain.IsDevChainID(chainID) && network.PlainHTTPRemote(u) {
		return devShortcut(chainID, "plain HTTP to transactor "+u, "use the transactor's https:// URL (--transactor, --provider.transactor)")
	}
	return nil
}

// checkPlainListen refuses a server's plain HTTP API on an address that
// is not loopback (insecure: its --<flag> allows it) off dev chains.
func checkPlainListen(chainID uint64, listen, flag string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil || api.Loopback(host) || chain.IsDevChainID(chainID) {
		return nil
	}
	return devShortcut(chainID, "a plain HTTP API on "+listen+" (--"+flag+")", "serve HTTPS (--tls.cert, --tls.key), or plain HTTP on a loopback address behind a TLS proxy")
}

// iceForChain is the ICE configuration ic of a node on chain chainID.
// STUN/TURN servers all on loopback (a devnet on this machine, whose
// nodes then gather loopback candidates only) are refused off dev
// chains; servers all on private addresses (a LAN lab) there keep
// private candidates refused, as on any network spanning the internet.
func iceForChain(chainID uint64, ic *ice.Config) (*ice.Config, error) {
	if ic == nil || chain.IsDevChainID(chainID) {
		return ic, nil
	}
	if ic.Loopback {
		return nil, devShortcut(chainID, "STUN/TURN servers on loopback (--ice.server)", "name the network's STUN/TURN servers (--ice.server, or --network)")
	}
	out := *ic
	out.Policy.AllowPrivate = false
	return &out, nil
}

// publicAddrsOnly is whether a node on chain chainID advertises only
// public and circuit libp2p addresses: on (flag, --p2p.public-addrs-only)
// or always off dev chains, whose peers are elsewhere on the internet
// and need no private or loopback address of ours.
func publicAddrsOnly(chainID uint64, flag bool) bool {
	return flag || !chain.IsDevChainID(chainID)
}

// checkFaucetDeploy refuses deploying a token anyone may mint (--faucet)
// to chain chainID that is not a dev chain (nodes would refuse such a
// deployment there anyway: network.Decode, DevKeysAllowed).
func checkFaucetDeploy(chainID uint64, faucet bool) error {
	if faucet && !chain.IsDevChainID(chainID) {
		return devShortcut(chainID, "a token anyone may mint (--faucet)", "deploy without --faucet")
	}
	return nil
}

// checkLightScrypt refuses weak keystore encryption
// (--keystore.light-scrypt) for a node on chain chainID that is not a dev
// chain.
func checkLightScrypt(chainID uint64, light bool) error {
	if light && !chain.IsDevChainID(chainID) {
		return devShortcut(chainID, "weak key encryption (--keystore.light-scrypt)", "drop --keystore.light-scrypt")
	}
	return nil
}

// devDeployment reports whether dep is a dev deployment (faucet) of a dev
// chain: only there do the public dev keys sign, MYST come from the
// faucet and chain events count without confirmations.
func devDeployment(dep chain.Deployment) bool { return DevKeysAllowed(dep) == nil }
