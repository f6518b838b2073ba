package tequilapi

import (
	"context"
	"log/slog"
	"net/http"
)

// respond writes out with status, or the error.
func respond[T any](w http.ResponseWriter, log *slog.Logger, status int, out T, err error) {
	if err != nil {
		WriteError(w, log, err)
		return
	}
	WriteJSON(w, status, out)
}

// callRoute is the handler of a route that only calls the service svc:
// the call's answer is written as JSON with 200 OK, its error, mapped by
// mapErr (nil: as it is), with WriteError. call is a method expression
// (or a function of svc), so that routes built over a nil service, for
// their description only, never touch it.
func callRoute[S, T any](log *slog.Logger, mapErr func(error) error, svc S, call func(S, context.Context) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out, err := call(svc, r.Context())
		respond(w, log, http.StatusOK, out, mapError(mapErr, err))
	}
}

// callBodyRoute is callRoute for a call given the request's body, which
// DecodeJSON decodes and checks first (a bad body answers its *APIError).
func callBodyRoute[S, Req, T any](log *slog.Logger, mapErr func(error) error, svc S, call func(S, context.Context, Req) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := DecodeJSON(r, &req); err != nil {
			WriteError(w, log, err)
			return
		}
		out, err := call(svc, r.Context(), req)
		respond(w, log, http.StatusOK, out, mapError(mapErr, err))
	}
}

// callNoContentRoute is callRoute for a call that answers nothing: 204 No
// Content.
func callNoContentRoute[S any](log *slog.Logger, mapErr func(error) error, svc S, call func(S, context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := call(svc, r.Context()); err != nil {
			WriteError(w, log, mapError(mapErr, err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func mapError(mapErr func(error) error, err error) error {
	if err == nil || mapErr == nil {
		return err
	}
	return mapErr(err)
}

// nonNil is s, or an empty slice (JSON [], never null) for nil.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
