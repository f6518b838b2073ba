// Package discovery spreads provider proposals over libp2p without any
// central server.
//
// A provider's Announcer publishes an Announcement (its signed
// market.Proposal plus the p2p.Binding that ties its peer id to its
// identity) on a GossipSub topic per chain, re-announces it before it
// expires and publishes a signed withdrawal on a clean stop. Every node runs
// the topic Validator, which rejects (lowering the forwarding peer's
// GossipSub score) oversized, malformed, unknown-version, badly signed,
// mis-bound, wrong-chain, expired and future-dated messages, ignores stale
// sequence numbers and rate-limited origins, and counts every outcome in
// Stats. Accepted proposals land in the consumer-side Cache, queried with a
// market.Filter. A node that joins late pulls the current proposals from
// peers over a small request/response stream (SyncProtocol), validated the
// same way.
//
// Wire formats and rules are in docs/discovery.md.
package discovery
