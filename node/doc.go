// Package node assembles openmyst nodes from the layers below: a hermes
// (payment hub service, SQLite store, HTTP API on loopback), a provider
// (identity registration, libp2p host with proposal gossip, userspace
// WireGuard exit, session manager, hermes client, settlement), a consumer
// (libp2p host, proposal cache, channel ledger, connection manager) and
// Devnet, which starts a dev chain, a hermes, a bootstrap peer, three
// providers and a funded consumer in one process on loopback. It owns
// their lifecycle: every Start has a Close that stops what it started, in
// reverse order. cmd/myst only parses flags and calls into this package.
package node
