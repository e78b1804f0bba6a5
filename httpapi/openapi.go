package httpapi

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// openAPIDocument is the API's OpenAPI 3.1 description: every route of
// Routes, its request and answer bodies (the envelopes of docs/spec.md §7)
// and its status codes.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the API's OpenAPI 3.1 document, as GET /openapi.json
// serves it (compacted there).
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// openAPI is GET /openapi.json: the document, without authorization.
func (h *Handler) openAPI(*http.Request) (any, error) { return json.RawMessage(openAPIDocument), nil }
