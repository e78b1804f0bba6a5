package httpapi

// Tests of the metrics and of their text exposition: a strict parser of the
// Prometheus text format 0.0.4 (below) reads every scrape, so a malformed
// line, a sample before its TYPE, an unknown escape or a histogram whose
// buckets are not cumulative fails the test, not only a missing substring.
//
// No label carries HTTP caller input: route is one of the handler's route
// names, outcome an error code or an outcome constant, reason a token
// failure reason. Codes and reasons come from *contracts.Error values,
// which a third-party driver may build, so TestMetricsEscapeHostileLabel
// puts hostile values into a series directly and checks they are escaped.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
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
func scrape(t *testing.T, h http.Handler) *exposition {
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
	x, err := parseExposition(w.Body.Bytes())
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
	if y := scrape(t, h); !equalSamples(x, y) {
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
		f := x.families[name]
		if f == nil || f.typ != typ || f.help == "" {
			t.Fatalf("family %s: %+v, want TYPE %s and a HELP", name, f, typ)
		}
	}
	if got := x.families["ff_http_requests_total"].help; got != "HTTP requests by route and outcome (ok or the error code)." {
		t.Errorf("help = %q", got)
	}
	if got := x.order; fmt.Sprint(got) != "[ff_http_request_duration_seconds ff_http_requests_total ff_keystore_changes_total ff_rotations_total ff_token_verification_failures_total]" {
		t.Errorf("families in order %v, want sorted by name", got)
	}

	// Counters: exactly one increment per request.
	total := 0
	for key, n := range want {
		route, outcome, _ := strings.Cut(key, " ")
		total += n
		if got := x.value(t, "ff_http_requests_total", "outcome", outcome, "route", route); got != float64(n) {
			t.Errorf("requests{route=%s,outcome=%s} = %v, want %d", route, outcome, got, n)
		}
	}
	if got := len(x.samples("ff_http_requests_total")); got != len(want) {
		t.Errorf("%d request series, want %d", got, len(want))
	}
	if got := x.value(t, "ff_token_verification_failures_total", "reason", contracts.ReasonMalformed); got != 2 {
		t.Errorf("token failures{malformed} = %v, want 2", got)
	}
	if got := x.value(t, "ff_rotations_total", "outcome", contracts.RotateRotated); got != float64(partitions) {
		t.Errorf("rotations{rotated} = %v, want %d", got, partitions)
	}
	if got := x.value(t, "ff_rotations_total", "outcome", contracts.CodeRotationConflict); got != float64(partitions) {
		t.Errorf("rotations{rotation_conflict} = %v, want %d", got, partitions)
	}
	// Keystore changes: one per call that reached the Engine (the
	// unauthorized seed did not).
	for _, c := range []struct{ op, outcome string }{
		{"seed", contracts.SeedSeeded}, {"rotate_all", contracts.RotateRotated}, {"rotate_all", contracts.CodeRotationConflict},
	} {
		if got := x.value(t, "ff_keystore_changes_total", "op", c.op, "outcome", c.outcome); got != 1 {
			t.Errorf("keystore_changes{%s,%s} = %v, want 1", c.op, c.outcome, got)
		}
	}
	if got := len(x.samples("ff_keystore_changes_total")); got != 3 {
		t.Errorf("%d keystore change series, want 3", got)
	}

	// Histogram: the fixed buckets, cumulative, ending in +Inf; _count is
	// the request count of the same labels, and all of them add up.
	wantLe := []string{"0.0001", "0.00025", "0.000625", "0.0015625", "0.00390625", "0.009765625", "0.0244140625",
		"0.06103515625", "0.152587890625", "0.3814697265625", "0.95367431640625", "2.384185791015625", "+Inf"}
	counted := 0.0
	for _, s := range x.samples("ff_http_request_duration_seconds_count") {
		outcome, route := s.labels["outcome"], s.labels["route"]
		if len(s.labels) != 2 {
			t.Errorf("_count labels %v", s.labels)
		}
		req := x.value(t, "ff_http_requests_total", "outcome", outcome, "route", route)
		if s.value != req {
			t.Errorf("latency_count{%s,%s} = %v, requests = %v", outcome, route, s.value, req)
		}
		counted += s.value
		var les []string
		prev := 0.0
		for _, b := range x.samples("ff_http_request_duration_seconds_bucket") {
			if b.labels["outcome"] != outcome || b.labels["route"] != route {
				continue
			}
			les = append(les, b.labels["le"])
			if b.value < prev {
				t.Errorf("bucket le=%s of {%s,%s} = %v below the one before, %v", b.labels["le"], outcome, route, b.value, prev)
			}
			prev = b.value
		}
		if fmt.Sprint(les) != fmt.Sprint(wantLe) {
			t.Errorf("buckets of {%s,%s}: le %v, want %v", outcome, route, les, wantLe)
		}
		if prev != s.value {
			t.Errorf("+Inf bucket of {%s,%s} = %v, _count = %v", outcome, route, prev, s.value)
		}
		if sum := x.value(t, "ff_http_request_duration_seconds_sum", "outcome", outcome, "route", route); !(sum > 0) {
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
	if x := scrape(t, h); len(x.order) != 0 {
		t.Fatalf("a fresh handler lists %v", x.order)
	}
}

func TestMetricsEscapeHostileLabel(t *testing.T) {
	h := newTestHandler(t, Options{})
	hostile := "a\\b\"c\nd} 1\n# TYPE x counter\ne=\"f\"\\n\xff"
	h.metrics.rotations.inc(hostile)
	h.metrics.rotations.inc(hostile)
	h.metrics.tokenFailure.inc(`\`)
	h.metrics.observeRequest(`"`, "\n", time.Millisecond)

	body := call(h, "GET", "/metrics", "", "").Body.String()
	wantLine := `ff_rotations_total{outcome="a\\b\"c\nd} 1\n# TYPE x counter\ne=\"f\"\\n` + "\uFFFD" + `"} 2` + "\n"
	if !strings.Contains(body, wantLine) {
		t.Fatalf("exposition lacks %q:\n%s", wantLine, body)
	}
	x := scrape(t, h)
	if got := x.value(t, "ff_rotations_total", "outcome", strings.ToValidUTF8(hostile, "\uFFFD")); got != 2 {
		t.Errorf("hostile series = %v, want 2", got)
	}
	if got := x.value(t, "ff_token_verification_failures_total", "reason", `\`); got != 1 {
		t.Errorf(`reason="\\" = %v, want 1`, got)
	}
	if got := x.value(t, "ff_http_request_duration_seconds_count", "outcome", "\n", "route", `"`); got != 1 {
		t.Errorf("escaped histogram series count = %v, want 1", got)
	}
	if len(x.families) != 4 {
		t.Errorf("families %v: a label value injected a line", x.order)
	}
}

func TestHistogramBucketBoundaries(t *testing.T) {
	hv := newHistogramVec("h_seconds", "h.", exponentialBuckets(0.0001, 2.5, 12), "k")
	for _, v := range []float64{0, 0.0001, math.Nextafter(0.0001, 1), 0.00025, 2.384185791015625, 3, math.Inf(1)} {
		hv.observe(v, "x")
	}
	var b bytes.Buffer
	hv.writeTo(&b)
	x, err := parseExposition(b.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	wantCum := map[string]float64{"0.0001": 2, "0.00025": 4, "0.000625": 4, "2.384185791015625": 5, "+Inf": 7}
	for le, want := range wantCum {
		if got := x.value(t, "h_seconds_bucket", "k", "x", "le", le); got != want {
			t.Errorf("le=%s: %v, want %v", le, got, want)
		}
	}
	if got := x.value(t, "h_seconds_count", "k", "x"); got != 7 {
		t.Errorf("_count = %v", got)
	}
	if got := x.value(t, "h_seconds_sum", "k", "x"); !math.IsInf(got, 1) {
		t.Errorf("_sum = %v, want +Inf", got)
	}
	// The bounds are the float64 values client_golang's ExponentialBuckets
	// made, so the le labels are unchanged for existing dashboards.
	if fmt.Sprint(hv.les) != "[0.0001 0.00025 0.000625 0.0015625 0.00390625 0.009765625 0.0244140625 0.06103515625 0.152587890625 0.3814697265625 0.95367431640625 2.384185791015625 +Inf]" {
		t.Errorf("le = %v", hv.les)
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
			x, err := parseExposition(w.Body.Bytes())
			if err == nil {
				err = x.checkHistograms()
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
	for _, s := range x.samples("ff_http_requests_total") {
		total += s.value
	}
	if total != goroutines*each {
		t.Errorf("requests total %v, want %d", total, goroutines*each)
	}
	if got := x.value(t, "ff_token_verification_failures_total", "reason", "malformed"); got != goroutines*each {
		t.Errorf("token failures %v, want %d", got, goroutines*each)
	}
	perGoroutine := 0 // observations of route1 by one goroutine
	for i := range each {
		if i%3 == 1 {
			perGoroutine++
		}
	}
	if got := x.value(t, "ff_http_request_duration_seconds_count", "outcome", "outcome0", "route", "route1"); got != float64(goroutines/2*perGoroutine) {
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
	if got := x.value(t, "ff_http_requests_total", "outcome", CodeRouteNotFound, "route", "not_found"); got != 1 {
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
	if _, err := parseExposition(b.Bytes()); err != nil || !strings.Contains(b.String(), `route="method_not_allowed"`) {
		t.Errorf("WriteMetrics: %v\n%s", err, b.String())
	}
	if err := h.WriteMetrics(failingWriter{}); err == nil {
		t.Errorf("WriteMetrics hides the writer's error")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("write failed") }

var _ io.Writer = failingWriter{}

// A strict parser of the Prometheus text exposition format 0.0.4, for the
// subset the handler writes: HELP and TYPE before a family's samples,
// families contiguous and not repeated, no timestamps.

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type metricFamily struct {
	name, help, typ string
	samples         []sample
}

type exposition struct {
	families map[string]*metricFamily
	order    []string
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

func parseExposition(body []byte) (*exposition, error) {
	x := &exposition{families: map[string]*metricFamily{}}
	var cur *metricFamily
	sc := bufio.NewScanner(bytes.NewReader(body))
	if len(body) > 0 && body[len(body)-1] != '\n' {
		return nil, errors.New("body does not end in a newline")
	}
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fail := func(format string, a ...any) error {
			return fmt.Errorf("line %d %q: %s", n, line, fmt.Sprintf(format, a...))
		}
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, help, ok := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			if !ok || !metricNameRE.MatchString(name) {
				return nil, fail("bad HELP")
			}
			if x.families[name] != nil {
				return nil, fail("family %s repeated", name)
			}
			text, err := unescape(help, false)
			if err != nil {
				return nil, fail("%v", err)
			}
			cur = &metricFamily{name: name, help: text}
			x.families[name] = cur
			x.order = append(x.order, name)
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, ok := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			if !ok || cur == nil || cur.name != name || cur.typ != "" || len(cur.samples) > 0 {
				return nil, fail("TYPE not right after the family's HELP")
			}
			switch typ {
			case "counter", "histogram":
			default:
				return nil, fail("unexpected type %s", typ)
			}
			cur.typ = typ
		case line == "" || strings.HasPrefix(line, "#"):
			return nil, fail("unexpected line")
		default:
			s, err := parseSample(line)
			if err != nil {
				return nil, fail("%v", err)
			}
			if cur == nil || cur.typ == "" {
				return nil, fail("sample before its family's TYPE")
			}
			ok := false
			switch cur.typ {
			case "counter":
				ok = s.name == cur.name && strings.HasSuffix(s.name, "_total") && s.value >= 0
			case "histogram":
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					ok = ok || s.name == cur.name+suf
				}
				_, hasLe := s.labels["le"]
				ok = ok && hasLe == (s.name == cur.name+"_bucket")
			}
			if !ok {
				return nil, fail("sample does not belong to %s %s", cur.typ, cur.name)
			}
			cur.samples = append(cur.samples, s)
		}
	}
	for _, f := range x.families {
		if f.typ == "" || len(f.samples) == 0 {
			return nil, fmt.Errorf("family %s without TYPE or samples", f.name)
		}
	}
	return x, x.checkHistograms()
}

// parseSample parses `name{l="v",...} value`.
func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, errors.New("no value")
	}
	s.name = line[:i]
	if !metricNameRE.MatchString(s.name) {
		return s, fmt.Errorf("bad metric name %q", s.name)
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		var prevName string
		for {
			name, after, ok := strings.Cut(rest, `="`)
			if !ok || !labelNameRE.MatchString(name) {
				return s, fmt.Errorf("bad label at %q", rest)
			}
			if _, dup := s.labels[name]; dup {
				return s, fmt.Errorf("label %s repeated", name)
			}
			if name != "le" && name <= prevName {
				return s, fmt.Errorf("label %s not sorted after %s", name, prevName)
			}
			prevName = name
			// The value ends at the first unescaped quote.
			end := -1
			for j := 0; j < len(after); j++ {
				if after[j] == '\\' {
					j++
					continue
				}
				if after[j] == '"' {
					end = j
					break
				}
			}
			if end < 0 {
				return s, errors.New("unterminated label value")
			}
			v, err := unescape(after[:end], true)
			if err != nil {
				return s, err
			}
			s.labels[name] = v
			rest = after[end+1:]
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
				continue
			}
			if !strings.HasPrefix(rest, "}") {
				return s, fmt.Errorf("expected , or } at %q", rest)
			}
			rest = rest[1:]
			break
		}
	}
	if !strings.HasPrefix(rest, " ") || strings.Count(rest, " ") != 1 {
		return s, fmt.Errorf("expected one space and a value at %q", rest)
	}
	v, err := strconv.ParseFloat(rest[1:], 64)
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}

// unescape undoes the format's escapes: \\ and \n, and \" in label values.
func unescape(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || label && c == '"' {
			return "", fmt.Errorf("unescaped %q", c)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(s) {
			return "", errors.New("trailing backslash")
		}
		switch {
		case s[i] == '\\':
			b.WriteByte('\\')
		case s[i] == 'n':
			b.WriteByte('\n')
		case label && s[i] == '"':
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// checkHistograms checks every histogram series: le ascending and ending in
// +Inf, counts cumulative, _count equal to the +Inf bucket, one _sum.
func (x *exposition) checkHistograms() error {
	for _, f := range x.families {
		if f.typ != "histogram" {
			continue
		}
		type series struct {
			les                  []float64
			counts               []float64
			sum, count           int
			countValue, infValue float64
		}
		all := map[string]*series{}
		for _, s := range f.samples {
			var key []string
			for k, v := range s.labels {
				if k != "le" {
					key = append(key, k+"="+v)
				}
			}
			slices.Sort(key)
			k := strings.Join(key, "\x00")
			if all[k] == nil {
				all[k] = &series{}
			}
			se := all[k]
			switch s.name {
			case f.name + "_bucket":
				le, err := strconv.ParseFloat(s.labels["le"], 64)
				if err != nil {
					return fmt.Errorf("%s: le %q", f.name, s.labels["le"])
				}
				if n := len(se.les); n > 0 && (le <= se.les[n-1] || s.value < se.counts[n-1]) {
					return fmt.Errorf("%s{%s}: bucket le=%v out of order or not cumulative", f.name, k, le)
				}
				se.les, se.counts = append(se.les, le), append(se.counts, s.value)
				se.infValue = s.value
			case f.name + "_sum":
				se.sum++
			case f.name + "_count":
				se.count++
				se.countValue = s.value
			}
		}
		for k, se := range all {
			if len(se.les) == 0 || !math.IsInf(se.les[len(se.les)-1], 1) || se.sum != 1 || se.count != 1 || se.countValue != se.infValue {
				return fmt.Errorf("%s{%s}: want buckets ending in +Inf, one _sum and one _count equal to +Inf; got %+v", f.name, k, se)
			}
		}
	}
	return nil
}

func (x *exposition) samples(name string) []sample {
	var out []sample
	for _, f := range x.families {
		for _, s := range f.samples {
			if s.name == name {
				out = append(out, s)
			}
		}
	}
	return out
}

// value returns the one sample of name with exactly the labels given as
// name, value pairs; it fails the test when there is none.
func (x *exposition) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	for _, s := range x.samples(name) {
		if len(s.labels) != len(labels)/2 {
			continue
		}
		match := true
		for i := 0; i < len(labels); i += 2 {
			if v, ok := s.labels[labels[i]]; !ok || v != labels[i+1] {
				match = false
			}
		}
		if match {
			return s.value
		}
	}
	t.Fatalf("no sample %s%q", name, labels)
	return 0
}

func equalSamples(a, b *exposition) bool {
	return fmt.Sprint(a.order) == fmt.Sprint(b.order) && fmt.Sprintf("%v", flatten(a)) == fmt.Sprintf("%v", flatten(b))
}

func flatten(x *exposition) []string {
	var out []string
	for _, name := range x.order {
		for _, s := range x.families[name].samples {
			out = append(out, fmt.Sprint(s.name, s.labels, s.value))
		}
	}
	return out
}
