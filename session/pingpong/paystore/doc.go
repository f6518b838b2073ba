// Package paystore keeps a node's pay-as-you-go state durably in its node
// database (package storage, bbolt): the provider's invoice secrets and the
// consumers' latest exchange messages, and the consumer's channel ledger
// (the cumulative amount it has promised on its channel).
//
// Store implements pingpong.HashlockStore and pingpong.ExchangeStore;
// Channel implements pingpong.Channel. Every write commits (and is fsynced)
// before the call returns, so an invoice never leaves without its secret
// on disk, an exchange message is on disk before it is forwarded, and a
// consumer never signs a promise its ledger could later forget.
//
// All records live in storage.BucketPromises under keys prefixed
// "pingpong/", so other users of that bucket are not disturbed.
package paystore
