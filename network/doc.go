// Package network describes one openmyst network in one file: its name,
// chain id, JSON-RPC endpoints, contract deployment, hermes hubs (API URL
// and operator), optional transactor, bootstrap and relay peers, STUN/TURN
// servers and the confirmations to wait for.
//
// The file is TOML, like the node's config.toml. Decode is strict: unknown
// keys, wrong types, bad addresses, URLs and multiaddrs, and devnet
// shortcuts on a chain that is not a dev chain (a faucet deployment,
// plain-HTTP endpoints on non-loopback hosts) are refused with an error
// naming the key. `myst devnet` writes one (Encode); every command that
// talks to a network reads one with --network FILE|NAME (Resolve), where a
// NAME is <data-dir>/networks/NAME.toml. No public network is built in:
// none exists yet.
package network
