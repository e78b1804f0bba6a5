package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// A request that fails with a 5xx is logged at ERROR (or WARN when a retry
// may fix it) with the contract's detail; other requests stay at INFO
// without one.
func TestFailuresAreLoggedWithTheirCause(t *testing.T) {
	var logs bytes.Buffer
	e := engine.New(memory.New())
	h := New(e, Options{AdminToken: testAdmin, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})

	require.Equal(t, http.StatusNotFound, call(h, http.MethodGet, "/v1/admin/executions/x/signals", testAdmin, "").Code)
	require.NoError(t, e.Close())
	require.Equal(t, http.StatusServiceUnavailable, call(h, http.MethodGet, "/v1/admin/keystore/kids", testAdmin, "").Code)

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	require.Len(t, lines, 2)
	require.Equal(t, "INFO", lines[0]["level"], "a 404 is the caller's business")
	require.NotContains(t, lines[0], "error")
	require.Equal(t, "ERROR", lines[1]["level"], "a closed backend needs an operator")
	require.Equal(t, contracts.CodeBackendClosed, lines[1]["outcome"])
	require.Equal(t, "the memory backend is closed", lines[1]["error"])
	require.Equal(t, false, lines[1]["retryable"])
	require.Equal(t, slog.LevelWarn, failureLevel(contracts.ErrBackendUnreachable.With("x")), "a retryable failure is a warning")
}
