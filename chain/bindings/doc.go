// Package bindings holds the abigen-generated Go bindings of the openmyst
// contracts (contracts/src). Do not edit: run `go generate ./chain/...`.
package bindings
