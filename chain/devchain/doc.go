// Package devchain runs an in-process go-ethereum dev chain: a real EVM and
// a real JSON-RPC endpoint (127.0.0.1:8545 by default) that mines a block
// for every transaction (or every period), with pre-funded dev accounts and
// the openmyst contracts deployed deterministically at start.
//
// The dev account keys are derived from public strings (see DevKey): they
// are for local development only and must never hold real value.
package devchain
