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
// Calls run inside the provider's invoice loop, so none may hang: every
// HTTP attempt is bounded by Options.AttemptTimeout (default 5s), the whole
// call (retries and backoff) by the caller's ctx, and a call that got no
// answer returns an error wrapping ErrUnavailable (Retryable reports it):
// keep the message and try again later. Only a rejection (*APIError with a
// non-retryable code) is final.
package client
