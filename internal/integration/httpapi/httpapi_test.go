package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

const (
	adminToken = "admin-test-token-0123456789"
	secretHex  = "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2"
)

// api is a real loopback server over one backend, with its log captured.
type api struct {
	t   *testing.T
	e   *engine.Engine
	srv *httptest.Server
	log *bytes.Buffer
}

func newAPI(t *testing.T, e *engine.Engine, admin string) *api {
	t.Helper()
	var logs bytes.Buffer
	h := httpapi.New(e, httpapi.Options{AdminToken: admin, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); _ = e.Close() })
	return &api{t: t, e: e, srv: srv, log: &logs}
}

// do sends a request and returns status, headers and body.
func (a *api) do(method, path, bearer, body string) (int, http.Header, string) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// ok sends an admin request that must succeed and decodes its envelope.
func (a *api) ok(method, path, body string, into any) {
	a.t.Helper()
	status, _, got := a.do(method, path, adminToken, body)
	if status != http.StatusOK {
		a.t.Fatalf("%s %s = %d %s", method, path, status, got)
	}
	if into != nil {
		if err := json.Unmarshal([]byte(got), into); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, got)
		}
	}
}

// wantError checks status and error code of a failed request.
func (a *api) wantError(status int, code string, method, path, bearer, body string) http.Header {
	a.t.Helper()
	gotStatus, hdr, got := a.do(method, path, bearer, body)
	var env contracts.ErrorEnvelope
	if err := json.Unmarshal([]byte(got), &env); err != nil || env.Error == nil {
		a.t.Fatalf("%s %s: body %q is not an error envelope", method, path, got)
	}
	if gotStatus != status || env.Error.Code != code {
		a.t.Fatalf("%s %s = %d %s, want %d %s", method, path, gotStatus, got, status, code)
	}
	return hdr
}

func TestRoutesAndStatusCodes(t *testing.T) {
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			a := newAPI(t, bc.open(t), adminToken)

			// Given a seeded keystore and an execution suspended on two waitpoints.
			var seeded contracts.SeedOutcome
			a.ok("POST", "/v1/admin/keystore/seed", `{"kid":"k1","secret_hex":"`+secretHex+`"}`, &seeded)
			if seeded.Outcome != contracts.SeedSeeded {
				t.Fatalf("seed: %+v", seeded)
			}
			var sus contracts.SuspendOutcome
			a.ok("POST", "/v1/admin/executions/run-1/suspend", `{"waitpoints":[{"key":"approve"},{"key":"reject"}],"condition":"any"}`, &sus)
			wp := sus.Waitpoints[0]
			signalPath := "/v1/executions/run-1/waitpoints/" + wp.WaitpointID + "/signals"

			// Public route: no token 401, tampered token 401, bad JSON 400, oversized 413.
			a.wantError(401, contracts.CodeInvalidToken, "POST", signalPath, "", `{"name":"approved"}`)
			tampered := wp.Token[:len(wp.Token)-1] + flip(wp.Token[len(wp.Token)-1])
			a.wantError(401, contracts.CodeInvalidToken, "POST", signalPath, tampered, `{"name":"approved"}`)
			a.wantError(400, contracts.CodeInvalidInput, "POST", signalPath, wp.Token, `{"name":`)
			a.wantError(400, contracts.CodeInvalidInput, "POST", signalPath, wp.Token, `{"name":"a","extra":1}`)
			a.wantError(400, contracts.CodeInvalidInput, "POST", signalPath, wp.Token, `{"name":"a"} {}`)
			huge := `{"name":"a","payload":"` + strings.Repeat("x", httpapi.DefaultMaxBodyBytes) + `"}`
			a.wantError(413, httpapi.CodeBodyTooLarge, "POST", signalPath, wp.Token, huge)
			a.wantError(405, httpapi.CodeMethodNotAllowed, "GET", signalPath, wp.Token, "")
			a.wantError(404, httpapi.CodeRouteNotFound, "GET", "/v1/nothing-here", "", "")

			// When the signal is delivered with its token, it resumes the execution.
			status, _, body := a.do("POST", signalPath, wp.Token, `{"name":"approved","payload":{"by":"ana"},"idempotency_key":"i1"}`)
			var del contracts.DeliverSignalOutcome
			if err := json.Unmarshal([]byte(body), &del); status != 200 || err != nil || !del.Resumed {
				t.Fatalf("deliver = %d %s", status, body)
			}
			// A replay is a duplicate naming the same signal; the other waitpoint is closed (409).
			_, _, body = a.do("POST", signalPath, wp.Token, `{"name":"approved","idempotency_key":"i1"}`)
			if !strings.Contains(body, `"outcome":"duplicate"`) || !strings.Contains(body, del.SignalID) {
				t.Fatalf("replay = %s", body)
			}
			other := sus.Waitpoints[1]
			a.wantError(409, contracts.CodeWaitpointClosed, "POST", "/v1/executions/run-1/waitpoints/"+other.WaitpointID+"/signals", other.Token, `{"name":"late"}`)

			// Admin routes: observe, list, claim, complete; 404 after completion.
			var obs contracts.ObserveSignalsResult
			a.ok("GET", "/v1/admin/executions/run-1/signals", "", &obs)
			if len(obs.Signals) != 1 || string(obs.Signals[0].Payload) != `{"by":"ana"}` {
				t.Fatalf("observe: %+v", obs)
			}
			var list contracts.ListSuspendedResult
			a.ok("GET", "/v1/admin/suspended?limit=5", "", &list)
			if len(list.Executions) != 0 || list.NextCursor != nil {
				t.Fatalf("list: %+v", list)
			}
			a.wantError(400, contracts.CodeInvalidInput, "GET", "/v1/admin/suspended?limit=abc", adminToken, "")
			a.wantError(400, contracts.CodeInvalidInput, "GET", "/v1/admin/suspended?cursor=%21%21", adminToken, "")
			var claim contracts.ClaimOutcome
			a.ok("POST", "/v1/admin/claim", `{"worker_id":"w1","lease_ms":60000}`, &claim)
			if claim.Outcome != contracts.OutcomeClaimed || claim.Reason != contracts.ReasonSignal {
				t.Fatalf("claim: %+v", claim)
			}
			a.wantError(409, contracts.CodeLeaseMismatch, "POST", "/v1/admin/executions/run-1/complete", adminToken, `{"lease_id":"`+driver.NewID()+`"}`)
			a.ok("POST", "/v1/admin/executions/run-1/complete", `{"lease_id":"`+claim.LeaseID+`"}`, nil)
			a.wantError(404, contracts.CodeExecutionNotFound, "GET", "/v1/admin/executions/run-1/signals", adminToken, "")

			// Keystore admin: sign, verify, rotate, kids; conflicts are 409.
			var signed contracts.SignResult
			a.ok("POST", "/v1/admin/sign", `{"scope":"s","message":"m"}`, &signed)
			a.ok("POST", "/v1/admin/verify", `{"scope":"s","message":"m","token":"`+signed.Token+`"}`, nil)
			a.wantError(401, contracts.CodeInvalidToken, "POST", "/v1/admin/verify", adminToken, `{"scope":"s","message":"other","token":"`+signed.Token+`"}`)
			var rot contracts.RotateAllResult
			a.ok("POST", "/v1/admin/keystore/rotate", `{"new_kid":"k2","new_secret_hex":"`+strings.Repeat("ab", 32)+`","grace_ms":60000}`, &rot)
			if rot.Failed() || rot.Entries[0].Outcome.Outcome != contracts.RotateRotated {
				t.Fatalf("rotate: %+v", rot)
			}
			status, _, body = a.do("POST", "/v1/admin/keystore/rotate", adminToken, `{"new_kid":"k2","new_secret_hex":"`+strings.Repeat("cd", 32)+`"}`)
			if status != 200 || !strings.Contains(body, `"code":"rotation_conflict"`) {
				t.Fatalf("conflicting rotation = %d %s", status, body)
			}
			var kids contracts.ListKidsResult
			a.ok("GET", "/v1/admin/keystore/kids", "", &kids)
			if *kids.Partitions[0].CurrentKid != "k2" || kids.Partitions[0].Verifying[0].Kid != "k1" {
				t.Fatalf("kids: %+v", kids)
			}
			a.wantError(400, contracts.CodeInvalidInput, "POST", "/v1/admin/keystore/seed", adminToken, `{"kid":"k:bad","secret_hex":"`+secretHex+`"}`)
			a.wantError(400, contracts.CodeInvalidInput, "POST", "/v1/admin/keystore/seed", adminToken, `{"kid":"k3","secret_hex":"zz"}`)

			// Health, readiness and metrics.
			if s, _, _ := a.do("GET", "/healthz", "", ""); s != 200 {
				t.Fatalf("healthz = %d", s)
			}
			if s, _, _ := a.do("GET", "/readyz", "", ""); s != 200 {
				t.Fatalf("readyz = %d", s)
			}
			_, _, metrics := a.do("GET", "/metrics", "", "")
			for _, want := range []string{
				`ff_http_requests_total{outcome="ok",route="deliver_signal"} 2`,
				`ff_token_verification_failures_total{reason="signature_mismatch"} 2`,
				`ff_token_verification_failures_total{reason="malformed"} 1`,
				// One rotation outcome per partition.
				fmt.Sprintf(`ff_rotations_total{outcome="rotated"} %d`, a.e.Capabilities().Partitions),
				fmt.Sprintf(`ff_rotations_total{outcome="rotation_conflict"} %d`, a.e.Capabilities().Partitions),
				`ff_http_request_duration_seconds_bucket`,
			} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %q", want)
				}
			}

			// Nothing secret reached the log: no secret hex, no token MAC, no admin token.
			logs := a.log.String()
			for _, secret := range []string{secretHex, strings.Repeat("ab", 32), wp.Token[len(wp.Token)-64:], adminToken} {
				if strings.Contains(strings.ToLower(logs), secret) {
					t.Fatalf("log leaks a secret value")
				}
			}
			if !strings.Contains(logs, `"route":"deliver_signal"`) || !strings.Contains(logs, `"request_id"`) {
				t.Fatalf("log lacks request lines: %s", logs)
			}
		})
	}
}

func TestAdminAuth(t *testing.T) {
	off := newAPI(t, engine.New(memory.New()), "")
	off.wantError(403, httpapi.CodeAdminDisabled, "GET", "/v1/admin/keystore/kids", "anything", "")

	on := newAPI(t, engine.New(memory.New()), adminToken)
	on.wantError(401, httpapi.CodeUnauthorized, "GET", "/v1/admin/keystore/kids", "", "")
	on.wantError(401, httpapi.CodeUnauthorized, "GET", "/v1/admin/keystore/kids", adminToken+"x", "")
	on.ok("GET", "/v1/admin/keystore/kids", "", nil)
}

func TestRetryableErrorsCarryRetryAfter(t *testing.T) {
	e := engine.New(memory.New())
	a := newAPI(t, e, adminToken)
	_ = e.Close() // a closed backend answers unavailable: 503 with Retry-After only when retryable
	hdr := a.wantError(503, contracts.CodeBackendClosed, "GET", "/readyz", "", "")
	if hdr.Get("Retry-After") != "" {
		t.Fatal("a non-retryable error must not carry Retry-After")
	}
	for _, c := range []struct {
		err    contracts.Sentinel
		status int
	}{
		{contracts.ErrSerializationRetryExhausted, 429},
		{contracts.ErrBackendUnreachable, 503},
		{contracts.ErrTokenExpired, 401},
		{contracts.ErrAlreadySuspended, 409},
		{contracts.ErrWaitpointClosed, 409},
		{contracts.ErrExecutionNotFound, 404},
		{contracts.ErrInvalidInput, 400},
	} {
		if got := httpapi.StatusOf(c.err.With("x")); got != c.status {
			t.Errorf("StatusOf(%s) = %d, want %d", c.err.Code(), got, c.status)
		}
	}
}

func flip(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

func TestUncleanPathsAnswerAnEnvelope(t *testing.T) {
	a := newAPI(t, engine.New(memory.New()), adminToken)
	for _, p := range []string{"//", "/v1/admin//sign", "/v1/admin/./sign", "/v1/executions/a/waitpoints/x/../signals"} {
		a.wantError(404, httpapi.CodeRouteNotFound, "POST", p, adminToken, `{}`)
	}
}
