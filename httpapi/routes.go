package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

func (h *Handler) routes() {
	ops := map[string]op{
		"deliver_signal":           h.deliverSignal,
		RouteCallback:              h.deliverCallback,
		"seed":                     h.seed,
		"rotate_all":               h.rotate,
		"revoke_kid":               h.revoke,
		"list_kids":                h.kids,
		"sign":                     h.sign,
		"verify":                   h.verify,
		"suspend":                  h.suspend,
		"observe_signals":          h.observe,
		"complete_execution":       h.complete,
		"create_waitpoint":         h.createWaitpoint,
		"get_waitpoint":            h.getWaitpoint,
		"extend_lease":             h.extendLease,
		"release_execution":        h.release,
		"cancel_suspension":        h.cancel,
		"describe_execution":       h.describeExecution,
		"count_executions":         h.countExecutions,
		"list_suspended":           h.listSuspended,
		"claim_resumed_execution":  h.claim,
		"claim_resumed_executions": h.claimBatch,
		RouteCallbackURL:           h.callbackURL,
		RouteHealthz: func(*http.Request) (any, error) {
			return map[string]string{"status": "ok"}, nil
		},
		RouteReadyz:  h.ready,
		RouteOpenAPI: h.openAPI,
	}
	var paths []string
	byPath := map[string][]endpoint{}
	for _, rt := range routeTable {
		switch {
		case !h.served(rt):
			continue
		case rt.Name == RouteMetrics:
			// Not an endpoint: a scrape is not counted in the request metrics.
			h.mux.HandleFunc(rt.Pattern, h.serveMetrics)
			continue
		}
		o, ok := ops[rt.Name]
		if !ok {
			panic("httpapi: no operation serves route " + rt.Name)
		}
		if _, seen := byPath[rt.Pattern]; !seen {
			paths = append(paths, rt.Pattern)
		}
		byPath[rt.Pattern] = append(byPath[rt.Pattern], endpoint{method: rt.Method, name: rt.Name, admin: rt.Auth == AuthAdmin, op: o})
	}
	for _, p := range paths {
		h.handle(p, byPath[p]...)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, endpoint{name: "not_found", op: func(r *http.Request) (any, error) { return nil, h.notFound(r) }})
	})
}

// readyTimeout bounds the backend ping of /readyz.
const readyTimeout = 2 * time.Second

// deliverSignal is the public route: the waitpoint token is the caller's
// only credential.
func (h *Handler) deliverSignal(r *http.Request) (any, error) {
	exec, err := pathText(r, "execution_id")
	if err != nil {
		return nil, err
	}
	wp, err := pathText(r, "waitpoint_id")
	if err != nil {
		return nil, err
	}
	if err := headerText(r, "Authorization", "authorization"); err != nil {
		return nil, err
	}
	token, ok := bearer(r)
	if !ok {
		return nil, contracts.ErrTokenMalformed.With("authorization: must be Bearer <waitpoint token>")
	}
	var b struct {
		Name           string          `json:"name"`
		Payload        json.RawMessage `json:"payload"`
		IdempotencyKey string          `json:"idempotency_key"`
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	key, err := idempotencyKey(r, b.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	if string(b.Payload) == "null" {
		b.Payload = nil
	}
	return h.e.DeliverSignal(r.Context(), contracts.DeliverSignalArgs{
		ExecutionID: exec, WaitpointID: wp, Token: token, Name: b.Name, Payload: b.Payload, IdempotencyKey: key,
	})
}

func (h *Handler) seed(r *http.Request) (any, error) {
	var b struct {
		Kid       string `json:"kid"`
		SecretHex string `json:"secret_hex"`
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	secret, err := contracts.ParseSecretHex("secret_hex", b.SecretHex)
	if err != nil {
		return nil, err
	}
	out, err := h.e.Seed(r.Context(), contracts.SeedArgs{Kid: b.Kid, Secret: secret})
	h.audit.Seed(r.Context(), httpCaller(r, "seed"), b.Kid, out, err)
	return out, err
}

func (h *Handler) rotate(r *http.Request) (any, error) {
	var b struct {
		NewKid       string `json:"new_kid"`
		NewSecretHex string `json:"new_secret_hex"`
		GraceMs      *int64 `json:"grace_ms"`
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	secret, err := contracts.ParseSecretHex("new_secret_hex", b.NewSecretHex)
	if err != nil {
		return nil, err
	}
	grace := int64(contracts.DefaultGraceMs) // a grace of 0 is valid: only an absent one defaults
	if b.GraceMs != nil {
		grace = *b.GraceMs
	}
	res, err := h.e.RotateAll(r.Context(), contracts.RotateArgs{NewKid: b.NewKid, NewSecret: secret, GraceMs: grace})
	h.audit.RotateAll(r.Context(), httpCaller(r, "rotate_all"), b.NewKid, grace, res, err)
	return res, err
}

// revoke makes a verifying kid stop verifying on every partition, for a
// leaked secret: POST /v1/admin/keystore/revoke {kid} → the revoke_kid
// envelope (docs/spec.md §8.7). As for rotate, a partition's failure (the
// current kid: kid_is_current) is an entry of a 200 answer.
func (h *Handler) revoke(r *http.Request) (any, error) {
	var b struct {
		Kid string `json:"kid"`
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	res, err := h.e.RevokeKid(r.Context(), contracts.RevokeKidArgs{Kid: b.Kid})
	h.audit.RevokeKid(r.Context(), httpCaller(r, "revoke_kid"), b.Kid, res, err)
	return res, err
}

func (h *Handler) kids(r *http.Request) (any, error) { return h.e.ListKids(r.Context()) }

func (h *Handler) sign(r *http.Request) (any, error) {
	var b struct {
		Scope   string `json:"scope"`
		Message string `json:"message"`
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	return h.e.Sign(r.Context(), contracts.SignArgs{Scope: b.Scope, Message: []byte(b.Message)})
}

func (h *Handler) verify(r *http.Request) (any, error) {
	var b struct {
		Scope   string `json:"scope"`
		Message string `json:"message"`
		Token   string `json:"token"`
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	return h.e.Verify(r.Context(), contracts.VerifyArgs{Scope: b.Scope, Message: []byte(b.Message), Token: b.Token})
}

func (h *Handler) suspend(r *http.Request) (any, error) {
	exec, err := pathText(r, "execution_id")
	if err != nil {
		return nil, err
	}
	var b struct {
		Waitpoints     []contracts.WaitpointSpec `json:"waitpoints"` // {"key":K} or {"pending":ID}
		Condition      json.RawMessage           `json:"condition"`  // "any", "all" or {"count":n}
		TimeoutMs      *int64                    `json:"timeout_ms"`
		IdempotencyKey string                    `json:"idempotency_key"`
		LeaseID        *string                   `json:"lease_id"`
		Tags           []string                  `json:"tags"`
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	cond, err := condition(b.Condition)
	if err != nil {
		return nil, err
	}
	return h.e.Suspend(r.Context(), contracts.SuspendArgs{
		ExecutionID: exec, Waitpoints: b.Waitpoints, Condition: cond,
		TimeoutMs: b.TimeoutMs, IdempotencyKey: b.IdempotencyKey, LeaseID: b.LeaseID, Tags: b.Tags,
	})
}

// condition reads suspend's condition member with
// contracts.ParseConditionJSON: "any", "all" or {"count":n} (docs/spec.md
// §8.2). Absent, null and "" give "", which the Engine reads as "any" ("" was
// accepted before count conditions existed, and still is).
func condition(raw json.RawMessage) (string, error) {
	if string(bytes.TrimSpace(raw)) == `""` {
		return "", nil
	}
	return contracts.ParseConditionJSON("condition", raw)
}

func (h *Handler) observe(r *http.Request) (any, error) {
	exec, err := pathText(r, "execution_id")
	if err != nil {
		return nil, err
	}
	cursor, limit, err := pageQuery(r)
	if err != nil {
		return nil, err
	}
	return h.e.ObserveSignals(r.Context(), contracts.ObserveSignalsArgs{ExecutionID: exec, Limit: limit, Cursor: cursor})
}

// pageQuery reads the cursor and limit query parameters of a paged route;
// an absent limit is 0, the Engine's default.
func pageQuery(r *http.Request) (cursor string, limit int, err error) {
	if cursor, err = queryText(r, "cursor"); err != nil {
		return "", 0, err
	}
	text, err := queryText(r, "limit")
	if err != nil || text == "" {
		return cursor, 0, err
	}
	n, err := strconv.Atoi(text)
	if err != nil || n < 1 {
		return "", 0, contracts.Invalid("limit", "must be an integer from 1 to 1000")
	}
	return cursor, n, nil
}

func (h *Handler) complete(r *http.Request) (any, error) {
	exec, b, err := executionBody[leaseBody](r)
	if err != nil {
		return nil, err
	}
	return h.e.CompleteExecution(r.Context(), contracts.CompleteArgs{ExecutionID: exec, LeaseID: b.LeaseID})
}

func (h *Handler) listSuspended(r *http.Request) (any, error) {
	cursor, limit, err := pageQuery(r)
	if err != nil {
		return nil, err
	}
	tag, err := queryText(r, "tag") // empty: every suspended execution (docs/spec.md §8.6)
	if err != nil {
		return nil, err
	}
	return h.e.ListSuspended(r.Context(), contracts.ListSuspendedArgs{Cursor: cursor, Limit: limit, Tag: tag})
}

func (h *Handler) ready(r *http.Request) (any, error) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := h.e.Ping(ctx); err != nil {
		return nil, err
	}
	return map[string]string{"status": "ready"}, nil
}
