// Package chain is openmyst's client of the on-chain contracts (MYST token,
// Registry, consumer channels, Hermes): it deploys them, registers
// identities and hermes hubs, tops up and inspects channels, settles
// promises and runs channel exits over any EVM JSON-RPC endpoint (or
// go-ethereum's simulated backend).
//
// Every signed message it produces follows docs/protocol.md byte for byte;
// the contracts expose view functions computing the same digests, and the
// tests check both sides agree. Promises are payments.Promise values: the
// promise digest, hashlock and channel ids live in package payments only.
// Reverts are decoded into *RevertError values
// that wrap sentinel errors (errors.Is(err, ErrBadPreimage), ...).
//
// Transactions from one key go through a Transactor, which assigns nonces
// so concurrent calls do not collide, waits for receipts under the
// caller's context and a receipt timeout, replaces transactions that are
// not mined with fee-bumped versions of the same nonce up to a ceiling, and
// with a PendingStore persists them before broadcasting and resumes them
// after a restart. A LogWatcher follows contract events with
// confirmations, reorg undo, eth_getLogs range splitting and a durable
// position (docs/chain.md, "Real networks").
package chain
