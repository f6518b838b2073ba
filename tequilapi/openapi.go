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
	OpenAPI    string                       `json:"openapi"`
	Info       map[string]string            `json:"info"`
	Servers    []map[string]string          `json:"servers,omitempty"`
	Paths      map[string]map[string]*DocOp `json:"paths"`
	Components map[string]map[string]any    `json:"components"`
	Security   []map[string][]string        `json:"security"`
}

// DocOp is one operation in the document.
type DocOp struct {
	OperationID string                 `json:"operationId"`
	Summary     string                 `json:"summary,omitempty"`
	Tags        []string               `json:"tags,omitempty"`
	Parameters  []DocParam             `json:"parameters,omitempty"`
	RequestBody *DocBody               `json:"requestBody,omitempty"`
	Responses   map[string]DocResponse `json:"responses"`
	Security    *[]map[string][]string `json:"security,omitempty"`
}

// DocParam is a path parameter.
type DocParam struct {
	Name     string  `json:"name"`
	In       string  `json:"in"`
	Required bool    `json:"required"`
	Schema   *Schema `json:"schema"`
}

// DocBody is a JSON request body.
type DocBody struct {
	Required bool                          `json:"required"`
	Content  map[string]map[string]*Schema `json:"content"`
}

// DocResponse is one response.
type DocResponse struct {
	Description string                        `json:"description"`
	Content     map[string]map[string]*Schema `json:"content,omitempty"`
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
		path := strings.ReplaceAll(rt.Path, "...}", "}")
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
		if rt.Op.Response != nil {
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
