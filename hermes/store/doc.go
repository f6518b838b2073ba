// Package store is the hermes payment hub's durable state: accepted
// exchange messages with the consumer and hermes promises, per-consumer and
// per-provider cumulative state, revealed secrets and settlements.
//
// One Store interface has two implementations sharing the SQL core:
// SQLite (modernc.org/sqlite, WAL, synchronous=FULL) as the embedded
// default, and PostgreSQL (pgx). Schemas are versioned migrations applied
// at Open. Every write that acknowledges money is one transaction that has
// committed durably before the call returns; consumer and provider rows
// carry a version so two hermes processes sharing one database cannot both
// extend the same balance (optimistic concurrency: ErrConflict). The
// database enforces it: (identity, version) is unique, and Commit refuses
// a row whose predecessor version is not stored, so each consumer's and
// each provider's rows form one unbroken chain whatever the writers do.
// PostgreSQL commits may run on several connections at once
// (ConcurrentCommitter).
//
// Since schema 6 the journal stores promises in a compact binary form
// (encPromise) that a hermes built before it cannot read: every process
// sharing one database must run schema 6 or later, so upgrade them
// together.
package store
