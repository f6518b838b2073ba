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
package client
