package hermes

import (
	"errors"
	"fmt"
	"time"

	"github.com/openmyst/openmyst/hermes/api"
)

// Code is the API's stable rejection reason (api.Code); the alias and
// the constants below let the service name the codes it rejects with.
type Code = api.Code

// Rejection codes (see package api).
const (
	CodeBadRequest          = api.CodeBadRequest
	CodeUnsupportedMedia    = api.CodeUnsupportedMedia
	CodeBadSignature        = api.CodeBadSignature
	CodeWrongChain          = api.CodeWrongChain
	CodeWrongHermes         = api.CodeWrongHermes
	CodeNotRegistered       = api.CodeNotRegistered
	CodeWrongChannel        = api.CodeWrongChannel
	CodeBadFee              = api.CodeBadFee
	CodeAmountDecreased     = api.CodeAmountDecreased
	CodeUnderpaid           = api.CodeUnderpaid
	CodeInsufficientBalance = api.CodeInsufficientBalance
	CodeReplayConflict      = api.CodeReplayConflict
	CodeUnrevealedLimit     = api.CodeUnrevealedLimit
	CodeBadPreimage         = api.CodeBadPreimage
	CodeNotFound            = api.CodeNotFound
	CodeUnavailable         = api.CodeUnavailable
	CodeRateLimited         = api.CodeRateLimited
)

// Error is a rejection with a stable Code and a human-readable reason.
type Error struct {
	// Code is the stable reason.
	Code Code
	// Msg explains the rejection.
	Msg string
	// Err is the underlying cause, if any.
	Err error
	// RetryAfter, for CodeRateLimited, is how long until the same request
	// may be accepted (the HTTP Retry-After).
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Msg)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func reject(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func rateLimited(after time.Duration, format string, args ...any) *Error {
	return &Error{Code: CodeRateLimited, Msg: fmt.Sprintf(format, args...), RetryAfter: after}
}

func unavailable(msg string, err error) *Error {
	return &Error{Code: CodeUnavailable, Msg: msg, Err: err}
}

// CodeOf returns the Code of err, CodeUnavailable for errors that are not
// an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeUnavailable
}
