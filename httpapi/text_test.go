package httpapi_test

// Tests of the text rules of docs/spec.md §2 at the HTTP layer: bytes that
// are not valid UTF-8 are refused before encoding/json sees them (it would
// replace them with U+FFFD, so that distinct values collide), bodies and
// payloads are I-JSON, and "." and ".." are not identifiers. Every refusal
// is 400 validation / invalid_input naming the field, and records nothing.

import (
	"bytes"
	"context"
	"encoding/json"
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

const textAdmin = "text-test-admin-token"

// textServer is a handler over a memory backend with a seeded keystore and
// one execution suspended on waitpoints a and b under condition all, so
// that signals to a are recorded without resuming it.
type textServer struct {
	t   *testing.T
	e   *engine.Engine
	h   http.Handler
	sus contracts.SuspendOutcome
}

func newTextServer(t *testing.T) *textServer {
	t.Helper()
	e := engine.New(memory.New())
	t.Cleanup(func() { _ = e.Close() })
	ctx := context.Background()
	if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(bytes.Repeat([]byte{7}, 32))}); err != nil {
		t.Fatal(err)
	}
	sus, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Condition: contracts.ConditionAll,
		Waitpoints: []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(e, httpapi.Options{AdminToken: textAdmin, Logger: slog.New(slog.DiscardHandler)})
	return &textServer{t: t, e: e, h: h, sus: sus}
}

// do serves one request with raw bytes for the path, the Authorization
// header and the body, and returns the status and the envelope.
func (s *textServer) do(method, path, auth string, body []byte) (int, *contracts.Error, string) {
	s.t.Helper()
	r := httptest.NewRequest(method, "http://ff.test"+path, bytes.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	var env struct {
		Error *contracts.Error `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		s.t.Fatalf("%s %s: body is not JSON: %q", method, path, w.Body.String())
	}
	return w.Code, env.Error, w.Body.String()
}

func (s *textServer) signalPath() string {
	return "/v1/executions/exec-1/waitpoints/" + s.sus.Waitpoints[0].WaitpointID + "/signals"
}

// deliver posts body to waitpoint a with its token.
func (s *textServer) deliver(body string) (int, *contracts.Error, string) {
	return s.do(http.MethodPost, s.signalPath(), "Bearer "+s.sus.Waitpoints[0].Token, []byte(body))
}

// signals returns the signals recorded for exec-1.
func (s *textServer) signals() []contracts.Signal {
	s.t.Helper()
	o, err := s.e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: "exec-1"})
	if err != nil {
		s.t.Fatal(err)
	}
	return o.Signals
}

// wantRefused fails unless the answer is 400 validation / invalid_input
// with exactly detail.
func wantRefused(t *testing.T, what string, status int, e *contracts.Error, body, detail string) {
	t.Helper()
	if status != http.StatusBadRequest || e == nil || e.Kind != contracts.KindValidation || e.Code != contracts.CodeInvalidInput || e.Detail != detail {
		t.Errorf("%s: %d %s; want 400 invalid_input %q", what, status, body, detail)
	}
}

// TestIdempotencyKeysDifferingInInvalidBytesAreRefused: "pay-\xff" and
// "pay-\xfe" would both decode to "pay-\uFFFD", and the second delivery
// would answer duplicate while its signal was lost. Both are refused and
// nothing is recorded; so are two lone surrogate escapes, which decode to
// the same U+FFFD. Keys that differ as valid text stay distinct.
func TestIdempotencyKeysDifferingInInvalidBytesAreRefused(t *testing.T) {
	s := newTextServer(t)
	for _, key := range []string{"pay-\xff", "pay-\xfe"} {
		status, e, body := s.deliver(`{"name":"paid","payload":{"n":1},"idempotency_key":"` + key + `"}`)
		wantRefused(t, "key "+strings.ToValidUTF8(key, "?"), status, e, body, "idempotency_key: must be valid UTF-8")
	}
	for _, key := range []string{`pay-\ud800`, `pay-\udbff`} {
		status, e, body := s.deliver(`{"name":"paid","idempotency_key":"` + key + `"}`)
		wantRefused(t, "key "+key, status, e, body, `idempotency_key: must be I-JSON: no unpaired surrogate in a \u escape`)
	}
	if got := s.signals(); len(got) != 0 {
		t.Fatalf("refused deliveries recorded %d signals", len(got))
	}
	for _, key := range []string{`pay-\u00ff`, `pay-\u00fe`} {
		status, _, body := s.deliver(`{"name":"paid","idempotency_key":"` + key + `"}`)
		if status != http.StatusOK || !strings.Contains(body, `"outcome":"accepted"`) {
			t.Fatalf("key %s: %d %s, want accepted", key, status, body)
		}
	}
	if got := s.signals(); len(got) != 2 || got[0].IdempotencyKey != "pay-ÿ" || got[1].IdempotencyKey != "pay-þ" {
		t.Fatalf("signals %+v, want the two keys pay-ÿ and pay-þ", got)
	}
}

func nested(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }

// TestPayloadMustBeIJSONOverHTTP: a payload that strict workers cannot read
// is refused with a detail naming payload and the rule; a payload nested 64
// deep is accepted and stored as given.
func TestPayloadMustBeIJSONOverHTTP(t *testing.T) {
	s := newTextServer(t)
	for _, c := range []struct{ name, payload, detail string }{
		{"invalid UTF-8", "\"ok-\xff\"", "payload: must be valid UTF-8"},
		{"invalid UTF-8 in a member name", "{\"\xc3\x28\":1}", "payload: must be valid UTF-8"},
		{"lone high surrogate", `"\ud800"`, `payload: must be I-JSON: no unpaired surrogate in a \u escape`},
		{"lone low surrogate", `{"a":["\udc00"]}`, `payload: must be I-JSON: no unpaired surrogate in a \u escape`},
		{"duplicate member", `{"amount":1,"amount":1000}`, "payload: must be I-JSON: no member name twice in one object"},
		{"duplicate through an escape", `{"a":1,"\u0061":2}`, "payload: must be I-JSON: no member name twice in one object"},
		{"depth 65", nested(65), "payload: must be I-JSON: arrays and objects nested at most 64 deep"},
		{"depth 9000", nested(9000), "payload: must be I-JSON: arrays and objects nested at most 64 deep"},
		{"depth 20000", nested(20000), "payload: must be I-JSON: arrays and objects nested at most 64 deep"},
	} {
		status, e, body := s.deliver(`{"name":"n","payload":` + c.payload + `}`)
		wantRefused(t, c.name, status, e, body, c.detail)
	}
	if got := s.signals(); len(got) != 0 {
		t.Fatalf("refused payloads recorded %d signals", len(got))
	}
	for _, p := range []string{nested(64), `"\ud83d\ude00"`, `{"a":{"a":1},"b":[{"a":1},{"a":2}]}`} {
		status, _, body := s.deliver(`{"name":"n","payload":` + p + `}`)
		if status != http.StatusOK {
			t.Fatalf("payload %.30s: %d %s, want accepted", p, status, body)
		}
	}
	got := s.signals()
	if len(got) != 3 || string(got[0].Payload) != nested(64) {
		t.Fatalf("want 3 signals, the first with the 64-deep payload; got %d", len(got))
	}
}

// TestBodyFieldsAreText: every text member of every body is refused, named,
// when it is not valid UTF-8 or holds an unpaired surrogate; a member given
// twice is refused rather than the last one kept; a fault outside any plain
// member is named body.
func TestBodyFieldsAreText(t *testing.T) {
	s := newTextServer(t)
	admin := "Bearer " + textAdmin
	tok := s.sus.Waitpoints[0].Token
	for _, c := range []struct{ name, method, path, auth, body, detail string }{
		{"signal name", "POST", s.signalPath(), "Bearer " + tok, "{\"name\":\"n\xff\"}", "name: must be valid UTF-8"},
		{"name twice", "POST", s.signalPath(), "Bearer " + tok, `{"name":"a","name":"b"}`, "name: must be I-JSON: no member name twice in one object"},
		{"invalid UTF-8 in a member name", "POST", s.signalPath(), "Bearer " + tok, "{\"n\xffme\":\"n\"}", "body: must be valid UTF-8"},
		{"invalid UTF-8 after the object", "POST", s.signalPath(), "Bearer " + tok, "{\"name\":\"n\"} \xff", "body: must be valid UTF-8"},
		{"sign scope", "POST", "/v1/admin/sign", admin, "{\"scope\":\"s\xfe\",\"message\":\"m\"}", "scope: must be valid UTF-8"},
		{"sign message", "POST", "/v1/admin/sign", admin, "{\"scope\":\"s\",\"message\":\"m\xff\"}", "message: must be valid UTF-8"},
		{"sign message surrogate", "POST", "/v1/admin/sign", admin, `{"scope":"s","message":"\udfff"}`, `message: must be I-JSON: no unpaired surrogate in a \u escape`},
		{"verify token", "POST", "/v1/admin/verify", admin, "{\"scope\":\"s\",\"message\":\"m\",\"token\":\"k1:\xff\"}", "token: must be valid UTF-8"},
		{"seed kid", "POST", "/v1/admin/keystore/seed", admin, "{\"kid\":\"k\xff\",\"secret_hex\":\"00\"}", "kid: must be valid UTF-8"},
		{"rotate kid", "POST", "/v1/admin/keystore/rotate", admin, "{\"new_kid\":\"k\xff\",\"new_secret_hex\":\"00\"}", "new_kid: must be valid UTF-8"},
		{"suspend key", "POST", "/v1/admin/executions/exec-2/suspend", admin, "{\"waitpoints\":[{\"key\":\"a\xff\"}]}", "waitpoints: must be valid UTF-8"},
		{"suspend idempotency key", "POST", "/v1/admin/executions/exec-2/suspend", admin, `{"waitpoints":[{"key":"a"}],"idempotency_key":"\ud800"}`, `idempotency_key: must be I-JSON: no unpaired surrogate in a \u escape`},
		{"claim worker", "POST", "/v1/admin/claim", admin, "{\"worker_id\":\"w\xff\"}", "worker_id: must be valid UTF-8"},
		{"complete lease", "POST", "/v1/admin/executions/exec-1/complete", admin, "{\"lease_id\":\"\xff\"}", "lease_id: must be valid UTF-8"},
	} {
		status, e, body := s.do(c.method, c.path, c.auth, []byte(c.body))
		wantRefused(t, c.name, status, e, body, c.detail)
	}
	// Syntax stays what it was: one error naming the body.
	status, e, body := s.deliver(`{"name":"n"} ]`)
	wantRefused(t, "trailing bracket", status, e, body, "body: must be one JSON object")
	if got := s.signals(); len(got) != 0 {
		t.Fatalf("refused requests recorded %d signals", len(got))
	}
	if _, err := s.e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: "exec-2"}); err == nil {
		t.Fatal("a refused suspend created exec-2")
	}
}

// TestPathQueryAndHeaderAreText: a path segment, a query parameter or the
// Authorization header that is not valid UTF-8 is refused, named.
func TestPathQueryAndHeaderAreText(t *testing.T) {
	s := newTextServer(t)
	admin := "Bearer " + textAdmin
	wp := s.sus.Waitpoints[0]
	for _, c := range []struct{ name, method, path, auth, body, detail string }{
		{"execution_id in the signal path", "POST", "/v1/executions/exec-%FF/waitpoints/" + wp.WaitpointID + "/signals", "Bearer " + wp.Token, `{"name":"n"}`, "execution_id: must be valid UTF-8"},
		{"waitpoint_id in the signal path", "POST", "/v1/executions/exec-1/waitpoints/%FE/signals", "Bearer " + wp.Token, `{"name":"n"}`, "waitpoint_id: must be valid UTF-8"},
		{"token header", "POST", s.signalPath(), "Bearer " + wp.Token[:len(wp.Token)-1] + "\xff", `{"name":"n"}`, "authorization: must be valid UTF-8"},
		{"suspend path", "POST", "/v1/admin/executions/%C3%28/suspend", admin, `{"waitpoints":[{"key":"a"}]}`, "execution_id: must be valid UTF-8"},
		{"observe path", "GET", "/v1/admin/executions/%FF/signals", admin, ``, "execution_id: must be valid UTF-8"},
		{"complete path", "POST", "/v1/admin/executions/%FF/complete", admin, `{"lease_id":"x"}`, "execution_id: must be valid UTF-8"},
		{"list cursor", "GET", "/v1/admin/suspended?cursor=%FF", admin, ``, "cursor: must be valid UTF-8"},
		{"list limit", "GET", "/v1/admin/suspended?limit=1%FF", admin, ``, "limit: must be valid UTF-8"},
	} {
		status, e, body := s.do(c.method, c.path, c.auth, []byte(c.body))
		wantRefused(t, c.name, status, e, body, c.detail)
	}
	if got := s.signals(); len(got) != 0 {
		t.Fatalf("refused requests recorded %d signals", len(got))
	}
}

// TestDotIdentifiersOverHTTP: "." and ".." cannot be identifiers. In a body
// they are invalid_input; in a path they never reach a route (the path is
// not canonical: 404 route_not_found). Either way nothing is recorded.
func TestDotIdentifiersOverHTTP(t *testing.T) {
	s := newTextServer(t)
	admin := "Bearer " + textAdmin
	tok := "Bearer " + s.sus.Waitpoints[0].Token
	for _, c := range []struct{ name, path, auth, body, detail string }{
		{"waitpoint key .", "/v1/admin/executions/exec-2/suspend", admin, `{"waitpoints":[{"key":"."}]}`, `waitpoints.key: must not be "." or ".."`},
		{"waitpoint key ..", "/v1/admin/executions/exec-2/suspend", admin, `{"waitpoints":[{"key":".."}]}`, `waitpoints.key: must not be "." or ".."`},
		{"signal name .", s.signalPath(), tok, `{"name":"."}`, `name: must not be "." or ".."`},
		{"signal name ..", s.signalPath(), tok, `{"name":".."}`, `name: must not be "." or ".."`},
		{"worker id ..", "/v1/admin/claim", admin, `{"worker_id":".."}`, `worker_id: must not be "." or ".."`},
	} {
		status, e, body := s.do(http.MethodPost, c.path, c.auth, []byte(c.body))
		wantRefused(t, c.name, status, e, body, c.detail)
	}
	for _, path := range []string{
		"/v1/admin/executions/./suspend", "/v1/admin/executions/../suspend",
		"/v1/admin/executions/%2E/suspend", "/v1/admin/executions/%2E%2E/suspend",
		"/v1/executions/%2e%2e/waitpoints/" + s.sus.Waitpoints[0].WaitpointID + "/signals",
	} {
		status, e, body := s.do(http.MethodPost, path, admin, []byte(`{"waitpoints":[{"key":"a"}],"name":"n"}`))
		if status == http.StatusOK || e == nil {
			t.Errorf("POST %s: %d %s, want refused", path, status, body)
		}
	}
	if got := s.signals(); len(got) != 0 {
		t.Fatalf("refused requests recorded %d signals", len(got))
	}
	l, err := s.e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{})
	if err != nil || len(l.Executions) != 1 {
		t.Fatalf("list_suspended: %v %+v, want exec-1 alone", err, l)
	}
}

// GET .../signals pages with ?limit and ?cursor (docs/spec.md §5.3): two
// signals at one per page, the second page the last (next_cursor null).
func TestObserveSignalsPagesOverHTTP(t *testing.T) {
	s := newTextServer(t)
	for i, key := range []string{"k1", "k2"} {
		wp := s.sus.Waitpoints[0]
		status, cerr, body := s.do("POST", "/v1/executions/exec-1/waitpoints/"+wp.WaitpointID+"/signals", "Bearer "+wp.Token,
			[]byte(`{"name":"n","idempotency_key":"`+key+`"}`))
		if status != http.StatusOK {
			t.Fatalf("deliver %d: %d %v %s", i, status, cerr, body)
		}
	}
	path := "/v1/admin/executions/exec-1/signals?limit=1"
	var seen int
	for page := 0; page < 3; page++ {
		status, cerr, body := s.do("GET", path, "Bearer "+textAdmin, nil)
		if status != http.StatusOK {
			t.Fatalf("page %d: %d %v %s", page, status, cerr, body)
		}
		var p contracts.ObserveSignalsResult
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		seen += len(p.Signals)
		if p.NextCursor == nil {
			if seen != 2 || page != 1 {
				t.Fatalf("saw %d signals in %d pages, want 2 in 2", seen, page+1)
			}
			return
		}
		path = "/v1/admin/executions/exec-1/signals?limit=1&cursor=" + *p.NextCursor
	}
	t.Fatal("no last page")
}
