package tequilapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"

	"github.com/openmyst/openmyst/internal/strictjson"
)

// DefaultMaxBodyBytes is the request body limit when Config sets none.
const DefaultMaxBodyBytes = 64 << 10

// Validator is implemented by request types that check their values after
// decoding. Validate returns nil or an error (an *APIError is sent as is;
// use FieldError).
type Validator interface {
	Validate() error
}

// DecodeJSON strictly decodes the request body into v, which must be a
// pointer to a struct:
//   - the body must be exactly one JSON object (400 otherwise, with the
//     reason and byte offset for syntax errors);
//   - unknown fields are rejected (400, named in fields);
//   - every field whose json tag lacks omitempty is required and must not
//     be null (400, named in fields);
//   - wrong JSON types are rejected (400, field named);
//   - a body over the server's limit gives 413;
//   - finally v.Validate() runs if v implements Validator.
//
// The returned error is always an *APIError, ready for WriteError.
func DecodeJSON(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return DecodeBytes(body, v)
}

// readBody reads the request body: 413 over the server's limit, 400 when
// reading fails otherwise (an *APIError either way).
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, NewError(http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit))
		}
		return nil, NewError(http.StatusBadRequest, CodeBadRequest, "reading request body: "+err.Error())
	}
	return body, nil
}

// DecodeBytes is DecodeJSON over an already read body.
func DecodeBytes(body []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("tequilapi: DecodeBytes needs a pointer to a struct, got %T", v)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return NewError(http.StatusBadRequest, CodeBadRequest, "request body is empty, want a JSON object")
	}
	// Pass 1: the body is one JSON object; note which keys are present.
	var present map[string]json.RawMessage
	if err := decodeOne(body, &present); err != nil {
		return err
	}
	if present == nil {
		return NewError(http.StatusBadRequest, CodeBadRequest, "malformed JSON: body is null, want a JSON object")
	}
	fields := jsonFields(rv.Elem().Type())
	known := make(map[string]bool, len(fields))
	for _, f := range fields {
		known[f.name] = true
	}
	// encoding/json matches names case-insensitively; the API does not.
	for k := range present {
		if !known[k] {
			return &APIError{Status: http.StatusBadRequest, Body: ErrorBody{
				Code: CodeBadRequest, Message: "unknown field " + k, Fields: map[string]string{k: "unknown field"},
			}}
		}
	}
	missing := map[string]string{}
	for _, f := range fields {
		raw, ok := present[f.name]
		if f.required && (!ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))) {
			missing[f.name] = "required"
		}
	}
	// Pass 2: strict decode into v.
	if err := decodeOne(body, v); err != nil {
		return err
	}
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for k := range missing {
			names = append(names, k)
		}
		sort.Strings(names)
		return &APIError{Status: http.StatusBadRequest, Body: ErrorBody{
			Code: CodeValidation, Message: "missing required fields: " + strings.Join(names, ", "), Fields: missing,
		}}
	}
	if val, ok := v.(Validator); ok {
		if err := val.Validate(); err != nil {
			var apiErr *APIError
			if errors.As(err, &apiErr) {
				return apiErr
			}
			return NewError(http.StatusBadRequest, CodeValidation, err.Error())
		}
	}
	return nil
}

// decodeOne decodes one JSON value strictly (a map target has no unknown
// fields to refuse, so pass 1 of DecodeBytes goes through it as well).
func decodeOne(body []byte, v any) error {
	err := strictjson.Unmarshal(body, v)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, strictjson.ErrTrailingData):
		return NewError(http.StatusBadRequest, CodeBadRequest, "malformed JSON: unexpected data after the JSON object")
	default:
		return decodeError(err)
	}
}

func decodeError(err error) *APIError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return NewError(http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return NewError(http.StatusBadRequest, CodeBadRequest, "malformed JSON: unexpected end of body")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return NewError(http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("malformed JSON: got %s, want a JSON object", typ.Value))
		}
		problem := fmt.Sprintf("got %s, want %s", typ.Value, jsonTypeName(typ.Type))
		return &APIError{Status: http.StatusBadRequest, Body: ErrorBody{
			Code: CodeBadRequest, Message: "wrong type for field " + typ.Field + ": " + problem,
			Fields: map[string]string{typ.Field: problem},
		}}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return &APIError{Status: http.StatusBadRequest, Body: ErrorBody{
			Code: CodeBadRequest, Message: "unknown field " + name, Fields: map[string]string{name: "unknown field"},
		}}
	}
	return NewError(http.StatusBadRequest, CodeBadRequest, "malformed JSON: "+strings.TrimPrefix(msg, "json: "))
}

func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	default:
		return "object"
	}
}

type jsonField struct {
	name     string
	typ      reflect.Type
	required bool
	doc      string
}

// jsonFields lists the JSON-visible fields of struct type t as
// encoding/json sees them (untagged embedded structs are flattened). A
// field is required unless its tag says omitempty (or omitzero).
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			et := sf.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				out = append(out, jsonFields(et)...)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		optional := strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
		out = append(out, jsonField{name: name, typ: sf.Type, required: !optional, doc: sf.Tag.Get("doc")})
	}
	return out
}
