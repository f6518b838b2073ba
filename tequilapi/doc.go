// Package tequilapi is the node's local REST API: a net/http server with
// bearer-token auth, one JSON error shape, strict request decoding and an
// OpenAPI 3 document generated from the registered routes.
//
// Capabilities add their endpoints with Server.Add(Route{...}); each Route
// carries its OpenAPI Operation (summary, request and response Go types),
// so /openapi.json always equals what the server serves. Handlers decode
// bodies with DecodeJSON, answer with WriteJSON and fail with WriteError.
//
// Every failure is {"error":{"code":"...","message":"...","fields":{...}}}
// with an HTTP status matching the code. Every route except the Public ones
// (GET /healthcheck, POST /auth/login, GET /openapi.json) needs an
// "Authorization: Bearer <token>" header with a token from POST /auth/login.
package tequilapi
