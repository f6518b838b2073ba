package tequilapi

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// OpenAPIVersion is the OpenAPI version of the served document.
const OpenAPIVersion = "3.0.3"

// Document is an OpenAPI 3 document (the subset this API uses).
type Document struct {
	// OpenAPI is the OpenAPI version.
	OpenAPI string `json:"openapi"`
	// Info has title, description and version.
	Info map[string]string `json:"info"`
	// Servers lists base URLs (empty: same origin).
	Servers []map[string]string `json:"servers,omitempty"`
	// Paths maps path → lower-case method → operation.
	Paths map[string]map[string]*DocOp `json:"paths"`
	// Components holds shared schemas and security schemes.
	Components map[string]map[string]any `json:"components"`
	// Security is the default requirement (bearer token).
	Security []map[string][]string `json:"security"`
}

// DocOp is one operation in the document.
type DocOp struct {
	// OperationID is unique per operation.
	OperationID string `json:"operationId"`
	// Summary is a one-line description.
	Summary string `json:"summary,omitempty"`
	// Tags group operations.
	Tags []string `json:"tags,omitempty"`
	// Parameters are the path parameters.
	Parameters []DocParam `json:"parameters,omitempty"`
	// RequestBody is the JSON body, if any.
	RequestBody *DocBody `json:"requestBody,omitempty"`
	// Responses maps status code to response.
	Responses map[string]DocResponse `json:"responses"`
	// Security, when set to an empty list, marks a public route.
	Security *[]map[string][]string `json:"security,omitempty"`
}

// DocParam is a path parameter.
type DocParam struct {
	// Name is the parameter name.
	Name string `json:"name"`
	// In is where it is ("path").
	In string `json:"in"`
	// Required is true for path parameters.
	Required bool `json:"required"`
	// Schema is the value schema.
	Schema *Schema `json:"schema"`
}

// DocBody is a JSON request body.
type DocBody struct {
	// Required says the body must be present.
	Required bool `json:"required"`
	// Content maps media type to {"schema": ...}.
	Content map[string]map[string]*Schema `json:"content"`
}

// DocResponse is one response.
type DocResponse struct {
	// Description is the status text.
	Description string `json:"description"`
	// Content maps media type to {"schema": ...}.
	Content map[string]map[string]*Schema `json:"content,omitempty"`
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// OpenAPI builds the document from the registered routes.
func (s *Server) OpenAPI() *Document {
	doc := &Document{
		OpenAPI: OpenAPIVersion,
		Info:    map[string]string{"title": "Tequilapi", "description": "openmyst node REST API", "version": s.cfg.Version},
		Paths:   map[string]map[string]*DocOp{},
		Components: map[string]map[string]any{
			"schemas":         {"Error": SchemaOf(ErrorResponse{})},
			"securitySchemes": {"bearerAuth": map[string]string{"type": "http", "scheme": "bearer"}},
		},
		Security: []map[string][]string{{"bearerAuth": {}}},
	}
	errRef := map[string]map[string]*Schema{"application/json": {"schema": &Schema{Ref: "#/components/schemas/Error"}}}
	for _, rt := range s.Routes() {
		path := strings.ReplaceAll(strings.ReplaceAll(rt.Path, "...}", "}"), "{$}", "")
		ops := doc.Paths[path]
		if ops == nil {
			ops = map[string]*DocOp{}
			doc.Paths[path] = ops
		}
		op := &DocOp{
			OperationID: operationID(rt.Method, path),
			Summary:     rt.Op.Summary,
			Tags:        rt.Op.Tags,
			Responses:   map[string]DocResponse{},
		}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			if m[1] == "$" {
				continue
			}
			op.Parameters = append(op.Parameters, DocParam{Name: m[1], In: "path", Required: true, Schema: &Schema{Type: "string"}})
		}
		errs := map[int]bool{http.StatusInternalServerError: true}
		if rt.Op.Request != nil {
			op.RequestBody = &DocBody{Required: true, Content: map[string]map[string]*Schema{"application/json": {"schema": SchemaOf(rt.Op.Request)}}}
			errs[http.StatusBadRequest] = true
			errs[http.StatusRequestEntityTooLarge] = true
		}
		if rt.Public {
			op.Security = &[]map[string][]string{}
		} else {
			errs[http.StatusUnauthorized] = true
		}
		for _, c := range rt.Op.Errors {
			errs[c] = true
		}
		status := rt.Op.Status
		if status == 0 {
			status = http.StatusOK
		}
		ok := DocResponse{Description: http.StatusText(status)}
		if rt.Op.ContentType != "" {
			ok.Content = map[string]map[string]*Schema{rt.Op.ContentType: {"schema": &Schema{Type: "string"}}}
		} else if rt.Op.Response != nil {
			ok.Content = map[string]map[string]*Schema{"application/json": {"schema": SchemaOf(rt.Op.Response)}}
		}
		op.Responses[strconv.Itoa(status)] = ok
		for c := range errs {
			op.Responses[strconv.Itoa(c)] = DocResponse{Description: http.StatusText(c), Content: errRef}
		}
		ops[strings.ToLower(rt.Method)] = op
	}
	return doc
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.Split(path, "/") {
		part = strings.Trim(part, "{}.$")
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

func (s *Server) openAPIRoute() Route {
	return Route{
		Method: http.MethodGet, Path: "/openapi.json", Public: true,
		Op: Operation{Summary: "This OpenAPI 3 document", Tags: []string{"node"}, Response: Document{}},
		Handler: func(w http.ResponseWriter, _ *http.Request) {
			WriteJSON(w, http.StatusOK, s.OpenAPI())
		},
	}
}
