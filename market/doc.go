// Package market holds what a provider offers and a consumer chooses from:
// the signed Proposal (provider identity, libp2p peer id and addresses,
// service type, Location, Price, accepted hermes, AccessPolicy, sequence
// number and expiry), its canonical encoding and signature, and the
// consumer-side Filter and sort order.
//
// The package is pure: no I/O, no clock (callers pass the time in). The wire
// format is documented in docs/discovery.md. Amounts are token wei
// (18-decimal MYST) as *big.Int, encoded as decimal strings; floats never
// appear on the wire.
package market
