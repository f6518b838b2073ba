// Package strictjson is the module's one strict JSON decoder: exactly one
// JSON value, no unknown fields, nothing after it. Wire decoders build on
// it and add their own checks (field formats, signatures) on top.
//
// Unmarshal decodes into a Go value like json.Unmarshal but refuses
// unknown object fields and trailing data. Object reads one JSON object
// whose keys must be exactly a given set: no unknown, duplicate, missing or
// null members; the caller then decodes each raw member itself.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Errors wrapped by this package's decoders (errors.Is).
var (
	// ErrTrailingData: more than whitespace follows the JSON value.
	ErrTrailingData = errors.New("trailing data after the JSON value")
	// ErrSyntax: the input is not valid JSON.
	ErrSyntax = errors.New("bad JSON")
	// ErrNotObject: the input is valid JSON but not an object.
	ErrNotObject = errors.New("not a JSON object")
	// ErrUnknownField: an object has a key outside the allowed set.
	ErrUnknownField = errors.New("unknown field")
	// ErrDuplicateField: an object has the same key twice.
	ErrDuplicateField = errors.New("duplicate field")
	// ErrMissingField: an object lacks a required key.
	ErrMissingField = errors.New("missing field")
	// ErrNullField: an object member is null.
	ErrNullField = errors.New("null field")
	// ErrTooLarge: the input is longer than the caller's bound (Decode).
	ErrTooLarge = errors.New("too large")
)

// maxFieldInError bounds how much of a stranger's key an error repeats.
const maxFieldInError = 40

// FieldError is an error about one object member; it wraps Kind
// (ErrUnknownField, ErrDuplicateField, ErrMissingField or ErrNullField).
type FieldError struct {
	// Kind is the sentinel error of this package that says what is wrong.
	Kind error
	// Field is the member's key, cut to 40 bytes.
	Field string
}

// Error returns, for example, `unknown field "x"`.
func (e *FieldError) Error() string { return fmt.Sprintf("%v %q", e.Kind, e.Field) }

// Unwrap returns Kind.
func (e *FieldError) Unwrap() error { return e.Kind }

func fieldErr(kind error, key string) error {
	if len(key) > maxFieldInError {
		key = key[:maxFieldInError] + "..."
	}
	return &FieldError{Kind: kind, Field: key}
}

// Decode is the strict decoder of a bounded wire value: data (at most max
// bytes, else ErrTooLarge) is decoded with Unmarshal into a new T, then
// check (nil: none) runs on it. A size or decoding error is wrapped as
// "what: ..."; check's error comes back as it is. On any error the zero T
// is returned.
func Decode[T any](data []byte, max int, what string, check func(*T) error) (T, error) {
	var v, zero T
	if len(data) > max {
		return zero, fmt.Errorf("%s: %w: %d bytes, max %d", what, ErrTooLarge, len(data), max)
	}
	if err := Unmarshal(data, &v); err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	if check != nil {
		if err := check(&v); err != nil {
			return zero, err
		}
	}
	return v, nil
}

// Unmarshal decodes exactly one JSON value from data into v, refusing
// unknown object fields (json.Decoder.DisallowUnknownFields) and trailing
// data (ErrTrailingData). Decoding errors are encoding/json's own
// (*json.SyntaxError, *json.UnmarshalTypeError, "json: unknown field ..."),
// unwrapped, so callers can map them to their own error shapes.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrTrailingData
	}
	return nil
}

// Object reads data, which must be exactly one JSON object whose keys are
// exactly fields, and returns its members. Errors wrap ErrSyntax,
// ErrNotObject or ErrTrailingData, or are a *FieldError.
func Object(data []byte, fields ...string) (map[string]json.RawMessage, error) {
	return ObjectOptional(data, fields, nil)
}

// ObjectOptional is Object where the keys in optional may also be absent
// (fields a newer protocol version added); present, they must not be null
// either.
func ObjectOptional(data []byte, fields, optional []string) (map[string]json.RawMessage, error) {
	if len(optional) == 0 {
		if out, ok := objectFast(data, fields); ok {
			return out, nil
		}
	}
	return objectSlow(data, fields, optional)
}

// objectSlow is ObjectOptional on json.Decoder's token stream: every
// input, with the precise error for a bad one.
func objectSlow(data []byte, fields, optional []string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: input is not JSON: %v", ErrSyntax, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, ErrNotObject
	}
	want := make(map[string]bool, len(fields)+len(optional))
	for _, f := range fields {
		want[f] = true
	}
	for _, f := range optional {
		want[f] = true
	}
	out := make(map[string]json.RawMessage, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: object key: %v", ErrSyntax, err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: object key", ErrSyntax)
		}
		if !want[key] {
			return nil, fieldErr(ErrUnknownField, key)
		}
		if _, dup := out[key]; dup {
			return nil, fieldErr(ErrDuplicateField, key)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: field %q: %v", ErrSyntax, key, err)
		}
		if string(raw) == "null" {
			return nil, fieldErr(ErrNullField, key)
		}
		out[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("%w: unterminated object: %v", ErrSyntax, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrTrailingData
	}
	for _, f := range fields {
		if _, ok := out[f]; !ok {
			return nil, fieldErr(ErrMissingField, f)
		}
	}
	return out, nil
}
