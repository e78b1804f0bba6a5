package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

// MetricsOnly serves GET /metrics and answers every other path (the API's
// included) 404 route_not_found with an envelope; with
// DisableMetricsRoute the API's own /metrics is off.
func TestMetricsOnly(t *testing.T) {
	e := engine.New(memory.New())
	defer e.Close()
	h := httpapi.New(e, httpapi.Options{Logger: slog.New(slog.DiscardHandler), DisableMetricsRoute: true})
	api := httptest.NewServer(h)
	defer api.Close()
	private := httptest.NewServer(h.MetricsOnly())
	defer private.Close()

	get := func(base, path string) (int, string, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(b)
	}
	if code, _, _ := get(api.URL, "/healthz"); code != http.StatusOK {
		t.Fatalf("API /healthz: %d", code)
	}
	if code, _, _ := get(api.URL, "/metrics"); code != http.StatusNotFound {
		t.Fatalf("API /metrics with DisableMetricsRoute: %d, want 404", code)
	}
	code, ctype, body := get(private.URL, "/metrics")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain; version=0.0.4") ||
		!strings.Contains(body, `ff_http_requests_total{outcome="ok",route="healthz"} 1`) {
		t.Fatalf("private /metrics: %d %s\n%s", code, ctype, body)
	}
	for _, path := range []string{"/healthz", "/readyz", "/v1/admin/keystore/kids", "/metrics/x", "/"} {
		code, _, body := get(private.URL, path)
		var env contracts.ErrorEnvelope
		if code != http.StatusNotFound || json.Unmarshal([]byte(body), &env) != nil || env.Error == nil || env.Error.Code != httpapi.CodeRouteNotFound {
			t.Errorf("private %s: %d %s; want 404 route_not_found", path, code, body)
		}
	}
	res, err := http.Post(private.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST private /metrics: %d, want 405", res.StatusCode)
	}
}
