// Package api is the hermes HTTP API's wire contract, shared by the server
// (package hermes) and the provider's client (package hermes/client): the
// paths, the request and response bodies, the stable rejection codes and
// the JSON error body.
//
// It holds types and their strict decoders only, so a client can speak to
// a hermes without linking the hermes service, its store or any SQL driver
// (a test in hermes/client keeps it that way).
package api
