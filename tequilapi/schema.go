package tequilapi

import (
	"encoding"
	"encoding/json"
	"math/big"
	"reflect"
	"time"
)

// Schema is an OpenAPI 3.0 schema object (the subset this API uses).
type Schema struct {
	// Type is the JSON type: object, array, string, integer, number, boolean.
	Type string `json:"type,omitempty"`
	// Format refines Type (int64, date-time, byte).
	Format string `json:"format,omitempty"`
	// Description explains the value (from a `doc` struct tag).
	Description string `json:"description,omitempty"`
	// Properties are an object's fields.
	Properties map[string]*Schema `json:"properties,omitempty"`
	// Required lists the object fields that must be present.
	Required []string `json:"required,omitempty"`
	// Items is the schema of an array's elements.
	Items *Schema `json:"items,omitempty"`
	// AdditionalProperties is false for structs, a *Schema for maps.
	AdditionalProperties any `json:"additionalProperties,omitempty"`
	// Ref points to a schema in the document's components.
	Ref string `json:"$ref,omitempty"`
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	durationType      = reflect.TypeFor[time.Duration]()
	bigIntType        = reflect.TypeFor[big.Int]()
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// SchemaOf derives the OpenAPI schema of v's type from its Go type and json
// tags, as encoding/json would encode it: fields without omitempty are
// required, a `doc:"..."` tag becomes the description, unknown properties
// are not allowed. nil gives nil.
func SchemaOf(v any) *Schema {
	if v == nil {
		return nil
	}
	return schemaOfType(reflect.TypeOf(v), 0)
}

func schemaOfType(t reflect.Type, depth int) *Schema {
	if depth > 16 {
		return &Schema{Description: "recursive"}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType:
		return &Schema{Type: "string", Format: "date-time"}
	case durationType:
		return &Schema{Type: "integer", Format: "int64", Description: "nanoseconds"}
	case bigIntType:
		return &Schema{Type: "integer", Description: "arbitrary-precision integer"}
	case rawMessageType:
		return &Schema{}
	}
	if t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType) {
		return &Schema{Type: "string"}
	}
	switch t.Kind() {
	case reflect.String:
		return &Schema{Type: "string"}
	case reflect.Bool:
		return &Schema{Type: "boolean"}
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64:
		return &Schema{Type: "integer", Format: "int64"}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return &Schema{Type: "integer", Format: "int32"}
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &Schema{Type: "string", Format: "byte"}
		}
		return &Schema{Type: "array", Items: schemaOfType(t.Elem(), depth+1)}
	case reflect.Map:
		return &Schema{Type: "object", AdditionalProperties: schemaOfType(t.Elem(), depth+1)}
	case reflect.Struct:
		s := &Schema{Type: "object", Properties: map[string]*Schema{}, AdditionalProperties: false}
		for _, f := range jsonFields(t) {
			ps := schemaOfType(f.typ, depth+1)
			if f.doc != "" {
				cp := *ps
				cp.Description = f.doc
				ps = &cp
			}
			s.Properties[f.name] = ps
			if f.required {
				s.Required = append(s.Required, f.name)
			}
		}
		return s
	default:
		return &Schema{}
	}
}
