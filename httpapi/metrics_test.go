package httpapi

// Tests of the metrics and of their text exposition: a strict parser of the
// Prometheus text format 0.0.4 (package expotest) reads every scrape, so a malformed
// line, a sample before its TYPE, an unknown escape or a histogram whose
// buckets are not cumulative fails the test, not only a missing substring.
//
// No label carries HTTP caller input: route is one of the handler's route
// names, outcome an error code or an outcome constant, reason a token
// failure reason. Codes and reasons come from *contracts.Error values,
// which a third-party driver may build, so TestMetricsEscapeHostileLabel
// puts hostile values into a series directly and checks they are escaped.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/expo/expotest"
)

const testAdmin = "metrics-test-admin-token"

func newTestHandler(t *testing.T, opts Options) *Handler {
	t.Helper()
	e := engine.New(memory.New())
	t.Cleanup(func() { _ = e.Close() })
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return New(e, opts)
}

// call serves one request and returns the recorder.
func call(h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// scrape GETs /metrics through h, checks the status and content type and
// parses the body strictly.
func scrape(t *testing.T, h http.Handler) *expotest.Exposition {
	t.Helper()
	w := call(h, http.MethodGet, "/metrics", "", "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		t.Fatalf("Content-Length = %q for %d bytes", cl, w.Body.Len())
	}
	x, err := expotest.Parse(w.Body.Bytes())
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, w.Body)
	}
	return x
}

func TestMetricsScrape(t *testing.T) {
	h := newTestHandler(t, Options{AdminToken: testAdmin})
	partitions := h.e.Capabilities().Partitions
	secret := strings.Repeat("ab", 32)

	want := map[string]int{} // "route outcome" -> requests
	do := func(wantStatus int, route, outcome, method, path, token, body string) {
		t.Helper()
		if w := call(h, method, path, token, body); w.Code != wantStatus {
			t.Fatalf("%s %s = %d, want %d: %s", method, path, w.Code, wantStatus, w.Body)
		}
		want[route+" "+outcome]++
	}
	for range 3 {
		do(200, "healthz", "ok", "GET", "/healthz", "", "")
	}
	do(200, "seed", "ok", "POST", "/v1/admin/keystore/seed", testAdmin, `{"kid":"k1","secret_hex":"`+secret+`"}`)
	do(401, "seed", CodeUnauthorized, "POST", "/v1/admin/keystore/seed", "wrong", `{}`)
	do(200, "rotate_all", "ok", "POST", "/v1/admin/keystore/rotate", testAdmin, `{"new_kid":"k2","new_secret_hex":"`+strings.Repeat("cd", 32)+`"}`)
	do(200, "rotate_all", "ok", "POST", "/v1/admin/keystore/rotate", testAdmin, `{"new_kid":"k2","new_secret_hex":"`+strings.Repeat("ef", 32)+`"}`)
	for range 2 {
		do(401, "deliver_signal", contracts.CodeInvalidToken, "POST", "/v1/executions/e1/waitpoints/w1/signals", "not-a-token", `{"name":"n"}`)
	}
	do(405, "method_not_allowed", CodeMethodNotAllowed, "POST", "/metrics", "", "")
	do(404, "not_found", CodeRouteNotFound, "GET", "/nope", "", "")

	x := scrape(t, h)
	if y := scrape(t, h); !expotest.Equal(x, y) {
		t.Fatalf("a scrape changed the metrics: it must not be counted")
	}

	// Every family is there, with its HELP and TYPE.
	for name, typ := range map[string]string{
		"ff_http_requests_total":               "counter",
		"ff_http_request_duration_seconds":     "histogram",
		"ff_token_verification_failures_total": "counter",
		"ff_rotations_total":                   "counter",
		"ff_keystore_changes_total":            "counter",
	} {
		f := x.Families[name]
		if f == nil || f.Type != typ || f.Help == "" {
			t.Fatalf("family %s: %+v, want TYPE %s and a HELP", name, f, typ)
		}
	}
	if got := x.Families["ff_http_requests_total"].Help; got != "HTTP requests by route and outcome (ok or the error code)." {
		t.Errorf("help = %q", got)
	}
	if got := x.Order; fmt.Sprint(got) != "[ff_http_request_duration_seconds ff_http_requests_total ff_keystore_changes_total ff_rotations_total ff_token_verification_failures_total]" {
		t.Errorf("families in order %v, want sorted by name", got)
	}

	// Counters: exactly one increment per request.
	total := 0
	for key, n := range want {
		route, outcome, _ := strings.Cut(key, " ")
		total += n
		if got := x.Value(t, "ff_http_requests_total", "outcome", outcome, "route", route); got != float64(n) {
			t.Errorf("requests{route=%s,outcome=%s} = %v, want %d", route, outcome, got, n)
		}
	}
	if got := len(x.Samples("ff_http_requests_total")); got != len(want) {
		t.Errorf("%d request series, want %d", got, len(want))
	}
	if got := x.Value(t, "ff_token_verification_failures_total", "reason", contracts.ReasonMalformed); got != 2 {
		t.Errorf("token failures{malformed} = %v, want 2", got)
	}
	if got := x.Value(t, "ff_rotations_total", "outcome", contracts.RotateRotated); got != float64(partitions) {
		t.Errorf("rotations{rotated} = %v, want %d", got, partitions)
	}
	if got := x.Value(t, "ff_rotations_total", "outcome", contracts.CodeRotationConflict); got != float64(partitions) {
		t.Errorf("rotations{rotation_conflict} = %v, want %d", got, partitions)
	}
	// Keystore changes: one per call that reached the Engine (the
	// unauthorized seed did not).
	for _, c := range []struct{ op, outcome string }{
		{"seed", contracts.SeedSeeded}, {"rotate_all", contracts.RotateRotated}, {"rotate_all", contracts.CodeRotationConflict},
	} {
		if got := x.Value(t, "ff_keystore_changes_total", "op", c.op, "outcome", c.outcome); got != 1 {
			t.Errorf("keystore_changes{%s,%s} = %v, want 1", c.op, c.outcome, got)
		}
	}
	if got := len(x.Samples("ff_keystore_changes_total")); got != 3 {
		t.Errorf("%d keystore change series, want 3", got)
	}

	// Histogram: the fixed buckets, cumulative, ending in +Inf; _count is
	// the request count of the same labels, and all of them add up.
	wantLe := []string{"0.0001", "0.00025", "0.000625", "0.0015625", "0.00390625", "0.009765625", "0.0244140625",
		"0.06103515625", "0.152587890625", "0.3814697265625", "0.95367431640625", "2.384185791015625", "+Inf"}
	counted := 0.0
	for _, s := range x.Samples("ff_http_request_duration_seconds_count") {
		outcome, route := s.Labels["outcome"], s.Labels["route"]
		if len(s.Labels) != 2 {
			t.Errorf("_count labels %v", s.Labels)
		}
		req := x.Value(t, "ff_http_requests_total", "outcome", outcome, "route", route)
		if s.Value != req {
			t.Errorf("latency_count{%s,%s} = %v, requests = %v", outcome, route, s.Value, req)
		}
		counted += s.Value
		var les []string
		prev := 0.0
		for _, b := range x.Samples("ff_http_request_duration_seconds_bucket") {
			if b.Labels["outcome"] != outcome || b.Labels["route"] != route {
				continue
			}
			les = append(les, b.Labels["le"])
			if b.Value < prev {
				t.Errorf("bucket le=%s of {%s,%s} = %v below the one before, %v", b.Labels["le"], outcome, route, b.Value, prev)
			}
			prev = b.Value
		}
		if fmt.Sprint(les) != fmt.Sprint(wantLe) {
			t.Errorf("buckets of {%s,%s}: le %v, want %v", outcome, route, les, wantLe)
		}
		if prev != s.Value {
			t.Errorf("+Inf bucket of {%s,%s} = %v, _count = %v", outcome, route, prev, s.Value)
		}
		if sum := x.Value(t, "ff_http_request_duration_seconds_sum", "outcome", outcome, "route", route); !(sum > 0) {
			t.Errorf("_sum of {%s,%s} = %v", outcome, route, sum)
		}
	}
	if counted != float64(total) {
		t.Errorf("histogram counts %v requests, want %d", counted, total)
	}
}

// The label order and exact lines are what client_golang wrote: dashboards
// and the integration tests match them.
func TestMetricsLines(t *testing.T) {
	h := newTestHandler(t, Options{})
	call(h, "GET", "/healthz", "", "")
	body := call(h, "GET", "/metrics", "", "").Body.String()
	for _, line := range []string{
		"# HELP ff_http_request_duration_seconds HTTP request latency by route and outcome.\n# TYPE ff_http_request_duration_seconds histogram\n",
		"\nff_http_request_duration_seconds_bucket{outcome=\"ok\",route=\"healthz\",le=\"+Inf\"} 1\nff_http_request_duration_seconds_sum{outcome=\"ok\",route=\"healthz\"} ",
		"\nff_http_request_duration_seconds_count{outcome=\"ok\",route=\"healthz\"} 1\n# HELP ff_http_requests_total ",
		"\n# TYPE ff_http_requests_total counter\nff_http_requests_total{outcome=\"ok\",route=\"healthz\"} 1\n",
	} {
		if !strings.Contains(body, line) {
			t.Errorf("exposition lacks %q:\n%s", line, body)
		}
	}
	// Families without a series are left out, as client_golang did.
	if strings.Contains(body, "ff_rotations_total") || strings.Contains(body, "ff_token_verification_failures_total") {
		t.Errorf("empty families are listed:\n%s", body)
	}
	if !strings.HasSuffix(body, "\n") {
		t.Errorf("exposition does not end in a newline")
	}
}

func TestMetricsEmpty(t *testing.T) {
	h := newTestHandler(t, Options{})
	if x := scrape(t, h); len(x.Order) != 0 {
		t.Fatalf("a fresh handler lists %v", x.Order)
	}
}

func TestMetricsEscapeHostileLabel(t *testing.T) {
	h := newTestHandler(t, Options{})
	hostile := "a\\b\"c\nd} 1\n# TYPE x counter\ne=\"f\"\\n\xff"
	h.metrics.rotations.Inc(hostile)
	h.metrics.rotations.Inc(hostile)
	h.metrics.tokenFailure.Inc(`\`)
	h.metrics.observeRequest(`"`, "\n", time.Millisecond)

	body := call(h, "GET", "/metrics", "", "").Body.String()
	wantLine := `ff_rotations_total{outcome="a\\b\"c\nd} 1\n# TYPE x counter\ne=\"f\"\\n` + "\uFFFD" + `"} 2` + "\n"
	if !strings.Contains(body, wantLine) {
		t.Fatalf("exposition lacks %q:\n%s", wantLine, body)
	}
	x := scrape(t, h)
	if got := x.Value(t, "ff_rotations_total", "outcome", strings.ToValidUTF8(hostile, "\uFFFD")); got != 2 {
		t.Errorf("hostile series = %v, want 2", got)
	}
	if got := x.Value(t, "ff_token_verification_failures_total", "reason", `\`); got != 1 {
		t.Errorf(`reason="\\" = %v, want 1`, got)
	}
	if got := x.Value(t, "ff_http_request_duration_seconds_count", "outcome", "\n", "route", `"`); got != 1 {
		t.Errorf("escaped histogram series count = %v, want 1", got)
	}
	if len(x.Families) != 4 {
		t.Errorf("families %v: a label value injected a line", x.Order)
	}
}

func TestMetricsConcurrent(t *testing.T) {
	h := newTestHandler(t, Options{})
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	scraped := make(chan error, 1)
	go func() { // scrape while observations happen; every scrape must parse
		defer close(scraped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			w := call(h, "GET", "/metrics", "", "")
			x, err := expotest.Parse(w.Body.Bytes())
			if err == nil {
				err = x.CheckHistograms()
			}
			if err != nil {
				scraped <- err
				return
			}
		}
	}()
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				h.metrics.observeRequest(fmt.Sprint("route", i%3), fmt.Sprint("outcome", g%2), time.Duration(i)*time.Microsecond)
				h.metrics.observeError(contracts.ErrTokenMalformed.With("x"))
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-scraped; err != nil {
		t.Fatalf("a scrape during observations: %v", err)
	}
	x := scrape(t, h)
	var total float64
	for _, s := range x.Samples("ff_http_requests_total") {
		total += s.Value
	}
	if total != goroutines*each {
		t.Errorf("requests total %v, want %d", total, goroutines*each)
	}
	if got := x.Value(t, "ff_token_verification_failures_total", "reason", "malformed"); got != goroutines*each {
		t.Errorf("token failures %v, want %d", got, goroutines*each)
	}
	perGoroutine := 0 // observations of route1 by one goroutine
	for i := range each {
		if i%3 == 1 {
			perGoroutine++
		}
	}
	if got := x.Value(t, "ff_http_request_duration_seconds_count", "outcome", "outcome0", "route", "route1"); got != float64(goroutines/2*perGoroutine) {
		t.Errorf("count{outcome0,route1} = %v, want %d", got, goroutines/2*perGoroutine)
	}
}

// The hot path allocates nothing once a series exists.
func TestObserveRequestDoesNotAllocate(t *testing.T) {
	m := newMetrics()
	m.observeRequest("healthz", "ok", time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { m.observeRequest("healthz", "ok", time.Millisecond) }); n != 0 {
		t.Fatalf("observeRequest allocates %v times", n)
	}
}

func TestMetricsHandlerAndDisabledRoute(t *testing.T) {
	h := newTestHandler(t, Options{DisableMetricsRoute: true})
	w := call(h, "GET", "/metrics", "", "")
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `"code":"route_not_found"`) {
		t.Fatalf("disabled /metrics = %d %s", w.Code, w.Body)
	}
	m := h.Metrics()
	x := scrape(t, m) // any path: the handler serves only metrics
	if got := x.Value(t, "ff_http_requests_total", "outcome", CodeRouteNotFound, "route", "not_found"); got != 1 {
		t.Errorf("not_found requests = %v, want 1", got)
	}
	if w := call(m, "HEAD", "/metrics", "", ""); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD = %d, %d bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
	w = call(m, "DELETE", "/metrics", "", "")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET" || !strings.Contains(w.Body.String(), `"code":"method_not_allowed"`) {
		t.Errorf("DELETE = %d Allow %q %s", w.Code, w.Header().Get("Allow"), w.Body)
	}
	var b bytes.Buffer
	if err := h.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := expotest.Parse(b.Bytes()); err != nil || !strings.Contains(b.String(), `route="method_not_allowed"`) {
		t.Errorf("WriteMetrics: %v\n%s", err, b.String())
	}
	if err := h.WriteMetrics(failingWriter{}); err == nil {
		t.Errorf("WriteMetrics hides the writer's error")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("write failed") }

var _ io.Writer = failingWriter{}
