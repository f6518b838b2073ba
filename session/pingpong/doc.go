// Package pingpong is the pay-as-you-go logic of a session: the agreement
// price, the provider's InvoiceTracker and the consumer's InvoicePayer.
//
// Both are state machines over small interfaces (a durable hashlock store,
// a hermes client, a consumer channel ledger, a send function) with the
// current time and byte count passed in, so they do no networking of
// their own and tests drive them deterministically. InvoiceTracker.Run
// and the clock in this package drive a tracker in production.
//
// The protocol: every Interval, and earlier whenever the value not yet
// invoiced passes a threshold, the provider draws a fresh secret R, stores
// it durably, and sends an invoice for the cumulative agreement total
// locked by keccak256(R). The consumer checks the total against its own
// clock and byte counters within a documented tolerance, and answers with
// an exchange message: a promise on its channel, raised by exactly the
// invoice's increase and locked by the same hashlock. The provider checks
// it, stores it durably, forwards it to the hermes for a hermes promise and
// reveals R. A provider ends the session when an invoice stays unpaid
// longer than the grace period or the unpaid value exceeds a cap; a
// consumer refuses an invoice above the fair total and disconnects.
// docs/session.md states the bounds on unpaid exposure.
package pingpong
