package conformance

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// sigValidationCase is one call the Engine must reject before any I/O with
// validation / invalid_input naming field.
type sigValidationCase struct {
	step  string
	field string
	call  func(w *sigWorld) error
}

// sigValidationScenarios: every §2 rule of the suspension operations is
// rejected with validation / invalid_input naming the field, and changes
// nothing (list_suspended and observe_signals before and after agree).
func sigValidationScenarios(t *testing.T, suite sigSuite) {
	w := suite.open(t)

	// given one suspended execution with a valid token
	s := w.mustSuspend("suspend", suspendArgs("valid-1", contracts.ConditionAll, "a", "b"))
	before := sigSnapshot(w, "valid-1")

	for _, c := range sigValidationCases(s) {
		t.Run(c.step, func(t *testing.T) {
			err := c.call(w)
			w.record(c.step, nil, err)
			sigWantInvalid(t, c.step, err, c.field)
			ce := sigWantErr(t, c.step, err, contracts.ErrInvalidInput)
			require.False(t, ce.Retryable, "%s: retryable", c.step)
			require.Empty(t, ce.Reason, "%s: want reason null", c.step)
		})
	}

	// then nothing changed
	require.JSONEq(t, before, sigSnapshot(w, "valid-1"), "rejected calls changed the state")
	for _, id := range []string{"fresh-1", "fresh-2"} {
		_, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: id})
		require.Error(t, err, "a rejected suspend created %s", id)
	}
	// and a zero limit is the default, not an error
	out, err := w.e.ListSuspended(ctx(), contracts.ListSuspendedArgs{Limit: 0})
	require.NoError(t, err, "limit 0: want the default limit")
	require.Len(t, out.Executions, 1, "limit 0: want the default limit")
	sigValidationAccepted(t, w, s)
	w.golden("signals_validation")
}

// nestedPayload is a payload of depth arrays nested in one another.
func nestedPayload(depth int) json.RawMessage {
	return json.RawMessage(strings.Repeat("[", depth) + strings.Repeat("]", depth))
}

// sigValidationAccepted: what the rules above must not refuse is accepted
// and comes back unchanged. A payload nested 64 deep; a surrogate pair in
// an escape; the same member name in different objects; identifiers made
// of dots that are not "." or "..".
func sigValidationAccepted(t *testing.T, w *sigWorld, s contracts.SuspendOutcome) {
	payloads := []json.RawMessage{
		nestedPayload(contracts.MaxPayloadDepth),
		json.RawMessage(`{"memo":"\ud83d\ude00","a":{"a":1},"b":[{"a":1},{"a":2}]}`),
	}
	for i, p := range payloads {
		d := signalTo(s, "a", "...", "")
		d.Payload = p
		w.mustDeliver([]string{"deliver_payload_depth_64", "deliver_payload_surrogate_pair_and_nested_names"}[i], d)
	}
	// checked here, not spelled out in the golden file
	o, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: s.ExecutionID})
	require.NoError(t, err, "observe")
	require.Len(t, o.Signals, len(payloads), "observe: want the accepted signals")
	for i, p := range payloads {
		require.JSONEq(t, string(p), string(o.Signals[i].Payload), "observe: want payload %d back unchanged", i)
		require.Equal(t, "...", o.Signals[i].Name, "observe: want the signal name ...")
	}
	dots := suspendArgs("...", contracts.ConditionAny, ".a", "a.", "a..b")
	w.mustSuspend("suspend_dotted_identifiers", dots)
}

// sigSnapshot is list_suspended and observe_signals of exec as one JSON
// array.
func sigSnapshot(w *sigWorld, exec string) string {
	w.t.Helper()
	l, err := w.e.ListSuspended(ctx(), contracts.ListSuspendedArgs{})
	require.NoError(w.t, err, "snapshot: list_suspended")
	o, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: exec})
	require.NoError(w.t, err, "snapshot: observe_signals")
	return "[" + sigMarshal(w.t, l) + "," + sigMarshal(w.t, o) + "]"
}

// sigValidationCases lists the rejected calls against the suspension s.
func sigValidationCases(s contracts.SuspendOutcome) []sigValidationCase {
	var cases []sigValidationCase
	cases = append(cases, suspendValidationCases()...)
	cases = append(cases, deliverValidationCases(s)...)
	return append(cases, otherValidationCases()...)
}

func suspendCase(step, field string, change func(*contracts.SuspendArgs)) sigValidationCase {
	return sigValidationCase{step, field, func(w *sigWorld) error {
		a := suspendArgs("fresh-1", contracts.ConditionAny, "a")
		change(&a)
		_, err := w.e.Suspend(ctx(), a)
		return err
	}}
}

func waitpointKeys(n int) []contracts.WaitpointSpec {
	out := make([]contracts.WaitpointSpec, n)
	for i := range out {
		out[i] = contracts.WaitpointSpec{Key: "k" + strings.Repeat("x", i)}
	}
	return out
}

func suspendValidationCases() []sigValidationCase {
	return []sigValidationCase{
		suspendCase("suspend_execution_id_empty", "execution_id", func(a *contracts.SuspendArgs) { a.ExecutionID = "" }),
		suspendCase("suspend_execution_id_space", "execution_id", func(a *contracts.SuspendArgs) { a.ExecutionID = "fresh 1" }),
		suspendCase("suspend_execution_id_non_ascii", "execution_id", func(a *contracts.SuspendArgs) { a.ExecutionID = "fresh-é" }),
		suspendCase("suspend_execution_id_129_bytes", "execution_id", func(a *contracts.SuspendArgs) { a.ExecutionID = strings.Repeat("e", 129) }),
		suspendCase("suspend_execution_id_dot", "execution_id", func(a *contracts.SuspendArgs) { a.ExecutionID = "." }),
		suspendCase("suspend_execution_id_dot_dot", "execution_id", func(a *contracts.SuspendArgs) { a.ExecutionID = ".." }),
		suspendCase("suspend_0_waitpoints", "waitpoints", func(a *contracts.SuspendArgs) { a.Waitpoints = nil }),
		suspendCase("suspend_17_waitpoints", "waitpoints", func(a *contracts.SuspendArgs) { a.Waitpoints = waitpointKeys(17) }),
		suspendCase("suspend_duplicate_keys", "waitpoints.key", func(a *contracts.SuspendArgs) {
			a.Waitpoints = []contracts.WaitpointSpec{{Key: "a"}, {Key: "b"}, {Key: "a"}}
		}),
		suspendCase("suspend_key_empty", "waitpoints.key", func(a *contracts.SuspendArgs) { a.Waitpoints = []contracts.WaitpointSpec{{Key: ""}} }),
		suspendCase("suspend_key_slash", "waitpoints.key", func(a *contracts.SuspendArgs) { a.Waitpoints = []contracts.WaitpointSpec{{Key: "a/b"}} }),
		suspendCase("suspend_key_129_bytes", "waitpoints.key", func(a *contracts.SuspendArgs) {
			a.Waitpoints = []contracts.WaitpointSpec{{Key: strings.Repeat("k", 129)}}
		}),
		suspendCase("suspend_key_dot", "waitpoints.key", func(a *contracts.SuspendArgs) { a.Waitpoints = []contracts.WaitpointSpec{{Key: "."}} }),
		suspendCase("suspend_key_dot_dot", "waitpoints.key", func(a *contracts.SuspendArgs) {
			a.Waitpoints = []contracts.WaitpointSpec{{Key: "a"}, {Key: ".."}}
		}),
		suspendCase("suspend_condition_bad", "condition", func(a *contracts.SuspendArgs) { a.Condition = "most" }),
		suspendCase("suspend_condition_upper", "condition", func(a *contracts.SuspendArgs) { a.Condition = "ANY" }),
		suspendCase("suspend_timeout_0", "timeout_ms", func(a *contracts.SuspendArgs) { a.TimeoutMs = sigPtr[int64](0) }),
		suspendCase("suspend_timeout_negative", "timeout_ms", func(a *contracts.SuspendArgs) { a.TimeoutMs = sigPtr[int64](-1) }),
		suspendCase("suspend_timeout_past_2_53", "timeout_ms", func(a *contracts.SuspendArgs) { a.TimeoutMs = sigPtr[int64](1 << 53) }),
		suspendCase("suspend_idempotency_key_257_bytes", "idempotency_key", func(a *contracts.SuspendArgs) { a.IdempotencyKey = strings.Repeat("i", 257) }),
		suspendCase("suspend_lease_id_not_uuid", "lease_id", func(a *contracts.SuspendArgs) { a.LeaseID = sigPtr("lease-1") }),
		suspendCase("suspend_lease_id_upper_uuid", "lease_id", func(a *contracts.SuspendArgs) {
			a.LeaseID = sigPtr(strings.ToUpper(driver.NewID()))
		}),
	}
}

func deliverCase(s contracts.SuspendOutcome, step, field string, change func(*contracts.DeliverSignalArgs)) sigValidationCase {
	return sigValidationCase{step, field, func(w *sigWorld) error {
		a := signalTo(s, "a", "sig", "")
		a.Payload = json.RawMessage(`{"ok":true}`)
		change(&a)
		_, err := w.e.DeliverSignal(ctx(), a)
		return err
	}}
}

func deliverValidationCases(s contracts.SuspendOutcome) []sigValidationCase {
	big := json.RawMessage(`"` + strings.Repeat("p", 64<<10-1) + `"`) // 65,537 bytes
	return []sigValidationCase{
		deliverCase(s, "deliver_execution_id_empty", "execution_id", func(a *contracts.DeliverSignalArgs) { a.ExecutionID = "" }),
		deliverCase(s, "deliver_execution_id_bad", "execution_id", func(a *contracts.DeliverSignalArgs) { a.ExecutionID = "valid-1\n" }),
		deliverCase(s, "deliver_name_empty", "name", func(a *contracts.DeliverSignalArgs) { a.Name = "" }),
		deliverCase(s, "deliver_name_space", "name", func(a *contracts.DeliverSignalArgs) { a.Name = "a name" }),
		deliverCase(s, "deliver_name_129_bytes", "name", func(a *contracts.DeliverSignalArgs) { a.Name = strings.Repeat("n", 129) }),
		deliverCase(s, "deliver_payload_over_64k", "payload", func(a *contracts.DeliverSignalArgs) { a.Payload = big }),
		deliverCase(s, "deliver_payload_invalid_json", "payload", func(a *contracts.DeliverSignalArgs) { a.Payload = json.RawMessage(`{"ok":`) }),
		deliverCase(s, "deliver_payload_two_values", "payload", func(a *contracts.DeliverSignalArgs) { a.Payload = json.RawMessage(`1 2`) }),
		// I-JSON (RFC 7493): what a strict reader of the payload would refuse
		deliverCase(s, "deliver_payload_invalid_utf8", "payload", func(a *contracts.DeliverSignalArgs) { a.Payload = json.RawMessage("\"pay-\xff\"") }),
		deliverCase(s, "deliver_payload_lone_high_surrogate", "payload", func(a *contracts.DeliverSignalArgs) { a.Payload = json.RawMessage(`{"memo":"\ud800"}`) }),
		deliverCase(s, "deliver_payload_lone_low_surrogate", "payload", func(a *contracts.DeliverSignalArgs) { a.Payload = json.RawMessage(`["\udc00"]`) }),
		deliverCase(s, "deliver_payload_duplicate_key", "payload", func(a *contracts.DeliverSignalArgs) {
			a.Payload = json.RawMessage(`{"amount":1,"amount":1000}`)
		}),
		deliverCase(s, "deliver_payload_duplicate_key_escaped", "payload", func(a *contracts.DeliverSignalArgs) {
			a.Payload = json.RawMessage(`{"a":{"amount":1,"\u0061mount":1000}}`)
		}),
		deliverCase(s, "deliver_payload_depth_65", "payload", func(a *contracts.DeliverSignalArgs) { a.Payload = nestedPayload(65) }),
		deliverCase(s, "deliver_execution_id_dot", "execution_id", func(a *contracts.DeliverSignalArgs) { a.ExecutionID = "." }),
		deliverCase(s, "deliver_name_dot", "name", func(a *contracts.DeliverSignalArgs) { a.Name = "." }),
		deliverCase(s, "deliver_name_dot_dot", "name", func(a *contracts.DeliverSignalArgs) { a.Name = ".." }),
		deliverCase(s, "deliver_idempotency_key_257_bytes", "idempotency_key", func(a *contracts.DeliverSignalArgs) {
			a.IdempotencyKey = strings.Repeat("i", 257)
		}),
	}
}

func otherValidationCases() []sigValidationCase {
	list := func(step string, a contracts.ListSuspendedArgs) sigValidationCase {
		return sigValidationCase{step, map[bool]string{true: "cursor", false: "limit"}[a.Cursor != ""], func(w *sigWorld) error {
			_, err := w.e.ListSuspended(ctx(), a)
			return err
		}}
	}
	claim := func(step, field, worker string, lease int64) sigValidationCase {
		return sigValidationCase{step, field, func(w *sigWorld) error {
			_, err := w.e.ClaimResumedExecution(ctx(), contracts.ClaimArgs{WorkerID: worker, LeaseMs: lease})
			return err
		}}
	}
	complete := func(step, field, exec, lease string) sigValidationCase {
		return sigValidationCase{step, field, func(w *sigWorld) error {
			_, err := w.e.CompleteExecution(ctx(), contracts.CompleteArgs{ExecutionID: exec, LeaseID: lease})
			return err
		}}
	}
	observe := func(step, exec string) sigValidationCase {
		return sigValidationCase{step, "execution_id", func(w *sigWorld) error {
			_, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: exec})
			return err
		}}
	}
	return []sigValidationCase{
		observe("observe_execution_id_empty", ""),
		observe("observe_execution_id_bad", "a|b"),
		observe("observe_execution_id_dot_dot", ".."),
		list("list_limit_1001", contracts.ListSuspendedArgs{Limit: 1001}),
		list("list_limit_negative", contracts.ListSuspendedArgs{Limit: -1}),
		list("list_cursor_garbage", contracts.ListSuspendedArgs{Cursor: "%%%"}),
		claim("claim_worker_id_empty", "worker_id", "", 1000),
		claim("claim_worker_id_bad", "worker_id", "worker 1", 1000),
		claim("claim_worker_id_129_bytes", "worker_id", strings.Repeat("w", 129), 1000),
		claim("claim_worker_id_dot", "worker_id", ".", 1000),
		claim("claim_worker_id_dot_dot", "worker_id", "..", 1000),
		claim("claim_lease_ms_negative", "lease_ms", "worker-1", -5),
		complete("complete_execution_id_bad", "execution_id", "valid 1", driver.NewID()),
		complete("complete_lease_id_bad", "lease_id", "valid-1", "not-a-lease"),
		complete("complete_lease_id_empty", "lease_id", "fresh-2", ""),
		complete("complete_execution_id_dot", "execution_id", ".", driver.NewID()),
	}
}

// limitsAccepted: the largest valid value of every §2 limit is accepted and
// comes back unchanged: 128-byte ids, 16 waitpoints with 128-byte keys,
// 256-byte idempotency keys, a 64 KiB payload, the largest timeout and
// lease, limit 1000.
func limitsAccepted(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	exec := strings.Repeat("E", 127) + ":"
	a := contracts.SuspendArgs{ExecutionID: exec, Condition: contracts.ConditionAll,
		TimeoutMs: sigPtr[int64](contracts.MaxTimeoutMs), IdempotencyKey: strings.Repeat("i", 256)}
	for i := range contracts.MaxWaitpoints {
		a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: fmt.Sprintf("%02d", i) + strings.Repeat("k", 126)})
	}
	s := w.mustSuspend("suspend_largest", a)

	payload := json.RawMessage(`"` + strings.Repeat("p", contracts.MaxPayloadLen-2) + `"`)
	d := signalTo(s, a.Waitpoints[15].Key, strings.Repeat("n", 128), strings.Repeat("d", 256))
	d.Payload = payload
	w.mustDeliver("deliver_largest", d)
	l := w.mustList("list_limit_1000", contracts.ListSuspendedArgs{Limit: contracts.MaxListLimit})
	require.Len(t, l.Executions, 1, "list_limit_1000: want the execution")
	require.Equal(t, 16, l.Executions[0].Waitpoints, "list_limit_1000: want 16 waitpoints")
	// the 64 KiB payload is checked here, not spelled out in the golden file
	o, err := w.e.ObserveSignals(ctx(), contracts.ObserveSignalsArgs{ExecutionID: exec})
	require.NoError(t, err, "observe")
	require.Len(t, o.Signals, 1, "observe: want the signal")
	require.True(t, string(o.Signals[0].Payload) == string(payload), "observe: want the 64 KiB payload back unchanged")
	require.Equal(t, d.IdempotencyKey, o.Signals[0].IdempotencyKey, "observe: want the 256-byte key back unchanged")
	for _, wp := range a.Waitpoints[:15] {
		w.mustDeliver("deliver_"+wp.Key[:2], signalTo(s, wp.Key, "n", ""))
	}
	c, err := w.e.ClaimResumedExecution(ctx(), contracts.ClaimArgs{WorkerID: strings.Repeat("w", 128), LeaseMs: contracts.MaxLeaseMs})
	require.NoError(t, err, "claim with the largest lease")
	require.Equal(t, exec, c.ExecutionID, "claim with the largest lease: execution_id")
	require.Len(t, c.Signals, 16, "claim with the largest lease: want 16 signals")
	if w.manual() {
		require.Equal(t, w.nowMs()+contracts.MaxLeaseMs, c.LeaseExpiresAtMs, "claim: want lease_expires_at_ms = now + lease_ms")
	}
	w.note("claimed_signals", len(c.Signals))
	w.golden("signals_limits_accepted")
}
