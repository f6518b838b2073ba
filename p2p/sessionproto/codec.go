package sessionproto

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/openmyst/openmyst/internal/strictjson"
)

// Decoding errors. Every decode failure wraps ErrMalformed and, where one
// applies, one of the more specific errors below; the message names the
// field and the reason.
var (
	// ErrMalformed is wrapped by every decoding error.
	ErrMalformed = errors.New("malformed session message")
	// ErrUnknownType is an envelope type this version does not know.
	ErrUnknownType = errors.New("unknown message type")
	// ErrUnknownField is a JSON key the message does not define.
	ErrUnknownField = errors.New("unknown field")
	// ErrMissingField is a required JSON key that is absent or null.
	ErrMissingField = errors.New("missing field")
	// ErrDuplicateField is a JSON key that appears twice in one object.
	ErrDuplicateField = errors.New("duplicate field")
	// ErrTrailingData is anything after the JSON value in a frame.
	ErrTrailingData = errors.New("trailing data")
	// ErrFrameTooLarge is a frame longer than MaxFrameSize (or empty).
	ErrFrameTooLarge = errors.New("frame size out of range")
	// ErrTruncated is a stream that ended inside a frame.
	ErrTruncated = errors.New("truncated frame")
	// ErrInvalid is a field that decoded but is out of range or badly
	// formed (see Message.Validate).
	ErrInvalid = errors.New("invalid field")
)

type envelope struct {
	Type Type            `json:"type"`
	Body json.RawMessage `json:"body"`
}

// Encode validates m and returns its JSON envelope (a frame payload,
// without the length prefix).
func Encode(m Message) ([]byte, error) {
	if m == nil || reflect.ValueOf(m).IsNil() {
		return nil, fmt.Errorf("sessionproto: encode: nil message")
	}
	if newMessage(m.Type()) == nil {
		return nil, fmt.Errorf("sessionproto: encode: %w %q", ErrUnknownType, m.Type())
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("sessionproto: encode %s: %w", m.Type(), err)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sessionproto: encode %s: %w", m.Type(), err)
	}
	out, err := json.Marshal(envelope{Type: m.Type(), Body: body})
	if err != nil {
		return nil, fmt.Errorf("sessionproto: encode %s envelope: %w", m.Type(), err)
	}
	if len(out) > MaxFrameSize {
		return nil, fmt.Errorf("sessionproto: encode %s: %w: %d bytes, at most %d", m.Type(), ErrFrameTooLarge, len(out), MaxFrameSize)
	}
	return out, nil
}

// Decode strictly decodes one frame payload (a JSON envelope without the
// length prefix) and validates the message. Every error wraps ErrMalformed.
func Decode(payload []byte) (Message, error) {
	if len(payload) == 0 || len(payload) > MaxFrameSize {
		return nil, malformed(ErrFrameTooLarge, "payload is %d bytes, want 1..%d", len(payload), MaxFrameSize)
	}
	var env envelope
	if err := decodeObject(payload, &env); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	m := newMessage(env.Type)
	if m == nil {
		return nil, malformed(ErrUnknownType, "%q", truncate(string(env.Type), 40))
	}
	if err := decodeObject(env.Body, m); err != nil {
		return nil, fmt.Errorf("%s: %w", env.Type, err)
	}
	if err := m.Validate(); err != nil {
		return nil, malformed(ErrInvalid, "%s: %v", env.Type, err)
	}
	return m, nil
}

func malformed(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", ErrMalformed, kind, fmt.Sprintf(format, args...))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// fieldSet is the exact JSON keys a struct type defines (sorted), those
// of them that may be absent, and the index of the field behind each.
type fieldSet struct {
	names    []string
	optional []string
	all      []string // names, then optional
	index    map[string]int
}

// fieldSets caches a fieldSet per struct type. Every field of every
// message is required except those tagged omitempty or omitzero (fields added in a
// minor protocol version, which older peers never send).
var fieldSets sync.Map // reflect.Type -> *fieldSet

func jsonFields(t reflect.Type) *fieldSet {
	if v, ok := fieldSets.Load(t); ok {
		return v.(*fieldSet)
	}
	set := &fieldSet{index: make(map[string]int, t.NumField())}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		set.index[name] = i
		if opts == "omitempty" || opts == "omitzero" {
			set.optional = append(set.optional, name)
		} else {
			set.names = append(set.names, name)
		}
	}
	sort.Strings(set.names)
	sort.Strings(set.optional)
	set.all = append(append(set.all, set.names...), set.optional...)
	fieldSets.Store(t, set)
	return set
}

// decodeObject decodes data, which must be exactly one JSON object, into the
// struct v points to. Keys must match the struct's json names exactly (case
// included), appear once, and all be present (but for omitempty ones) and
// non-null (strictjson.ObjectOptional); each value must decode into its field's type.
// Errors name the field.
func decodeObject(data []byte, v any) error {
	sv := reflect.ValueOf(v).Elem()
	fields := jsonFields(sv.Type())
	members, err := strictjson.ObjectOptional(data, fields.names, fields.optional)
	if err != nil {
		return objectError(err)
	}
	for _, key := range fields.all {
		raw, ok := members[key]
		if !ok {
			continue // an absent optional field
		}
		fv := sv.Field(fields.index[key])
		if err := json.Unmarshal(raw, fv.Addr().Interface()); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return malformed(ErrInvalid, "%s: JSON %s does not fit %s", key, te.Value, te.Type)
			}
			return malformed(ErrInvalid, "%s: %v", key, err)
		}
	}
	return nil
}

// objectError maps a strictjson.Object error to this package's errors.
func objectError(err error) error {
	var fe *strictjson.FieldError
	switch {
	case errors.As(err, &fe) && fe.Kind == strictjson.ErrUnknownField:
		return malformed(ErrUnknownField, "%q", fe.Field)
	case errors.As(err, &fe) && fe.Kind == strictjson.ErrDuplicateField:
		return malformed(ErrDuplicateField, "%q", fe.Field)
	case errors.As(err, &fe) && fe.Kind == strictjson.ErrNullField:
		return malformed(ErrMissingField, "%q is null", fe.Field)
	case errors.As(err, &fe):
		return malformed(ErrMissingField, "%q", fe.Field)
	case errors.Is(err, strictjson.ErrTrailingData):
		return malformed(ErrTrailingData, "after the JSON object")
	default: // ErrSyntax, ErrNotObject
		return malformed(ErrInvalid, "%v", err)
	}
}
