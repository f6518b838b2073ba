package api

import "net/http"

// Code is a stable, machine-readable rejection reason. It appears in the
// API's JSON error body and as the "reason" label of the hermes's
// rejection metric.
type Code string

// Rejection codes.
const (
	CodeBadRequest          Code = "bad_request"          // malformed request or message
	CodeUnsupportedMedia    Code = "unsupported_media"    // request body is not Content-Type: application/json
	CodeBadSignature        Code = "bad_signature"        // consumer or promise signature invalid
	CodeWrongChain          Code = "wrong_chain"          // message for another chain
	CodeWrongHermes         Code = "wrong_hermes"         // message for another hermes
	CodeNotRegistered       Code = "not_registered"       // consumer not registered with this hermes
	CodeWrongChannel        Code = "wrong_channel"        // promise channel is not the consumer's channel
	CodeBadFee              Code = "bad_fee"              // transactor fee outside the rules
	CodeAmountDecreased     Code = "amount_decreased"     // agreement total lower than accepted, or a message that adds nothing
	CodeUnderpaid           Code = "underpaid"            // agreement increase not covered by the consumer's highest promise
	CodeInsufficientBalance Code = "insufficient_balance" // consumer total would exceed channel balance
	CodeReplayConflict      Code = "replay_conflict"      // the highest accepted promise amount again, different message
	CodeUnrevealedLimit     Code = "unrevealed_limit"     // provider must reveal earlier secrets first
	CodeBadPreimage         Code = "bad_preimage"         // keccak(R) does not match the hashlock
	CodeNotFound            Code = "not_found"            // no such hashlock / record
	CodeUnavailable         Code = "unavailable"          // storage or chain temporarily failing; retry
	CodeRateLimited         Code = "rate_limited"         // source address or identity over its rate; retry after Retry-After
)

// HTTPStatus is the status the API answers a rejection with.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeBadRequest, CodeWrongChain, CodeWrongHermes, CodeWrongChannel, CodeBadFee, CodeBadPreimage:
		return http.StatusBadRequest
	case CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case CodeBadSignature:
		return http.StatusUnauthorized
	case CodeNotRegistered:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeAmountDecreased, CodeReplayConflict, CodeUnderpaid, CodeUnrevealedLimit:
		return http.StatusConflict
	case CodeInsufficientBalance:
		return http.StatusPaymentRequired
	case CodeRateLimited:
		return http.StatusTooManyRequests
	default:
		return http.StatusServiceUnavailable
	}
}

// Retryable reports whether the same request may succeed later unchanged.
// A rate_limited request may, after the response's Retry-After.
func (c Code) Retryable() bool { return c == CodeUnavailable || c == CodeRateLimited }

// ErrorBody is the JSON body of every API error.
type ErrorBody struct {
	// Error holds the code and reason.
	Error struct {
		// Code is the stable rejection code.
		Code Code `json:"code"`
		// Message explains it.
		Message string `json:"message"`
	} `json:"error"`
}
