// Package client is the provider side of the hermes API: it keeps the
// provider's secrets R durable, exchanges consumers' exchange messages for
// hermes promises with retries and backoff, reveals R, and after a crash
// re-requests and re-reveals whatever was in flight (Recover).
//
// The ordering that keeps a provider from losing money: NewHashlock stores
// R durably before the hashlock is returned (so before any invoice using it
// can leave the node); RequestPromise stores the exchange message before
// posting it and the hermes promise before revealing R. The hermes answers
// a repeated message with the same promise and ignores a repeated reveal,
// so every step is safe to redo.
//
// Before a hermes promise is stored or R revealed, the client checks it
// against the hermes's terms as registered on chain (Options.Chain): the
// operator's signature, chain id, the provider's channel in the trusted
// hermes (Options.HermesID), the hashlock, a transactor fee within the
// on-chain fee rate (or Options.MaxPromiseFee) that the contract would
// accept, and an amount that keeps every agreement total it was promised
// for covered. A promise that fails wraps ErrUntrustedPromise; R stays
// secret. docs/protocol.md lists the rules.
//
// The hermes is reached over https:// (Options.RootCAs, else the system
// roots); plain http:// only to a loopback host, or anywhere with
// Options.AllowInsecureHTTP. It imports only the wire contract
// (hermes/api), never the hermes service or its SQL stores.
//
// Calls run inside the provider's invoice loop, so none may hang: every
// HTTP attempt is bounded by Options.AttemptTimeout (default 5s), the whole
// call (retries and backoff) by the caller's ctx, and a call that got no
// answer returns an error wrapping ErrUnavailable (Retryable reports it):
// keep the message and try again later. Only a rejection (*APIError with a
// non-retryable code) is final.
package client
