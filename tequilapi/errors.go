package tequilapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
)

// Error codes used in ErrorBody.Code.
const (
	CodeBadRequest       = "bad_request"
	CodeValidation       = "validation_failed"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeTooLarge         = "payload_too_large"
	CodeTooManyRequests  = "too_many_requests"
	CodeInternal         = "internal"
)

// ErrorBody is the inside of every error response.
type ErrorBody struct {
	// Code is a stable machine-readable reason, e.g. "not_found".
	Code string `json:"code"`
	// Message is a human-readable one-line reason.
	Message string `json:"message"`
	// Fields maps request field names to what is wrong with them.
	Fields map[string]string `json:"fields,omitempty"`
}

// ErrorResponse is the body of every non-2xx response.
type ErrorResponse struct {
	// Error describes the failure.
	Error ErrorBody `json:"error"`
}

// APIError is an error with the HTTP status and body to answer it with.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Body is sent as {"error": Body}.
	Body ErrorBody
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Body.Code)
	b.WriteString(": ")
	b.WriteString(e.Body.Message)
	if len(e.Body.Fields) > 0 {
		keys := make([]string, 0, len(e.Body.Fields))
		for k := range e.Body.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString("; ")
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(e.Body.Fields[k])
		}
	}
	return b.String()
}

// NewError returns an APIError.
func NewError(status int, code, message string) *APIError {
	return &APIError{Status: status, Body: ErrorBody{Code: code, Message: message}}
}

// FieldError returns a 400 validation error for one field.
func FieldError(field, problem string) *APIError {
	return &APIError{Status: http.StatusBadRequest, Body: ErrorBody{
		Code: CodeValidation, Message: "invalid request: " + field + ": " + problem,
		Fields: map[string]string{field: problem},
	}}
}

// WriteError answers with err: an *APIError (anywhere in its chain) is
// sent as is; anything else is logged and answered with a generic 500.
func WriteError(w http.ResponseWriter, log *slog.Logger, err error) {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		if log != nil {
			log.Error("tequilapi: internal error", "err", err)
		}
		apiErr = NewError(http.StatusInternalServerError, CodeInternal, "internal error")
	}
	WriteJSON(w, apiErr.Status, ErrorResponse{Error: apiErr.Body})
}

// WriteJSON answers with status and v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if v == nil {
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}
