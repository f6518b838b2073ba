// Package p2p builds an openmyst node's libp2p presence: the host (TCP and
// QUIC, Noise, yamux), its persistent ed25519 peer key, the Kademlia DHT on
// the private "/openmyst" protocol prefix used for peer routing, bootstrap
// peers, and the Binding record that ties a libp2p peer id to an openmyst
// identity.
//
// Nothing here joins the public IPFS network: the DHT uses its own protocol
// prefix and only the configured bootstrap peers.
package p2p
