// Package session holds the session layer of openmyst: the provider's
// session manager, the consumer's connection manager and, in subpackage
// pingpong, the pay-as-you-go state machines that price a session and
// exchange invoices for promises while it runs.
//
// The session layer sits above p2p (the session control stream), tunnel
// (WireGuard devices and byte counters) and payments/hermes, and below
// node and cmd/myst. docs/session.md describes sessions end to end.
package session
