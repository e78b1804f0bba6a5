package httpapi

import (
	"net/http"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// The admin routes of version 2 of the waitpoint lifecycle (docs/spec.md
// §8.1, §8.4–§8.6). Each decodes its path and body like the routes of §5
// (pathText, decodeText: UTF-8 and I-JSON first, unknown members refused)
// and hands the arguments to the Engine, which validates them before any
// I/O; on a backend without driver.Lifecycle the Engine answers
// unavailable / unsupported, which the API answers 501.

// createWaitpoint opens a pending waitpoint: POST
// /v1/admin/executions/{execution_id}/waitpoints {key, expires_in_ms,
// lease_id, tags} → the create_waitpoint envelope with its token, 200.
func (h *Handler) createWaitpoint(r *http.Request) (any, error) {
	exec, err := pathText(r, "execution_id")
	if err != nil {
		return nil, err
	}
	var b struct {
		Key         string   `json:"key"`
		ExpiresInMs int64    `json:"expires_in_ms"` // required: 1 to 2^53-1
		LeaseID     *string  `json:"lease_id"`      // the current lease when the execution is claimed
		Tags        []string `json:"tags"`
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	return h.e.CreateWaitpoint(r.Context(), contracts.CreateWaitpointArgs{
		ExecutionID: exec, Key: b.Key, ExpiresInMs: b.ExpiresInMs, LeaseID: b.LeaseID, Tags: b.Tags,
	})
}

// getWaitpoint describes one waitpoint, never with its token: GET
// /v1/admin/executions/{execution_id}/waitpoints/{waitpoint_id}. It is an
// admin route on purpose: the public signal route keeps no existence oracle.
func (h *Handler) getWaitpoint(r *http.Request) (any, error) {
	exec, err := pathText(r, "execution_id")
	if err != nil {
		return nil, err
	}
	wp, err := pathText(r, "waitpoint_id")
	if err != nil {
		return nil, err
	}
	return h.e.GetWaitpoint(r.Context(), contracts.GetWaitpointArgs{ExecutionID: exec, WaitpointID: wp})
}

// describeExecution is an operator's view of one execution: GET
// /v1/admin/executions/{execution_id} (docs/spec.md §8.9), never with a
// token or a lease id.
func (h *Handler) describeExecution(r *http.Request) (any, error) {
	exec, err := pathText(r, "execution_id")
	if err != nil {
		return nil, err
	}
	return h.e.DescribeExecution(r.Context(), contracts.DescribeExecutionArgs{ExecutionID: exec})
}

// countExecutions counts the executions by state: GET /v1/admin/counts
// (docs/spec.md §8.9).
func (h *Handler) countExecutions(r *http.Request) (any, error) {
	return h.e.CountExecutions(r.Context(), contracts.CountExecutionsArgs{})
}

// extendLease is a worker's heartbeat: POST
// /v1/admin/executions/{execution_id}/extend {lease_id, lease_ms}; an
// absent or 0 lease_ms is the claim default (30 s), as for claim.
func (h *Handler) extendLease(r *http.Request) (any, error) {
	exec, b, err := executionBody[struct {
		LeaseID string `json:"lease_id"`
		LeaseMs int64  `json:"lease_ms"` // 0 or absent: the Engine's default
	}](r)
	if err != nil {
		return nil, err
	}
	return h.e.ExtendLease(r.Context(), contracts.ExtendLeaseArgs{ExecutionID: exec, LeaseID: b.LeaseID, LeaseMs: b.LeaseMs})
}

// release gives a claimed execution back: POST
// /v1/admin/executions/{execution_id}/release {lease_id}.
func (h *Handler) release(r *http.Request) (any, error) {
	exec, b, err := executionBody[leaseBody](r)
	if err != nil {
		return nil, err
	}
	return h.e.ReleaseExecution(r.Context(), contracts.ReleaseArgs{ExecutionID: exec, LeaseID: b.LeaseID})
}

// leaseBody is the body of the routes that present a lease.
type leaseBody struct {
	LeaseID string `json:"lease_id"`
}

// executionBody reads the execution_id path segment and the JSON body B
// (decodeText's rules) of an execution route.
func executionBody[B any](r *http.Request) (exec string, b B, err error) {
	if exec, err = pathText(r, "execution_id"); err != nil {
		return "", b, err
	}
	err = decodeText(r, &b)
	return exec, b, err
}

// cancel stops a suspended execution's wait: POST
// /v1/admin/executions/{execution_id}/cancel, with no body or {}.
func (h *Handler) cancel(r *http.Request) (any, error) {
	exec, err := pathText(r, "execution_id")
	if err != nil {
		return nil, err
	}
	var b struct{} // no members: any one is refused as unknown
	if err := decodeOptionalText(r, &b); err != nil {
		return nil, err
	}
	return h.e.CancelSuspension(r.Context(), contracts.CancelArgs{ExecutionID: exec})
}
