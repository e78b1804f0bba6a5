package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// The methods below are the Engine's (package engine), one per route of
// the API, plus the routes only HTTP has. Each checks its arguments with
// the contracts rules before any request, after the Engine's defaults.

func admin(parts ...string) []string { return append([]string{"v1", "admin"}, parts...) }

// Seed installs the first signing secret, idempotently (docs/spec.md §4.1).
func (c *Client) Seed(ctx context.Context, a contracts.SeedArgs) (contracts.SeedOutcome, error) {
	var out contracts.SeedOutcome
	if err := a.Validate(); err != nil {
		return out, err
	}
	secret := hex.EncodeToString(a.Secret)
	body := struct {
		Kid       string `json:"kid"`
		SecretHex string `json:"secret_hex"`
	}{a.Kid, secret}
	err := c.do(ctx, call{route: "seed", method: http.MethodPost, segments: admin("keystore", "seed"), body: body,
		bearer: c.admin, idempotent: true, out: &out, secrets: []string{secret}})
	return out, err
}

// RotateAll makes NewKid current on every partition with grace GraceMs (0
// is a grace of 0: the HTTP default of 24 h applies only to an absent
// grace_ms, which this client never sends).
func (c *Client) RotateAll(ctx context.Context, a contracts.RotateArgs) (contracts.RotateAllResult, error) {
	var out contracts.RotateAllResult
	if err := a.Validate(); err != nil {
		return out, err
	}
	secret := hex.EncodeToString(a.NewSecret)
	body := struct {
		NewKid       string `json:"new_kid"`
		NewSecretHex string `json:"new_secret_hex"`
		GraceMs      int64  `json:"grace_ms"`
	}{a.NewKid, secret, a.GraceMs}
	err := c.do(ctx, call{route: "rotate_all", method: http.MethodPost, segments: admin("keystore", "rotate"), body: body,
		bearer: c.admin, idempotent: true, out: &out, secrets: []string{secret}})
	return out, err
}

// RevokeKid makes a verifying kid stop verifying (docs/spec.md §8.7).
func (c *Client) RevokeKid(ctx context.Context, a contracts.RevokeKidArgs) (contracts.RevokeKidResult, error) {
	var out contracts.RevokeKidResult
	if err := a.Validate(); err != nil {
		return out, err
	}
	body := struct {
		Kid string `json:"kid"`
	}{a.Kid}
	err := c.do(ctx, call{route: "revoke_kid", method: http.MethodPost, segments: admin("keystore", "revoke"), body: body,
		bearer: c.admin, idempotent: true, out: &out})
	return out, err
}

// ListKids lists every partition's current and verifying kids.
func (c *Client) ListKids(ctx context.Context) (contracts.ListKidsResult, error) {
	var out contracts.ListKidsResult
	err := c.do(ctx, call{route: "list_kids", method: http.MethodGet, segments: admin("keystore", "kids"),
		bearer: c.admin, idempotent: true, out: &out})
	return out, err
}

// Sign signs a message with the current kid of the scope's partition.
// Over HTTP scope and message are text: bytes that are not valid UTF-8
// are refused (invalid_input naming the field).
func (c *Client) Sign(ctx context.Context, a contracts.SignArgs) (contracts.SignResult, error) {
	var out contracts.SignResult
	if err := checkText(a.Validate(), a.Scope, a.Message); err != nil {
		return out, err
	}
	body := struct {
		Scope   string `json:"scope"`
		Message string `json:"message"`
	}{a.Scope, string(a.Message)}
	err := c.do(ctx, call{route: "sign", method: http.MethodPost, segments: admin("sign"), body: body,
		bearer: c.admin, idempotent: true, out: &out})
	return out, err
}

// Verify checks a token for a message; see Sign for the text rule.
func (c *Client) Verify(ctx context.Context, a contracts.VerifyArgs) (contracts.VerifyResult, error) {
	var out contracts.VerifyResult
	if err := checkText(a.Validate(), a.Scope, a.Message); err != nil {
		return out, err
	}
	body := struct {
		Scope   string `json:"scope"`
		Message string `json:"message"`
		Token   string `json:"token"`
	}{a.Scope, string(a.Message), a.Token}
	err := c.do(ctx, call{route: "verify", method: http.MethodPost, segments: admin("verify"), body: body,
		bearer: c.admin, idempotent: true, out: &out, secrets: []string{a.Token}})
	return out, err
}

// checkText is validation's error, else the HTTP rule for scope and
// message: JSON text carries valid UTF-8 only (it would replace the rest).
func checkText(validation error, scope string, message []byte) error {
	if validation != nil {
		return validation
	}
	if !utf8.ValidString(scope) {
		return contracts.Invalid("scope", "must be valid UTF-8")
	}
	if !utf8.Valid(message) {
		return contracts.Invalid("message", "must be valid UTF-8")
	}
	return nil
}

// Suspend suspends an execution and returns its waitpoints' tokens. It is
// retried blindly only with an IdempotencyKey, whose replay answers the
// same outcome.
func (c *Client) Suspend(ctx context.Context, a contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	var out contracts.SuspendOutcome
	v := a
	if v.Condition == "" {
		v.Condition = contracts.ConditionAny
	}
	if err := v.Validate(); err != nil {
		return out, err
	}
	body := struct {
		Waitpoints     []contracts.WaitpointSpec `json:"waitpoints"`
		Condition      any                       `json:"condition,omitempty"`
		TimeoutMs      *int64                    `json:"timeout_ms,omitempty"`
		IdempotencyKey string                    `json:"idempotency_key,omitempty"`
		LeaseID        *string                   `json:"lease_id,omitempty"`
		Tags           []string                  `json:"tags,omitempty"`
	}{a.Waitpoints, conditionJSON(a.Condition), a.TimeoutMs, a.IdempotencyKey, a.LeaseID, a.Tags}
	err := c.do(ctx, call{route: "suspend", method: http.MethodPost, segments: admin("executions", a.ExecutionID, "suspend"), body: body,
		bearer: c.admin, idempotent: a.IdempotencyKey != "", out: &out})
	return out, err
}

// conditionJSON is a condition as a request writes it: nil (the default,
// any), "any", "all" or {"count": n}.
func conditionJSON(cond string) any {
	if cond == "" {
		return nil
	}
	if digits, ok := strings.CutPrefix(cond, "count:"); ok {
		if n, err := strconv.Atoi(digits); err == nil {
			return map[string]int{"count": n}
		}
	}
	return cond
}

// DeliverSignal delivers a signal on the public route, with the token as
// bearer. It is retried blindly only with an IdempotencyKey, whose replay
// answers duplicate.
func (c *Client) DeliverSignal(ctx context.Context, a contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	var out contracts.DeliverSignalOutcome
	if err := a.Validate(); err != nil {
		return out, err
	}
	body := struct {
		Name           string          `json:"name"`
		Payload        json.RawMessage `json:"payload,omitempty"`
		IdempotencyKey string          `json:"idempotency_key,omitempty"`
	}{a.Name, a.Payload, a.IdempotencyKey}
	err := c.do(ctx, call{route: "deliver_signal", method: http.MethodPost,
		segments: []string{"v1", "executions", a.ExecutionID, "waitpoints", a.WaitpointID, "signals"}, body: body,
		bearer: a.Token, idempotent: a.IdempotencyKey != "", out: &out, secrets: []string{a.Token}})
	return out, err
}

// DeliverSignalCallback delivers the same signal through the callback
// route (a server started with a callback base URL): the token in the
// path, Name as the name query parameter, Payload as the body and
// IdempotencyKey in the Idempotency-Key header, which carries printable
// ASCII only (else invalid_input naming idempotency_key). It answers what
// DeliverSignal answers.
func (c *Client) DeliverSignalCallback(ctx context.Context, a contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	var out contracts.DeliverSignalOutcome
	if err := a.Validate(); err != nil {
		return out, err
	}
	var hdr http.Header
	if a.IdempotencyKey != "" {
		v, ok := sfString(a.IdempotencyKey)
		if !ok {
			return out, contracts.Invalid("idempotency_key", "must be printable ASCII in the Idempotency-Key header of the callback route")
		}
		hdr = http.Header{"Idempotency-Key": {v}}
	}
	var body any
	if len(a.Payload) > 0 {
		body = []byte(a.Payload)
	}
	err := c.do(ctx, call{route: "deliver_signal_callback", method: http.MethodPost,
		segments: []string{"v1", "callbacks", a.ExecutionID, a.WaitpointID, a.Token},
		query:    url.Values{"name": {a.Name}}, body: body, header: hdr,
		idempotent: a.IdempotencyKey != "", out: &out, secrets: []string{a.Token}})
	return out, err
}

// sfString writes s as an RFC 8941 sf-string, when it is printable ASCII.
func sfString(s string) (string, bool) {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch > 0x7e {
			return "", false
		}
		if ch == '"' || ch == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(ch)
	}
	b.WriteByte('"')
	return b.String(), true
}

// ObserveSignals returns a page of the signals of the execution's latest
// suspension. A zero Limit is the server's default (1000).
func (c *Client) ObserveSignals(ctx context.Context, a contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	var out contracts.ObserveSignalsResult
	v := a
	if v.Limit == 0 {
		v.Limit = contracts.DefaultObserveLimit
	}
	if err := v.Validate(); err != nil {
		return out, err
	}
	err := c.do(ctx, call{route: "observe_signals", method: http.MethodGet, segments: admin("executions", a.ExecutionID, "signals"),
		query: page(a.Limit, a.Cursor, ""), bearer: c.admin, idempotent: true, out: &out})
	return out, err
}

// ListSuspended pages through suspended executions. A zero Limit is the
// server's default (100).
func (c *Client) ListSuspended(ctx context.Context, a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	var out contracts.ListSuspendedResult
	v := a
	if v.Limit == 0 {
		v.Limit = contracts.DefaultListLimit
	}
	if err := v.Validate(); err != nil {
		return out, err
	}
	err := c.do(ctx, call{route: "list_suspended", method: http.MethodGet, segments: admin("suspended"),
		query: page(a.Limit, a.Cursor, a.Tag), bearer: c.admin, idempotent: true, out: &out})
	return out, err
}

// page is the query of a paged route.
func page(limit int, cursor, tag string) url.Values {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if tag != "" {
		q.Set("tag", tag)
	}
	return q
}

// MaxClaimWait is the longest wait of ClaimResumedExecutionWait and
// ClaimResumedExecutionsWait (the server's wait_ms bound).
const MaxClaimWait = 30 * time.Second

// ClaimResumedExecution leases the oldest claimable execution, or answers
// outcome none. Not idempotent: see the package documentation.
func (c *Client) ClaimResumedExecution(ctx context.Context, a contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	return c.ClaimResumedExecutionWait(ctx, a, 0)
}

// ClaimResumedExecutionWait is ClaimResumedExecution waiting on the server
// up to wait (0 to MaxClaimWait, in whole milliseconds) for an execution
// to become claimable: it answers as soon as one is claimed, and outcome
// none once wait has passed.
func (c *Client) ClaimResumedExecutionWait(ctx context.Context, a contracts.ClaimArgs, wait time.Duration) (contracts.ClaimOutcome, error) {
	var out contracts.ClaimOutcome
	v := a
	if v.LeaseMs == 0 {
		v.LeaseMs = contracts.DefaultLeaseMs
	}
	if err := v.Validate(); err != nil {
		return out, err
	}
	ms, err := waitMs(wait)
	if err != nil {
		return out, err
	}
	body := struct {
		WorkerID string `json:"worker_id"`
		LeaseMs  int64  `json:"lease_ms,omitempty"`
		WaitMs   int64  `json:"wait_ms,omitempty"`
	}{a.WorkerID, a.LeaseMs, ms}
	err = c.do(ctx, call{route: "claim_resumed_execution", method: http.MethodPost, segments: admin("claim"), body: body,
		bearer: c.admin, out: &out})
	return out, err
}

// ClaimResumedExecutions leases up to Max claimable executions in one call
// (docs/spec.md §8.8). Not idempotent.
func (c *Client) ClaimResumedExecutions(ctx context.Context, a contracts.ClaimBatchArgs) (contracts.ClaimBatchOutcome, error) {
	return c.ClaimResumedExecutionsWait(ctx, a, 0)
}

// ClaimResumedExecutionsWait is ClaimResumedExecutions waiting like
// ClaimResumedExecutionWait until at least one execution is claimed.
func (c *Client) ClaimResumedExecutionsWait(ctx context.Context, a contracts.ClaimBatchArgs, wait time.Duration) (contracts.ClaimBatchOutcome, error) {
	var out contracts.ClaimBatchOutcome
	v := a
	if v.LeaseMs == 0 {
		v.LeaseMs = contracts.DefaultLeaseMs
	}
	if err := v.Validate(); err != nil {
		return out, err
	}
	ms, err := waitMs(wait)
	if err != nil {
		return out, err
	}
	body := struct {
		WorkerID string `json:"worker_id"`
		LeaseMs  int64  `json:"lease_ms,omitempty"`
		Max      int    `json:"max"`
		WaitMs   int64  `json:"wait_ms,omitempty"`
	}{a.WorkerID, a.LeaseMs, a.Max, ms}
	err = c.do(ctx, call{route: "claim_resumed_executions", method: http.MethodPost, segments: admin("claims"), body: body,
		bearer: c.admin, out: &out})
	return out, err
}

// waitMs is wait in milliseconds, rounded up, within the server's bound.
func waitMs(wait time.Duration) (int64, error) {
	ms := (wait + time.Millisecond - 1).Milliseconds()
	if wait < 0 || ms > MaxClaimWait.Milliseconds() {
		return 0, contracts.Invalid("wait_ms", "must be an integer from 0 to 30000")
	}
	return ms, nil
}

// CompleteExecution forgets a claimed execution. Not idempotent: a repeat
// after success answers execution_not_found.
func (c *Client) CompleteExecution(ctx context.Context, a contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	var out contracts.CompleteOutcome
	if err := a.Validate(); err != nil {
		return out, err
	}
	err := c.do(ctx, call{route: "complete_execution", method: http.MethodPost, segments: admin("executions", a.ExecutionID, "complete"),
		body: leaseBody{a.LeaseID}, bearer: c.admin, out: &out})
	return out, err
}

type leaseBody struct {
	LeaseID string `json:"lease_id"`
}

// CreateWaitpoint opens a pending waitpoint (docs/spec.md §8.1). Not
// idempotent: every call opens another.
func (c *Client) CreateWaitpoint(ctx context.Context, a contracts.CreateWaitpointArgs) (contracts.CreateWaitpointOutcome, error) {
	var out contracts.CreateWaitpointOutcome
	if err := a.Validate(); err != nil {
		return out, err
	}
	body := struct {
		Key         string   `json:"key"`
		ExpiresInMs int64    `json:"expires_in_ms"`
		LeaseID     *string  `json:"lease_id,omitempty"`
		Tags        []string `json:"tags,omitempty"`
	}{a.Key, a.ExpiresInMs, a.LeaseID, a.Tags}
	err := c.do(ctx, call{route: "create_waitpoint", method: http.MethodPost, segments: admin("executions", a.ExecutionID, "waitpoints"),
		body: body, bearer: c.admin, out: &out})
	return out, err
}

// GetWaitpoint describes one waitpoint, never with its token.
func (c *Client) GetWaitpoint(ctx context.Context, a contracts.GetWaitpointArgs) (contracts.WaitpointInfo, error) {
	var out contracts.WaitpointInfo
	if err := a.Validate(); err != nil {
		return out, err
	}
	err := c.do(ctx, call{route: "get_waitpoint", method: http.MethodGet, segments: admin("executions", a.ExecutionID, "waitpoints", a.WaitpointID),
		bearer: c.admin, idempotent: true, out: &out})
	return out, err
}

// DescribeExecution shows one execution: its state, claim reason, latest
// suspension, lease expiry and waitpoints, never a token or a lease id
// (docs/spec.md §8.9).
func (c *Client) DescribeExecution(ctx context.Context, a contracts.DescribeExecutionArgs) (contracts.ExecutionInfo, error) {
	var out contracts.ExecutionInfo
	if err := a.Validate(); err != nil {
		return out, err
	}
	err := c.do(ctx, call{route: "describe_execution", method: http.MethodGet, segments: admin("executions", a.ExecutionID),
		bearer: c.admin, idempotent: true, out: &out})
	return out, err
}

// CountExecutions counts the executions by state (docs/spec.md §8.9).
func (c *Client) CountExecutions(ctx context.Context, a contracts.CountExecutionsArgs) (contracts.ExecutionCounts, error) {
	var out contracts.ExecutionCounts
	if err := a.Validate(); err != nil {
		return out, err
	}
	err := c.do(ctx, call{route: "count_executions", method: http.MethodGet, segments: admin("counts"),
		bearer: c.admin, idempotent: true, out: &out})
	return out, err
}

// ExtendLease is a worker's heartbeat (docs/spec.md §8.4). A zero LeaseMs
// is the server's default (30 s).
func (c *Client) ExtendLease(ctx context.Context, a contracts.ExtendLeaseArgs) (contracts.ExtendLeaseOutcome, error) {
	var out contracts.ExtendLeaseOutcome
	v := a
	if v.LeaseMs == 0 {
		v.LeaseMs = contracts.DefaultLeaseMs
	}
	if err := v.Validate(); err != nil {
		return out, err
	}
	body := struct {
		LeaseID string `json:"lease_id"`
		LeaseMs int64  `json:"lease_ms,omitempty"`
	}{a.LeaseID, a.LeaseMs}
	err := c.do(ctx, call{route: "extend_lease", method: http.MethodPost, segments: admin("executions", a.ExecutionID, "extend"),
		body: body, bearer: c.admin, idempotent: true, out: &out})
	return out, err
}

// ReleaseExecution gives a claimed execution back. Not idempotent: a
// repeat after success answers lease_mismatch.
func (c *Client) ReleaseExecution(ctx context.Context, a contracts.ReleaseArgs) (contracts.ReleaseOutcome, error) {
	var out contracts.ReleaseOutcome
	if err := a.Validate(); err != nil {
		return out, err
	}
	err := c.do(ctx, call{route: "release_execution", method: http.MethodPost, segments: admin("executions", a.ExecutionID, "release"),
		body: leaseBody{a.LeaseID}, bearer: c.admin, out: &out})
	return out, err
}

// CancelSuspension stops a suspended execution's wait (docs/spec.md
// §8.5). Not idempotent: a repeat after success answers not_suspended.
func (c *Client) CancelSuspension(ctx context.Context, a contracts.CancelArgs) (contracts.CancelOutcome, error) {
	var out contracts.CancelOutcome
	if err := a.Validate(); err != nil {
		return out, err
	}
	err := c.do(ctx, call{route: "cancel_suspension", method: http.MethodPost, segments: admin("executions", a.ExecutionID, "cancel"),
		bearer: c.admin, out: &out})
	return out, err
}

// CallbackURL asks the server (POST /v1/admin/callback-url) for the
// callback URL of a waitpoint: name is the signal name it delivers (empty:
// the server's default, "callback"). The URL holds the token: it is the
// waitpoint's credential. A server without callback URLs answers
// route_not_found.
func (c *Client) CallbackURL(ctx context.Context, executionID, waitpointID, token, name string) (string, error) {
	var out struct {
		CallbackURL string `json:"callback_url"`
	}
	body := struct {
		ExecutionID string `json:"execution_id"`
		WaitpointID string `json:"waitpoint_id"`
		Token       string `json:"token"`
		Name        string `json:"name,omitempty"`
	}{executionID, waitpointID, token, name}
	err := c.do(ctx, call{route: "callback_url", method: http.MethodPost, segments: admin("callback-url"), body: body,
		bearer: c.admin, idempotent: true, out: &out, secrets: []string{token}})
	return out.CallbackURL, err
}

// Ping checks that the server and its backend answer: GET /readyz, as
// Engine.Ping; an error is the backend's (say unavailable / storage_full).
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, call{route: "readyz", method: http.MethodGet, segments: []string{"readyz"}, idempotent: true})
}

// Health checks that the server process answers: GET /healthz.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, call{route: "healthz", method: http.MethodGet, segments: []string{"healthz"}, idempotent: true})
}

// Metrics returns the server's metrics in the Prometheus text format (GET
// /metrics; route_not_found where the server serves them elsewhere).
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.do(ctx, call{route: "metrics", method: http.MethodGet, segments: []string{"metrics"}, idempotent: true, out: &out})
	return out, err
}

// OpenAPI returns the server's OpenAPI 3.1 document (GET /openapi.json).
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.do(ctx, call{route: "openapi", method: http.MethodGet, segments: []string{"openapi.json"}, idempotent: true, out: &out})
	return out, err
}
