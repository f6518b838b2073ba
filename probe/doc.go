// Package probe is the peer reachability check: a node asks a few other
// peers to connect to it from outside and reports "reachable from N of M
// peers", the decentralized version of a central monitoring agent.
//
// Two libp2p protocols:
//
//   - ProtocolCheck (/openmyst/probe/1.0.0): the requester opens a stream
//     to a checker and sends a Request (a fresh nonce). The checker dials
//     the requester from a fresh libp2p host of its own (a new key, new
//     sockets: no existing connection can be reused, so the answer is
//     honest), at the addresses the requester advertises about itself (its
//     signed peer record, else its identify addresses; never an address
//     named in the request), runs the echo below and answers with a
//     Response carrying a Result signed by its peer key, or a refusal.
//   - ProtocolEcho (/openmyst/probe/echo/1.0.0): the checker's fresh host
//     sends the nonce and EchoSize random bytes; the requester echoes them
//     back only for a nonce of its own check in flight. The requester
//     counts a checker's "reachable" only when this echo arrived, so a
//     checker cannot claim a reachability it did not see.
//
// Everything a stranger can trigger is bounded and rate-limited: requests
// per requesting peer and checks at once (checker side), echoes per second
// (requester side), message sizes, the number and kind of addresses dialled
// (IP addresses only, no DNS names; never loopback, private, link-local,
// multicast or unspecified ones unless Config.AllowPrivate, for loopback
// devnets; see nat/addrs).
package probe
