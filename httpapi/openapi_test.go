package httpapi_test

// Tests that the OpenAPI document and the router agree, route for route.
// The document's schemas are checked against real answers in
// internal/integration/openapi (kin-openapi), and linted by scripts/test.sh
// (redocly): this module takes no dependency for either.

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
	"github.com/stretchr/testify/require"
)

// openAPIDoc is the part of the document these tests read.
type openAPIDoc struct {
	OpenAPI string                                 `json:"openapi"`
	Paths   map[string]map[string]openAPIOperation `json:"paths"`
}

type openAPIOperation struct {
	OperationID string                `json:"operationId"`
	Security    []map[string][]string `json:"security"`
	Responses   map[string]any        `json:"responses"`
}

func readOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(httpapi.OpenAPI(), &doc))
	return doc
}

// TestOpenAPIDocumentsEveryRoute: every route of httpapi.Routes (the list
// the router registers) is an operation of the document with the route's
// name as operationId and the route's credential as security, and the
// document has no operation the router does not serve.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := readOpenAPI(t)
	require.Equal(t, "3.1.0", doc.OpenAPI)
	scheme := map[httpapi.Auth]string{httpapi.AuthAdmin: "adminToken", httpapi.AuthWaitpointToken: "waitpointToken"}
	documented := 0
	for _, ops := range doc.Paths {
		documented += len(ops)
	}
	require.Len(t, httpapi.Routes(), documented, "the document and httpapi.Routes list different numbers of operations")
	for _, rt := range httpapi.Routes() {
		t.Run(rt.Name, func(t *testing.T) {
			op, ok := doc.Paths[rt.Pattern][strings.ToLower(rt.Method)]
			require.True(t, ok, "httpapi/openapi.json lacks %s %s", rt.Method, rt.Pattern)
			require.Equal(t, rt.Name, op.OperationID)
			if rt.Auth == httpapi.AuthNone {
				require.Empty(t, op.Security, "a route without credentials has security: []")
			} else {
				require.Equal(t, []map[string][]string{{scheme[rt.Auth]: {}}}, op.Security)
			}
			require.Contains(t, op.Responses, "200")
			if rt.Auth == httpapi.AuthAdmin {
				for _, s := range []string{"401", "403"} {
					require.Contains(t, op.Responses, s, "an admin route answers %s", s)
				}
			}
		})
	}
}

// TestOpenAPIServed: GET /openapi.json serves the embedded document
// (compacted) without authorization, also on a handler without an admin
// token; other methods answer 405.
func TestOpenAPIServed(t *testing.T) {
	e := engine.New(memory.New())
	t.Cleanup(func() { _ = e.Close() })
	h := httpapi.New(e, httpapi.Options{Logger: slog.New(slog.DiscardHandler)})

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, httpapi.OpenAPI()))
	require.Equal(t, compact.String(), strings.TrimSuffix(w.Body.String(), "\n"))

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/openapi.json", nil))
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
	require.Equal(t, "GET", w.Header().Get("Allow"))
}

// TestRoutesAreUnique: no two routes share a method and pattern or a name.
func TestRoutesAreUnique(t *testing.T) {
	var keys, names []string
	for _, rt := range httpapi.Routes() {
		keys = append(keys, rt.Method+" "+rt.Pattern)
		names = append(names, rt.Name)
		require.Contains(t, []string{http.MethodGet, http.MethodPost}, rt.Method)
		require.True(t, strings.HasPrefix(rt.Pattern, "/"), rt.Pattern)
	}
	for _, l := range [][]string{keys, names} {
		s := slices.Clone(l)
		slices.Sort(s)
		require.Equal(t, len(s), len(slices.Compact(s)), "duplicates in %v", l)
	}
}
