// Package sessionproto is the openmyst session control protocol: the
// messages a consumer and a provider exchange on one libp2p stream to open a
// paid WireGuard session, pay for it and end it.
//
// A stream speaks ProtocolID. Every message is one frame: a 4-byte
// big-endian length followed by that many bytes of JSON, at most
// MaxFrameSize. The JSON is an envelope {"type": T, "body": B} where T names
// the message (see Type) and B is the message's object. Decoding is strict:
// unknown, duplicate, missing or null fields, wrong lengths, non-canonical
// numbers and keys, out-of-range values and trailing data are rejected with
// an error that wraps ErrMalformed and names the reason.
//
// The consumer's SessionRequest is signed by its identity over a canonical
// digest (see SessionRequest.Digest) bound to the chain id, and carries a
// timestamp and a random nonce so a provider can refuse replays
// (ReplayGuard). Invoices and exchange messages travel as the payments
// package's own JSON wire forms, embedded raw and size-capped; this package
// only checks that they are single JSON objects; Invoice.Payment and
// ExchangeMessage.Payment decode them strictly with the payments decoders,
// and the session layer verifies signatures and amounts.
//
// Protocol 1.2 (ProtocolResume) adds Resume and ResumeAck: a consumer
// whose session stream was lost (a circuit relay connection that hit its
// limit) moves the running session onto a new stream with a signed
// Resume; the provider's Writer can detach from the lost stream and attach
// to the new one (DetachOnFailure, Attach).
//
// Reader and Writer frame messages over a stream and put a deadline on every
// read and write, so a silent or slow peer cannot hold a session goroutine
// forever. docs/session.md describes the protocol for implementers.
package sessionproto
