// Package hermes is the openmyst payment hub: it turns consumers' signed
// promises into providers' earnings.
//
// A provider posts a consumer's ExchangeMessage; the Service checks it (the
// consumer's signatures, chain and hermes ids, registration and channel
// derivation through the Chain seam, that cumulative amounts never
// decrease, that the consumer's total stays within its on-chain channel
// balance, fee rules), stores it durably and answers with a promise signed
// by the hermes operator on the provider's channel, locked by the same
// hashlock. Accepts of one consumer are serialized in process and guarded
// by versioned rows in the store; accepts of different consumers are
// batched into group commits, and nothing is acknowledged before its batch
// has committed. The same message twice returns the same promise.
//
// The settlement worker settles consumers' promises on chain once the
// revealed, unsettled amount is worth the gas, and reconciles from chain
// events. The HTTP API (Handler) is described by the OpenAPI document it
// serves at /openapi.json; Prometheus metrics are at /metrics.
//
// Subpackages: store (SQLite and PostgreSQL state) and client (the
// provider-side client that keeps R durable and recovers after a crash).
package hermes
