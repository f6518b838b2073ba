// Package payments holds the pure payment-channel message types of
// openmyst: Promise, Invoice and ExchangeMessage, their canonical byte
// layouts (identical to the contracts, see docs/protocol.md), signing and
// verification through the identity package, and their strict JSON wire
// forms. It is the one home of the promise digest, the hashlock and the
// consumer and provider channel ids; package chain uses them.
//
// The package does no I/O. Amounts are *big.Int constrained to the uint256
// range [0, 2^256); every decoder rejects unknown, missing, duplicate or
// null fields, wrong byte lengths, non-canonical or out-of-range numbers,
// and trailing data, always with a reason in the error.
package payments
