// Package quality is trust without a central oracle: fraud proofs that
// convict a provider from what it signed itself, and the blacklist every
// node keeps from them.
//
// A Proof is either two conflicting signed proposals with one sequence
// number, or a signed proposal and a signed v2 invoice (payments.Usage)
// whose total exceeds the proposal's price for the time and bytes the
// invoice itself claims. Verify needs nothing but the proof: no trust in
// whoever reports it, no chain, no clock. A verified proof blacklists the
// provider identity for good (Store, durable across restarts); discovery
// asks Service.Blocked before listing any proposal.
//
// Proofs travel on their own GossipSub topic (TopicName) behind a strict
// validator (size, decoding, proof validity, rate per forwarding peer),
// and late joiners pull every known proof from a peer over SyncProtocol
// (request/response; nothing is re-published periodically). Quality
// reports, likewise, travel on their own topic and the last hour's are
// pulled over ReportSyncProtocol, each re-validated as from gossip.
// docs/quality.md explains what is and is not provable.
package quality
