package httpapi_test

// FuzzHTTPRequest sends fuzzed requests (route, method, path segment,
// query, credentials, body) through the real handler over
// httptest.NewRecorder, on a memory backend holding a seeded keystore and
// a suspended execution, and checks what every caller may rely on: no
// panic; a status in the documented set; a JSON body that is the contract
// envelope (an error envelope with a known kind, whose status is
// httpapi.StatusOf of it, for every non-200); and no secret, admin token
// or waitpoint MAC in any body or log line.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

const (
	fzAdminToken = "fuzz-admin-token-0a1b2c3d4e5f"
	fzSecretHex  = "f022f022f022f022f022f022f022f022f022f022f022f022f022f022f022f022"
)

// fzStatuses is the documented status set (httpapi package doc).
var fzStatuses = map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 409: true, 413: true, 429: true, 503: true}

// fzKinds is the closed error taxonomy (docs/spec.md §6).
var fzKinds = map[contracts.Kind]bool{
	contracts.KindValidation: true, contracts.KindNotFound: true, contracts.KindConflict: true, contracts.KindState: true,
	contracts.KindContention: true, contracts.KindTransport: true, contracts.KindUnavailable: true,
}

// fzRoutes are path templates; {id} is replaced by the fuzzed segment,
// {wp} by the suspended waitpoint's id.
var fzRoutes = []string{
	"/v1/executions/{id}/waitpoints/{wp}/signals",
	"/v1/executions/fz-exec/waitpoints/{id}/signals",
	"/v1/admin/keystore/seed",
	"/v1/admin/keystore/rotate",
	"/v1/admin/keystore/kids",
	"/v1/admin/sign",
	"/v1/admin/verify",
	"/v1/admin/executions/{id}/suspend",
	"/v1/admin/executions/{id}/signals",
	"/v1/admin/executions/{id}/complete",
	"/v1/admin/suspended",
	"/v1/admin/claim",
	"/healthz",
	"/readyz",
	"/{id}",
	"/v1/admin/keystore/revoke", // the indexes up to here are the seeds' and the corpus's
	"/v1/callbacks/fz-exec/{wp}/{id}",
}

var fzMethods = []string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"}

// fzServer is the handler under fuzzing and what it must never reveal.
type fzServer struct {
	h       http.Handler
	logs    *bytes.Buffer
	wp      contracts.WaitpointOutcome
	secrets []string // forms that must never appear
}

func newFzServer(f *testing.F) *fzServer {
	var logs bytes.Buffer
	e := engine.New(memory.New())
	h := httpapi.New(e, httpapi.Options{AdminToken: fzAdminToken, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		CallbackBaseURL: "https://hooks.example.com"})
	ctx := context.Background()
	secret, err := contracts.ParseSecretHex("secret_hex", fzSecretHex)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret}); err != nil {
		f.Fatal(err)
	}
	sus, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "fz-exec", Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}}})
	if err != nil {
		f.Fatal(err)
	}
	wp := sus.Waitpoints[0]
	return &fzServer{h: h, logs: &logs, wp: wp, secrets: []string{
		fzSecretHex, strings.ToUpper(fzSecretHex), fzSecretHex[:32], string(secret), fzAdminToken,
	}}
}

// request builds the fuzzed request, or nil when it is not a valid URL.
func (s *fzServer) request(route, method uint8, seg, query string, auth uint8, bearer string, body []byte) *http.Request {
	path := fzRoutes[int(route)%len(fzRoutes)]
	path = strings.ReplaceAll(path, "{id}", seg)
	path = strings.ReplaceAll(path, "{wp}", s.wp.WaitpointID)
	target := "http://ff.test" + path
	if query != "" {
		target += "?" + query
	}
	req, err := http.NewRequestWithContext(context.Background(), fzMethods[int(method)%len(fzMethods)], target, bytes.NewReader(body))
	if err != nil {
		return nil
	}
	switch auth % 4 {
	case 1:
		req.Header.Set("Authorization", "Bearer "+fzAdminToken)
	case 2:
		req.Header.Set("Authorization", "Bearer "+s.wp.Token)
	case 3:
		req.Header.Set("Authorization", bearer)
	}
	return req
}

func FuzzHTTPRequest(f *testing.F) {
	s := newFzServer(f)
	seeds := []struct {
		route, method uint8
		seg, query    string
		auth          uint8
		body          string
	}{
		{0, 1, "fz-exec", "", 2, `{"name":"approved","payload":{"by":"ann"},"idempotency_key":"i1"}`},
		{0, 1, "fz-exec", "", 2, `{"name":"approved","payload":"\u0000'); DROP TABLE ff_signals; --","idempotency_key":"]]\r\n"}`},
		{0, 1, "other", "", 0, `{"name":"x"}`},
		{1, 1, "not-a-uuid", "", 2, `{"name":"x"}`},
		{2, 1, "", "", 1, `{"kid":"k2","secret_hex":"` + fzSecretHex + `"}`},
		{3, 1, "", "", 1, `{"new_kid":"k2","new_secret_hex":"` + fzSecretHex + `","grace_ms":1000}`},
		{4, 0, "", "", 1, ``},
		{5, 1, "", "", 1, `{"scope":"'; DROP TABLE","message":"[==[ ]==]"}`},
		{6, 1, "", "", 1, `{"scope":"s","message":"m","token":"` + s.wp.Token + `"}`},
		{7, 1, "exec-2", "", 1, `{"waitpoints":[{"key":"a"},{"key":"b"}],"condition":"all","timeout_ms":5000,"idempotency_key":"x"}`},
		{8, 0, "fz-exec", "", 1, ``},
		{9, 1, "fz-exec", "", 1, `{"lease_id":"0b8f6c1e-2f4a-4c3b-9d7e-5a6b7c8d9e0f"}`},
		{10, 0, "", "limit=2&cursor=djE6NTplAA", 1, ``},
		{10, 0, "", "limit=-1", 1, ``},
		{11, 1, "", "", 1, `{"worker_id":"w1","lease_ms":1000}`},
		{12, 0, "", "", 0, ``},
		{13, 0, "", "", 0, ``},
		{14, 3, "nowhere", "", 3, `{`},
		{2, 1, "", "", 1, `{"kid":"k3","secret_hex":"` + fzSecretHex + `"} trailing`},
		{2, 1, "", "", 1, `{"kid":"k3","secret_hex":1}`},
		{2, 1, "", "", 1, `{"kid":"k3","extra":1}`},
		{0, 1, "fz-exec", "", 2, "{\"name\":\"paid\",\"idempotency_key\":\"pay-\xff\"}"},
		{0, 1, "fz-exec", "", 2, `{"name":"paid","idempotency_key":"pay-\ud800"}`},
		{0, 1, "fz-exec", "", 2, `{"name":"paid","payload":{"a":1,"a":2}}`},
		{0, 1, "fz-exec", "", 2, `{"name":"paid","payload":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`},
		{0, 1, "fz-exec", "", 2, `{"name":".."}`},
		{0, 1, "%FF", "", 2, `{"name":"n"}`},
		{10, 0, "", "cursor=%FF", 1, ``},
		{5, 1, "", "", 1, "{\"scope\":\"\xfe\",\"message\":\"m\"}"},
		{15, 1, "", "", 1, `{"kid":"k1"}`},
		{15, 1, "", "", 1, `{"kid":"nope"}`},
		{15, 1, "", "", 1, `{"kid":"k\u00ff"}`},
		{16, 1, s.wp.Token, "name=approved", 0, `{"by":"ann"}`},
		{16, 1, s.wp.Token[:len(s.wp.Token)-1] + "0", "", 0, ``},
		{16, 0, s.wp.Token, "", 0, ``},
	}
	for _, sd := range seeds {
		f.Add(sd.route, sd.method, sd.seg, sd.query, sd.auth, "Bearer x", []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, route, method uint8, seg, query string, auth uint8, bearer string, body []byte) {
		req := s.request(route, method, seg, query, auth, bearer, body)
		if req == nil {
			return
		}
		s.logs.Reset()
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		s.check(t, req, rec)
		// Every POST route decodes its body: one that is not valid UTF-8 is
		// refused, never decoded with replacements (docs/spec.md §2).
		if rec.Code == http.StatusOK && req.Method == http.MethodPost && !utf8.Valid(body) {
			t.Fatalf("%s %s: a body that is not valid UTF-8 was accepted: %q", req.Method, req.URL, rec.Body.String())
		}
	})
}

// check asserts the response and the log line of one request.
func (s *fzServer) check(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	body := rec.Body.String()
	if !fzStatuses[rec.Code] {
		t.Fatalf("%s %s: status %d is not documented; body %q", req.Method, req.URL, rec.Code, body)
	}
	if rec.Header().Get("X-Request-Id") == "" {
		t.Fatalf("%s %s: no X-Request-Id", req.Method, req.URL)
	}
	if req.Method != http.MethodHead {
		s.checkBody(t, req, rec.Code, body)
	}
	logs := s.logs.String()
	for _, secret := range append(s.secrets, s.wp.Token[len(s.wp.Token)-64:]) {
		if strings.Contains(body, secret) && !strings.Contains(string(fzRequestEcho(req)), secret) {
			t.Fatalf("%s %s: body reveals a secret: %q", req.Method, req.URL, body)
		}
		if strings.Contains(logs, secret) {
			t.Fatalf("%s %s: log reveals a secret or MAC: %q", req.Method, req.URL, logs)
		}
	}
	s.checkLogLines(t, req, logs)
}

// fzKeystoreRoutes are the routes that log a keystore audit line when the
// call reaches the Engine.
var fzKeystoreRoutes = map[string]bool{"/v1/admin/keystore/seed": true, "/v1/admin/keystore/rotate": true, "/v1/admin/keystore/revoke": true}

// checkLogLines asserts one JSON request line, preceded on the keystore
// routes by at most one keystore audit line.
func (s *fzServer) checkLogLines(t *testing.T, req *http.Request, logs string) {
	t.Helper()
	lines := strings.SplitAfter(strings.TrimSuffix(logs, "\n"), "\n")
	requests, audits := 0, 0
	for _, line := range lines {
		var m struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			t.Fatalf("%s %s: a log line is not JSON: %q", req.Method, req.URL, logs)
		}
		switch m.Msg {
		case "request":
			requests++
		case httpapi.AuditMessage:
			audits++
		}
	}
	if requests != 1 || len(lines) != 1+audits || audits > 1 || audits == 1 && !fzKeystoreRoutes[req.URL.Path] {
		t.Fatalf("%s %s: want one JSON request line (and one audit line on a keystore route), got %q", req.Method, req.URL, logs)
	}
}

// checkBody asserts that body is the contract envelope for status.
func (s *fzServer) checkBody(t *testing.T, req *http.Request, status int, body string) {
	t.Helper()
	if !json.Valid([]byte(body)) {
		t.Fatalf("%s %s: body is not JSON: %q", req.Method, req.URL, body)
	}
	var env struct {
		Error *contracts.Error `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &env)
	if status == http.StatusOK {
		if env.Error != nil {
			t.Fatalf("%s %s: 200 with an error envelope %q", req.Method, req.URL, body)
		}
		return
	}
	if env.Error == nil || !fzKinds[env.Error.Kind] || env.Error.Code == "" || env.Error.Detail == "" {
		t.Fatalf("%s %s: status %d without a contract error envelope: %q", req.Method, req.URL, status, body)
	}
	if got := httpapi.StatusOf(env.Error); got != status {
		t.Fatalf("%s %s: status %d but StatusOf(%s) = %d", req.Method, req.URL, status, env.Error.Code, got)
	}
}

// fzRequestEcho is what a caller sent that an error may legitimately quote
// back (the path of a 404): a secret the caller put there is their own.
func fzRequestEcho(req *http.Request) []byte { return []byte(req.URL.Path) }
