// Package hermes is the openmyst payment hub: it turns consumers' signed
// promises into providers' earnings.
//
// A provider posts a consumer's ExchangeMessage; the Service checks it (the
// consumer's signatures, chain and hermes ids, registration and channel
// derivation through the Chain seam, that every agreement's total never
// decreases, that the sum of agreement increases credited to providers
// ("consumed") stays within the highest promise the consumer signed, that
// this highest promise stays within its on-chain channel balance, fee
// rules), stores it durably and answers with a promise signed
// by the hermes operator on the provider's channel, locked by the same
// hashlock. Accepts of one consumer are serialized in process and guarded
// by versioned rows in the store; accepts of different consumers are
// batched into group commits (Config.Committers of them at once on
// PostgreSQL, each provider's accepts always through the same one), and
// nothing is acknowledged before its batch has committed. The same message
// twice returns the same promise.
//
// Several hermes processes may share one PostgreSQL database and serve the
// same consumers: each keeps a cache of the state it last read, and the
// store refuses any write that does not extend the latest stored version
// of its consumer and provider (the process then reloads the state of the
// consumers and providers in the failed commit, drops their accepts queued
// behind it, and those requests answer "unavailable; retry"), so no amount
// is ever credited twice.
// Settlement is coordinated between processes by a store lease
// ("hermes-settlement"): only the process holding it sends settlement
// transactions, and another takes over when the lease runs out.
//
// A consumer may pay several sessions at once; its promises are cumulative
// over its channel and may arrive out of order (session B's 150, which
// counts session A's 100, before A's 100). Both are accepted: the order of
// arrival never loses a paid promise, and the highest promise is the one
// settled on chain. docs/protocol.md lists the rules in order.
//
// A flood cannot starve it (Limits): the checks run cheapest first
// (size and decoding, fees, signatures, cached registration, then the
// chain), negative chain answers are cached for a short TTL, every
// in-memory map keyed by remote input is an LRU with a cap, and the HTTP
// API limits each source address (429 with Retry-After, held back for a
// source that keeps sending, with a penalty for junk) and each consumer
// identity (golang.org/x/time/rate, package ratelimit).
//
// The settlement worker settles consumers' promises on chain once the
// revealed, unsettled amount is worth the gas, and reconciles from chain
// events. The HTTP API (Handler) is described by the OpenAPI document it
// serves at /openapi.json; Prometheus metrics are at /metrics.
//
// Subpackages: api (the wire contract: paths, bodies, rejection codes),
// store (SQLite and PostgreSQL state) and client (the provider-side client
// that keeps R durable and recovers after a crash; it imports api, never
// this package or store, so it links no SQL driver).
package hermes
