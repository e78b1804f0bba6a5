package httpapi_test

// Tests of the admin routes of version 2 of the waitpoint lifecycle
// (docs/spec.md §8) and the version 2 members of suspend and
// list_suspended: decoding, statuses, and refusals that name their field
// and change nothing.

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
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

// admin sends an admin request to s and returns status, error and body.
func (s *textServer) admin(method, path, body string) (int, *contracts.Error, string) {
	s.t.Helper()
	return s.do(method, path, "Bearer "+textAdmin, []byte(body))
}

// adminOK sends an admin request that must answer 200 and decodes it.
func (s *textServer) adminOK(method, path, body string, into any) string {
	s.t.Helper()
	status, _, got := s.admin(method, path, body)
	if status != http.StatusOK {
		s.t.Fatalf("%s %s = %d %s", method, path, status, got)
	}
	if into != nil {
		if err := json.Unmarshal([]byte(got), into); err != nil {
			s.t.Fatalf("%s %s: %v in %s", method, path, err, got)
		}
	}
	return got
}

// wantStatus fails unless the answer is status with error code.
func wantStatus(t *testing.T, what string, status int, e *contracts.Error, body string, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || e == nil || e.Code != code {
		t.Errorf("%s: %d %s; want %d %s", what, status, body, wantStatus, code)
	}
}

// TestApprovalMailOverHTTP: create_waitpoint, a delivery on the public
// route before the suspend, get_waitpoint, and the suspend that uses the
// pending waitpoint answering already_satisfied with that signal.
func TestApprovalMailOverHTTP(t *testing.T) {
	s := newTextServer(t)
	var created contracts.CreateWaitpointOutcome
	s.adminOK("POST", "/v1/admin/executions/order-7/waitpoints", `{"key":"approve","expires_in_ms":86400000,"tags":["mail"]}`, &created)
	if created.Outcome != contracts.OutcomeCreated || created.WaitpointKey != "approve" || created.ExpiresAtMs != created.CreatedAtMs+86400000 ||
		len(created.Tags) != 1 || created.Tags[0] != "mail" {
		t.Fatalf("create_waitpoint: %+v", created)
	}
	wpPath := "/v1/admin/executions/order-7/waitpoints/" + created.WaitpointID
	var info contracts.WaitpointInfo
	got := s.adminOK("GET", wpPath, "", &info)
	if info.Status != contracts.WaitpointPending || info.Signals != 0 || info.TokenFingerprint == nil ||
		*info.TokenFingerprint != driver.TokenFingerprint(created.Token) || strings.Contains(got, created.Token) {
		t.Fatalf("get_waitpoint: %s", got)
	}

	status, _, body := s.do("POST", "/v1/executions/order-7/waitpoints/"+created.WaitpointID+"/signals", "Bearer "+created.Token,
		[]byte(`{"name":"approved","payload":{"by":"ana"},"idempotency_key":"mail-1"}`))
	var sig contracts.DeliverSignalOutcome
	if status != http.StatusOK || json.Unmarshal([]byte(body), &sig) != nil || sig.Outcome != contracts.OutcomeAccepted || sig.Resumed {
		t.Fatalf("deliver to the pending waitpoint: %d %s", status, body)
	}

	var sus contracts.SuspendOutcome
	s.adminOK("POST", "/v1/admin/executions/order-7/suspend", `{"waitpoints":[{"pending":"`+created.WaitpointID+`"}]}`, &sus)
	if sus.Outcome != contracts.OutcomeAlreadySatisfied || len(sus.Signals) != 1 || sus.Signals[0].SignalID != sig.SignalID ||
		string(sus.Signals[0].Payload) != `{"by":"ana"}` {
		t.Fatalf("suspend with the pending waitpoint: %+v", sus)
	}
	s.adminOK("GET", wpPath, "", &info)
	if info.Status != contracts.WaitpointClosed || info.Signals != 1 {
		t.Fatalf("get_waitpoint after already_satisfied: %+v", info)
	}
}

// TestLifecycleRoutes: count conditions, tags and the tag filter, cancel,
// extend and release, each with its envelope and status.
func TestLifecycleRoutes(t *testing.T) {
	s := newTextServer(t)
	var sus contracts.SuspendOutcome
	got := s.adminOK("POST", "/v1/admin/executions/exec-2/suspend",
		`{"waitpoints":[{"key":"a"},{"key":"b"},{"key":"c"}],"condition":{"count":2},"tags":["q3","approval"],"timeout_ms":null,"lease_id":null}`, &sus)
	if !strings.Contains(got, `"condition":{"count":2}`) || !strings.Contains(got, `"tags":["q3","approval"]`) {
		t.Fatalf("suspend: %s", got)
	}
	var page contracts.ListSuspendedResult
	s.adminOK("GET", "/v1/admin/suspended?tag=q3", "", &page)
	if len(page.Executions) != 1 || page.Executions[0].ExecutionID != "exec-2" || len(page.Executions[0].Tags) != 2 {
		t.Fatalf("list_suspended?tag=q3: %+v", page)
	}
	s.adminOK("GET", "/v1/admin/suspended", "", &page)
	if len(page.Executions) != 2 {
		t.Fatalf("list_suspended: %+v", page)
	}

	for _, body := range []string{"", "{}", " \n"} { // cancel takes no body, or {}
		status, _, got := s.admin("POST", "/v1/admin/executions/exec-2/cancel", body)
		if body == "" {
			if status != http.StatusOK || got != `{"outcome":"cancelled","execution_id":"exec-2","suspension_id":"`+sus.SuspensionID+`"}`+"\n" {
				t.Fatalf("cancel: %d %s", status, got)
			}
			continue
		}
		var e struct{ Error *contracts.Error }
		_ = json.Unmarshal([]byte(got), &e)
		wantStatus(t, "cancel again with body "+body, status, e.Error, got, http.StatusConflict, contracts.CodeNotSuspended)
	}
	var claim contracts.ClaimOutcome
	s.adminOK("POST", "/v1/admin/claim", `{"worker_id":"w1"}`, &claim)
	if claim.ExecutionID != "exec-2" || claim.Reason != contracts.ReasonCancelled {
		t.Fatalf("claim after cancel: %+v", claim)
	}
	var ext contracts.ExtendLeaseOutcome
	s.adminOK("POST", "/v1/admin/executions/exec-2/extend", `{"lease_id":"`+claim.LeaseID+`","lease_ms":5000}`, &ext)
	if ext.Outcome != contracts.OutcomeExtended || ext.LeaseExpiresAtMs < claim.LeaseExpiresAtMs-contracts.DefaultLeaseMs+5000 {
		t.Fatalf("extend: %+v", ext)
	}
	got = s.adminOK("POST", "/v1/admin/executions/exec-2/release", `{"lease_id":"`+claim.LeaseID+`"}`, nil)
	if got != `{"outcome":"released","execution_id":"exec-2"}`+"\n" {
		t.Fatalf("release: %s", got)
	}
	status, e, got := s.admin("POST", "/v1/admin/executions/exec-2/extend", `{"lease_id":"`+claim.LeaseID+`"}`)
	wantStatus(t, "extend a released lease", status, e, got, http.StatusConflict, contracts.CodeLeaseMismatch)
	status, e, got = s.admin("POST", "/v1/admin/executions/exec-2/release", `{"lease_id":"`+claim.LeaseID+`"}`)
	wantStatus(t, "release a released lease", status, e, got, http.StatusConflict, contracts.CodeLeaseMismatch)
}

// TestLifecycleStatuses: each new error code answers the status of its
// kind: 404 not_found, 409 conflict and state.
func TestLifecycleStatuses(t *testing.T) {
	s := newTextServer(t)
	unknown := driver.NewID()
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"get_waitpoint unknown", "GET", "/v1/admin/executions/exec-1/waitpoints/" + unknown, "", 404, contracts.CodeWaitpointNotFound},
		{"get_waitpoint of another execution", "GET", "/v1/admin/executions/exec-9/waitpoints/" + s.sus.Waitpoints[0].WaitpointID, "", 404, contracts.CodeWaitpointNotFound},
		{"cancel unknown", "POST", "/v1/admin/executions/nobody/cancel", "", 404, contracts.CodeExecutionNotFound},
		{"extend unknown", "POST", "/v1/admin/executions/nobody/extend", `{"lease_id":"` + unknown + `"}`, 404, contracts.CodeExecutionNotFound},
		{"release unknown", "POST", "/v1/admin/executions/nobody/release", `{"lease_id":"` + unknown + `"}`, 404, contracts.CodeExecutionNotFound},
		{"extend not claimed", "POST", "/v1/admin/executions/exec-1/extend", `{"lease_id":"` + unknown + `"}`, 409, contracts.CodeLeaseMismatch},
		{"create while suspended", "POST", "/v1/admin/executions/exec-1/waitpoints", `{"key":"k","expires_in_ms":1000}`, 409, contracts.CodeAlreadySuspended},
		{"create with a lease in state none", "POST", "/v1/admin/executions/exec-3/waitpoints", `{"key":"k","expires_in_ms":1000,"lease_id":"` + unknown + `"}`, 409, contracts.CodeLeaseMismatch},
		{"suspend with an unknown pending", "POST", "/v1/admin/executions/exec-3/suspend", `{"waitpoints":[{"pending":"` + unknown + `"}]}`, 409, contracts.CodePendingWaitpointUnavailable},
	} {
		status, e, body := s.admin(c.method, c.path, c.body)
		wantStatus(t, c.name, status, e, body, c.status, c.code)
	}
	for range contracts.MaxPendingWaitpoints {
		s.adminOK("POST", "/v1/admin/executions/exec-4/waitpoints", `{"key":"k","expires_in_ms":60000}`, nil)
	}
	status, e, body := s.admin("POST", "/v1/admin/executions/exec-4/waitpoints", `{"key":"k","expires_in_ms":60000}`)
	wantStatus(t, "the 17th pending waitpoint", status, e, body, http.StatusConflict, contracts.CodeWaitpointLimitExceeded)

	// Wrong method and no admin token, as on every route.
	for _, c := range []struct{ method, wrong, path string }{
		{"POST", "GET", "/v1/admin/executions/exec-1/waitpoints"},
		{"GET", "POST", "/v1/admin/executions/exec-1/waitpoints/" + unknown},
		{"POST", "GET", "/v1/admin/executions/exec-1/extend"},
		{"POST", "GET", "/v1/admin/executions/exec-1/release"},
		{"POST", "GET", "/v1/admin/executions/exec-1/cancel"},
	} {
		status, e, body := s.admin(c.wrong, c.path, "")
		wantStatus(t, c.wrong+" "+c.path, status, e, body, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed)
		status, e, body = s.do(c.method, c.path, "", nil)
		wantStatus(t, "no admin token on "+c.path, status, e, body, http.StatusUnauthorized, httpapi.CodeUnauthorized)
	}
}

// TestLifecycleRefusals: every malformed member is 400 invalid_input
// naming it, and nothing is written.
func TestLifecycleRefusals(t *testing.T) {
	s := newTextServer(t)
	var pending contracts.CreateWaitpointOutcome
	s.adminOK("POST", "/v1/admin/executions/exec-2/waitpoints", `{"key":"p","expires_in_ms":60000}`, &pending)
	wpPath := "/v1/admin/executions/exec-2/waitpoints/" + pending.WaitpointID
	before := s.adminOK("GET", wpPath, "", nil)
	p := `{"pending":"` + pending.WaitpointID + `"}`
	eleven := `["t0","t1","t2","t3","t4","t5","t6","t7","t8","t9","t10"]`
	suspend := "/v1/admin/executions/exec-2/suspend"
	create := "/v1/admin/executions/exec-3/waitpoints"
	lease := driver.NewID()
	for _, c := range []struct{ name, method, path, body, detail string }{
		// suspend's condition
		{"count 0", "POST", suspend, `{"waitpoints":[` + p + `],"condition":{"count":0}}`, "condition.count: must be from 1 to the number of waitpoints"},
		{"count above the waitpoints", "POST", suspend, `{"waitpoints":[` + p + `,{"key":"a"}],"condition":{"count":3}}`, "condition.count: must be from 1 to the number of waitpoints"},
		{"count not an integer", "POST", suspend, `{"waitpoints":[` + p + `],"condition":{"count":1.5}}`, "condition.count: must be from 1 to the number of waitpoints"},
		{"count as a string", "POST", suspend, `{"waitpoints":[` + p + `],"condition":{"count":"1"}}`, `condition: must be "any", "all" or {"count": n}`},
		{"condition object with another member", "POST", suspend, `{"waitpoints":[` + p + `],"condition":{"count":1,"of":2}}`, `condition: must be "any", "all" or {"count": n}`},
		{"condition object without count", "POST", suspend, `{"waitpoints":[` + p + `],"condition":{}}`, `condition: must be "any", "all" or {"count": n}`},
		{"count twice", "POST", suspend, `{"waitpoints":[` + p + `],"condition":{"count":1,"count":1}}`, "condition: must be I-JSON: no member name twice in one object"},
		{"condition word", "POST", suspend, `{"waitpoints":[` + p + `],"condition":"most"}`, `condition: must be "any", "all" or {"count": n}`},
		{"condition number", "POST", suspend, `{"waitpoints":[` + p + `],"condition":2}`, `condition: must be "any", "all" or {"count": n}`},
		{"condition array", "POST", suspend, `{"waitpoints":[` + p + `],"condition":["all"]}`, `condition: must be "any", "all" or {"count": n}`},
		// suspend's waitpoints
		{"pending and key in one item", "POST", suspend, `{"waitpoints":[{"key":"a","pending":"` + pending.WaitpointID + `"}]}`, `waitpoints: each item must hold "key" or "pending", not both`},
		{"pending not a UUID", "POST", suspend, `{"waitpoints":[{"pending":"p"}]}`, "waitpoints.pending: must be a lowercase canonical UUID"},
		{"pending twice", "POST", suspend, `{"waitpoints":[` + p + `,` + p + `]}`, "waitpoints.pending: must name each pending waitpoint once"},
		{"empty item", "POST", suspend, `{"waitpoints":[` + p + `,{}]}`, "waitpoints.key: must be 1-128 bytes of [A-Za-z0-9._:-]"},
		{"unknown member in an item", "POST", suspend, `{"waitpoints":[{"pending":"` + pending.WaitpointID + `","when":1}]}`, `body: has an unknown field "when"`},
		{"pending of the wrong type", "POST", suspend, `{"waitpoints":[{"pending":7}]}`, "waitpoints.pending: has the wrong JSON type; expected string"},
		{"pending not UTF-8", "POST", suspend, "{\"waitpoints\":[{\"pending\":\"\xff\"}]}", "waitpoints: must be valid UTF-8"},
		// suspend's tags
		{"eleven tags", "POST", suspend, `{"waitpoints":[` + p + `],"tags":` + eleven + `}`, "tags: must hold at most 10 tags"},
		{"a tag twice", "POST", suspend, `{"waitpoints":[` + p + `],"tags":["a","a"]}`, "tags: must not repeat a tag"},
		{"a bad tag", "POST", suspend, `{"waitpoints":[` + p + `],"tags":["a b"]}`, "tags: each tag must be 1-64 bytes of [A-Za-z0-9._:-]"},
		{"an empty tag", "POST", suspend, `{"waitpoints":[` + p + `],"tags":[""]}`, "tags: each tag must be 1-64 bytes of [A-Za-z0-9._:-]"},
		{"tags not a list", "POST", suspend, `{"waitpoints":[` + p + `],"tags":"a"}`, "tags: has the wrong JSON type; expected []string"},
		{"a tag not UTF-8", "POST", suspend, "{\"waitpoints\":[" + p + "],\"tags\":[\"\xfe\"]}", "tags: must be valid UTF-8"},
		// create_waitpoint
		{"no expires_in_ms", "POST", create, `{"key":"k"}`, "expires_in_ms: must be an integer from 1 to 9007199254740991"},
		{"expires_in_ms 0", "POST", create, `{"key":"k","expires_in_ms":0}`, "expires_in_ms: must be an integer from 1 to 9007199254740991"},
		{"expires_in_ms too large", "POST", create, `{"key":"k","expires_in_ms":9007199254740992}`, "expires_in_ms: must be an integer from 1 to 9007199254740991"},
		{"expires_in_ms a string", "POST", create, `{"key":"k","expires_in_ms":"1000"}`, "expires_in_ms: has the wrong JSON type; expected int64"},
		{"no key", "POST", create, `{"expires_in_ms":1000}`, "key: must be 1-128 bytes of [A-Za-z0-9._:-]"},
		{"key ..", "POST", create, `{"key":"..","expires_in_ms":1000}`, `key: must not be "." or ".."`},
		{"key not UTF-8", "POST", create, "{\"key\":\"k\xff\",\"expires_in_ms\":1000}", "key: must be valid UTF-8"},
		{"lease_id not a UUID", "POST", create, `{"key":"k","expires_in_ms":1000,"lease_id":"L"}`, "lease_id: must be a lowercase canonical UUID"},
		{"eleven tags on create", "POST", create, `{"key":"k","expires_in_ms":1000,"tags":` + eleven + `}`, "tags: must hold at most 10 tags"},
		{"unknown member on create", "POST", create, `{"key":"k","expires_in_ms":1000,"token":"t"}`, `body: has an unknown field "token"`},
		{"create path not UTF-8", "POST", "/v1/admin/executions/%FF/waitpoints", `{"key":"k","expires_in_ms":1000}`, "execution_id: must be valid UTF-8"},
		// get_waitpoint
		{"waitpoint_id not a UUID", "GET", "/v1/admin/executions/exec-2/waitpoints/w", "", "waitpoint_id: must be a lowercase canonical UUID"},
		{"waitpoint_id not UTF-8", "GET", "/v1/admin/executions/exec-2/waitpoints/%FE", "", "waitpoint_id: must be valid UTF-8"},
		// extend, release, cancel
		{"extend lease_ms negative", "POST", "/v1/admin/executions/exec-2/extend", `{"lease_id":"` + lease + `","lease_ms":-1}`, "lease_ms: must be an integer from 1 to 9007199254740991"},
		{"extend without lease_id", "POST", "/v1/admin/executions/exec-2/extend", `{"lease_ms":1000}`, "lease_id: must be a lowercase canonical UUID"},
		{"extend body not an object", "POST", "/v1/admin/executions/exec-2/extend", `[]`, "body: must be one JSON object"},
		{"release without lease_id", "POST", "/v1/admin/executions/exec-2/release", `{}`, "lease_id: must be a lowercase canonical UUID"},
		{"release lease_id not UTF-8", "POST", "/v1/admin/executions/exec-2/release", "{\"lease_id\":\"\xff\"}", "lease_id: must be valid UTF-8"},
		{"cancel with a member", "POST", "/v1/admin/executions/exec-1/cancel", `{"reason":"x"}`, `body: has an unknown field "reason"`},
		{"cancel with garbage", "POST", "/v1/admin/executions/exec-1/cancel", `nope`, "body: must be one JSON object"},
		{"cancel path not UTF-8", "POST", "/v1/admin/executions/%FF/cancel", "", "execution_id: must be valid UTF-8"},
		// list_suspended
		{"tag filter", "GET", "/v1/admin/suspended?tag=a%20b", "", "tag: each tag must be 1-64 bytes of [A-Za-z0-9._:-]"},
		{"tag filter not UTF-8", "GET", "/v1/admin/suspended?tag=%FF", "", "tag: must be valid UTF-8"},
	} {
		status, e, body := s.admin(c.method, c.path, c.body)
		wantRefused(t, c.name, status, e, body, c.detail)
	}

	// Nothing was written: exec-1 alone is suspended (and not cancelled),
	// the pending waitpoint is as it was, exec-3 was never made.
	l, err := s.e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{})
	if err != nil || len(l.Executions) != 1 || l.Executions[0].ExecutionID != "exec-1" {
		t.Fatalf("list_suspended: %v %+v, want exec-1 alone", err, l)
	}
	if after := s.adminOK("GET", wpPath, "", nil); after != before {
		t.Fatalf("the pending waitpoint changed:\n%s%s", before, after)
	}
	status, e, body := s.admin("POST", "/v1/admin/executions/exec-3/cancel", "")
	wantStatus(t, "exec-3", status, e, body, http.StatusNotFound, contracts.CodeExecutionNotFound)
}

// v1Backend is a memory backend seen through driver.Backend alone: a driver
// written before docs/spec.md §8.
type v1Backend struct{ driver.Backend }

// TestLifecycleUnsupported: on a backend without driver.Lifecycle, the new
// routes and the version 2 members answer 501 unavailable / unsupported,
// without Retry-After (asking again will not help).
func TestLifecycleUnsupported(t *testing.T) {
	e := engine.New(v1Backend{memory.New()})
	t.Cleanup(func() { _ = e.Close() })
	if _, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(bytes.Repeat([]byte{7}, 32))}); err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(e, httpapi.Options{AdminToken: textAdmin, Logger: slog.New(slog.DiscardHandler)})
	s := &textServer{t: t, e: e, h: h}
	id := driver.NewID()
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/admin/executions/e/waitpoints", `{"key":"k","expires_in_ms":1000}`},
		{"GET", "/v1/admin/executions/e/waitpoints/" + id, ""},
		{"POST", "/v1/admin/executions/e/extend", `{"lease_id":"` + id + `"}`},
		{"POST", "/v1/admin/executions/e/release", `{"lease_id":"` + id + `"}`},
		{"POST", "/v1/admin/executions/e/cancel", ""},
		{"POST", "/v1/admin/executions/e/suspend", `{"waitpoints":[{"key":"w"}],"tags":["t"]}`},
		{"POST", "/v1/admin/executions/e/suspend", `{"waitpoints":[{"key":"w"}],"condition":{"count":1}}`},
		{"POST", "/v1/admin/executions/e/suspend", `{"waitpoints":[{"pending":"` + id + `"}]}`},
		{"GET", "/v1/admin/suspended?tag=t", ""},
	} {
		status, e, body := s.admin(c.method, c.path, c.body)
		wantStatus(t, c.method+" "+c.path+" "+c.body, status, e, body, http.StatusNotImplemented, contracts.CodeUnsupported)
		if e != nil && (e.Kind != contracts.KindUnavailable || e.Retryable) {
			t.Errorf("%s %s: %+v, want unavailable, not retryable", c.method, c.path, e)
		}
	}
	w := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "http://ff.test/v1/admin/executions/e/cancel", nil)
	req.Header.Set("Authorization", "Bearer "+textAdmin)
	h.ServeHTTP(w, req)
	if w.Code != http.StatusNotImplemented || w.Header().Get("Retry-After") != "" {
		t.Fatal("unsupported answered with Retry-After")
	}
	s.adminOK("POST", "/v1/admin/executions/e/suspend", `{"waitpoints":[{"key":"w"}],"condition":"all"}`, nil)
	if got := httpapi.StatusOf(contracts.ErrUnsupported.With("x")); got != http.StatusNotImplemented {
		t.Fatalf("StatusOf(unsupported) = %d", got)
	}
}

// TestLifecycleMetrics: the new operations are counted under their names.
func TestLifecycleMetrics(t *testing.T) {
	s := newTextServer(t)
	var created contracts.CreateWaitpointOutcome
	s.adminOK("POST", "/v1/admin/executions/e/waitpoints", `{"key":"k","expires_in_ms":1000}`, &created)
	s.adminOK("GET", "/v1/admin/executions/e/waitpoints/"+created.WaitpointID, "", nil)
	s.admin("POST", "/v1/admin/executions/e/extend", `{"lease_id":"`+driver.NewID()+`"}`)
	s.admin("POST", "/v1/admin/executions/e/release", `{"lease_id":"`+driver.NewID()+`"}`)
	s.adminOK("POST", "/v1/admin/executions/exec-1/cancel", "", nil)
	var buf bytes.Buffer
	if err := s.h.(*httpapi.Handler).WriteMetrics(&buf); err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{
		`ff_http_requests_total{outcome="ok",route="create_waitpoint"} 1`,
		`ff_http_requests_total{outcome="ok",route="get_waitpoint"} 1`,
		`ff_http_requests_total{outcome="lease_mismatch",route="extend_lease"} 1`,
		`ff_http_requests_total{outcome="lease_mismatch",route="release_execution"} 1`,
		`ff_http_requests_total{outcome="ok",route="cancel_suspension"} 1`,
	} {
		if !strings.Contains(buf.String(), series) {
			t.Errorf("metrics lack %s:\n%s", series, buf.String())
		}
	}
}
