package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// TestLifecycleOverHTTP runs the routes of docs/spec.md §8 on every backend:
// the approval mail (create_waitpoint, a delivery on the public route
// before the suspend, get_waitpoint, already_satisfied), a quorum with
// tags and the tag filter, cancel, the heartbeat and release, each with
// the status of its outcome or error.
func TestLifecycleOverHTTP(t *testing.T) {
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			a := newAPI(t, bc.open(t), adminToken)
			a.ok("POST", "/v1/admin/keystore/seed", `{"kid":"k1","secret_hex":"`+secretHex+`"}`, nil)

			// The approval mail goes out before the execution suspends, and the answer comes back.
			var created contracts.CreateWaitpointOutcome
			a.ok("POST", "/v1/admin/executions/order-7/waitpoints", `{"key":"approve","expires_in_ms":86400000,"tags":["mail"]}`, &created)
			if created.Outcome != contracts.OutcomeCreated || created.ExpiresAtMs != created.CreatedAtMs+86400000 || len(created.Tags) != 1 {
				t.Fatalf("create_waitpoint: %+v", created)
			}
			signal := "/v1/executions/order-7/waitpoints/" + created.WaitpointID + "/signals"
			status, _, body := a.do("POST", signal, created.Token, `{"name":"approved","payload":{"by":"ana"},"idempotency_key":"mail-1"}`)
			var sig contracts.DeliverSignalOutcome
			if status != http.StatusOK || json.Unmarshal([]byte(body), &sig) != nil || sig.Outcome != contracts.OutcomeAccepted || sig.Resumed {
				t.Fatalf("deliver to the pending waitpoint = %d %s", status, body)
			}
			a.wantError(http.StatusNotFound, contracts.CodeExecutionNotFound, "GET", "/v1/admin/executions/order-7/signals", adminToken, "")
			var info contracts.WaitpointInfo
			get := "/v1/admin/executions/order-7/waitpoints/" + created.WaitpointID
			a.ok("GET", get, "", &info)
			if info.Status != contracts.WaitpointPending || info.Signals != 1 || info.TokenFingerprint == nil ||
				*info.TokenFingerprint != driver.TokenFingerprint(created.Token) {
				t.Fatalf("get_waitpoint: %+v", info)
			}
			var sus contracts.SuspendOutcome
			a.ok("POST", "/v1/admin/executions/order-7/suspend", `{"waitpoints":[{"pending":"`+created.WaitpointID+`"}],"idempotency_key":"s1"}`, &sus)
			if sus.Outcome != contracts.OutcomeAlreadySatisfied || len(sus.Signals) != 1 || sus.Signals[0].SignalID != sig.SignalID {
				t.Fatalf("suspend with the pending waitpoint: %+v", sus)
			}
			a.ok("GET", get, "", &info)
			if info.Status != contracts.WaitpointClosed {
				t.Fatalf("get_waitpoint after already_satisfied: %+v", info)
			}
			a.wantError(http.StatusConflict, contracts.CodeWaitpointClosed, "POST", signal, created.Token, `{"name":"late"}`)
			a.wantError(http.StatusConflict, contracts.CodePendingWaitpointUnavailable, "POST", "/v1/admin/executions/order-8/suspend", adminToken,
				`{"waitpoints":[{"pending":"`+created.WaitpointID+`"}]}`)
			a.wantError(http.StatusNotFound, contracts.CodeWaitpointNotFound, "GET", "/v1/admin/executions/order-8/waitpoints/"+created.WaitpointID, adminToken, "")

			// Two of three, tagged; the filter finds it.
			a.ok("POST", "/v1/admin/executions/deal-1/suspend",
				`{"waitpoints":[{"key":"cfo"},{"key":"ceo"},{"key":"legal"}],"condition":{"count":2},"tags":["q3"]}`, &sus)
			a.ok("POST", "/v1/admin/executions/deal-2/suspend", `{"waitpoints":[{"key":"cfo"}],"tags":["q4"]}`, nil)
			var page contracts.ListSuspendedResult
			a.ok("GET", "/v1/admin/suspended?tag=q3", "", &page)
			if len(page.Executions) != 1 || page.Executions[0].ExecutionID != "deal-1" || strings.Join(page.Executions[0].Tags, ",") != "q3" {
				t.Fatalf("list_suspended?tag=q3: %+v", page)
			}
			for i, resumed := range []bool{false, true} {
				w := sus.Waitpoints[i]
				status, _, body := a.do("POST", "/v1/executions/deal-1/waitpoints/"+w.WaitpointID+"/signals", w.Token, `{"name":"approved"}`)
				if status != http.StatusOK || !strings.Contains(body, `"resumed":`+map[bool]string{true: "true", false: "false"}[resumed]) {
					t.Fatalf("signal %d of 2 = %d %s", i+1, status, body)
				}
			}

			// Heartbeat and release; then cancel the other.
			var claim contracts.ClaimOutcome
			a.ok("POST", "/v1/admin/claim", `{"worker_id":"w1"}`, &claim)
			if claim.ExecutionID != "deal-1" || claim.Reason != contracts.ReasonSignal {
				t.Fatalf("claim: %+v", claim)
			}
			var ext contracts.ExtendLeaseOutcome
			a.ok("POST", "/v1/admin/executions/deal-1/extend", `{"lease_id":"`+claim.LeaseID+`","lease_ms":120000}`, &ext)
			if ext.Outcome != contracts.OutcomeExtended || ext.LeaseExpiresAtMs < claim.LeaseExpiresAtMs+60000 {
				t.Fatalf("extend: %+v after %+v", ext, claim)
			}
			a.ok("POST", "/v1/admin/executions/deal-1/release", `{"lease_id":"`+claim.LeaseID+`"}`, nil)
			a.wantError(http.StatusConflict, contracts.CodeLeaseMismatch, "POST", "/v1/admin/executions/deal-1/extend", adminToken, `{"lease_id":"`+claim.LeaseID+`"}`)
			a.wantError(http.StatusConflict, contracts.CodeLeaseMismatch, "POST", "/v1/admin/executions/deal-1/complete", adminToken, `{"lease_id":"`+claim.LeaseID+`"}`)
			var again contracts.ClaimOutcome
			a.ok("POST", "/v1/admin/claim", `{"worker_id":"w2"}`, &again)
			if again.ExecutionID != "deal-1" || again.Reason != contracts.ReasonSignal || again.LeaseID == claim.LeaseID {
				t.Fatalf("claim after release: %+v", again)
			}
			a.ok("POST", "/v1/admin/executions/deal-1/complete", `{"lease_id":"`+again.LeaseID+`"}`, nil)
			a.wantError(http.StatusNotFound, contracts.CodeExecutionNotFound, "POST", "/v1/admin/executions/deal-1/release", adminToken, `{"lease_id":"`+again.LeaseID+`"}`)

			var cancelled contracts.CancelOutcome
			a.ok("POST", "/v1/admin/executions/deal-2/cancel", "", &cancelled)
			if cancelled.Outcome != contracts.OutcomeCancelled || cancelled.ExecutionID != "deal-2" {
				t.Fatalf("cancel: %+v", cancelled)
			}
			a.wantError(http.StatusConflict, contracts.CodeNotSuspended, "POST", "/v1/admin/executions/deal-2/cancel", adminToken, "")
			a.wantError(http.StatusNotFound, contracts.CodeExecutionNotFound, "POST", "/v1/admin/executions/nobody/cancel", adminToken, "{}")
			a.ok("POST", "/v1/admin/claim", `{"worker_id":"w3"}`, &claim)
			if claim.ExecutionID != "deal-2" || claim.Reason != contracts.ReasonCancelled {
				t.Fatalf("claim after cancel: %+v", claim)
			}

			// Refusals reach no driver.
			a.wantError(http.StatusBadRequest, contracts.CodeInvalidInput, "POST", "/v1/admin/executions/x/suspend", adminToken, `{"waitpoints":[{"key":"a"}],"condition":{"count":2}}`)
			a.wantError(http.StatusBadRequest, contracts.CodeInvalidInput, "POST", "/v1/admin/executions/x/waitpoints", adminToken, `{"key":"k"}`)
			a.wantError(http.StatusBadRequest, contracts.CodeInvalidInput, "GET", "/v1/admin/suspended?tag=a%20b", adminToken, "")
			a.wantError(http.StatusNotFound, contracts.CodeExecutionNotFound, "GET", "/v1/admin/executions/x/signals", adminToken, "")

			_, _, metrics := a.do("GET", "/metrics", "", "")
			for _, route := range []string{"create_waitpoint", "get_waitpoint", "extend_lease", "release_execution", "cancel_suspension"} {
				if !strings.Contains(metrics, `route="`+route+`"`) {
					t.Errorf("metrics lack route %s", route)
				}
			}
			if strings.Contains(a.log.String(), created.Token[len(created.Token)-64:]) {
				t.Fatal("the log leaks a waitpoint token")
			}
		})
	}
}
