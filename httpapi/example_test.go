package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

// The handler over an in-memory engine, served by httptest: seed a key
// through the admin API, then list the keystore's kids.
func ExampleNew() {
	e := engine.New(memory.New())
	defer e.Close()
	h := httpapi.New(e, httpapi.Options{
		AdminToken: "example-admin-token",
		Logger:     slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	call := func(method, path, body string) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer example-admin-token")
		res, err := srv.Client().Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(res.StatusCode, " ", string(b))
	}
	call("POST", "/v1/admin/keystore/seed", `{"kid":"k1","secret_hex":"`+strings.Repeat("ab", 32)+`"}`)
	call("GET", "/v1/admin/keystore/kids", "")
	// Output:
	// 200 {"outcome":"seeded","kid":"k1","current_kid":"k1","same_secret":null}
	// 200 {"partitions":[{"partition":0,"current_kid":"k1","verifying":[]}]}
}

// Serving the metrics on a separate, private mux instead of the API's own
// /metrics route.
func ExampleHandler_Metrics() {
	e := engine.New(memory.New())
	defer e.Close()
	h := httpapi.New(e, httpapi.Options{Logger: slog.New(slog.DiscardHandler), DisableMetricsRoute: true})
	api := httptest.NewServer(h)
	defer api.Close()
	private := http.NewServeMux()
	private.Handle("GET /metrics", h.Metrics())
	ops := httptest.NewServer(private)
	defer ops.Close()

	for _, u := range []string{api.URL + "/healthz", api.URL + "/metrics"} {
		res, err := api.Client().Get(u)
		if err != nil {
			log.Fatal(err)
		}
		res.Body.Close()
		fmt.Println(res.StatusCode, strings.TrimPrefix(u, api.URL))
	}
	res, err := ops.Client().Get(ops.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	fmt.Println(res.Header.Get("Content-Type"))
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "ff_http_requests_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// 200 /healthz
	// 404 /metrics
	// text/plain; version=0.0.4; charset=utf-8
	// ff_http_requests_total{outcome="ok",route="healthz"} 1
	// ff_http_requests_total{outcome="route_not_found",route="not_found"} 1
}
