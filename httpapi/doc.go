// Package httpapi is the HTTP signal gateway and admin API of FlowFabric-Go
// as an http.Handler over an *engine.Engine, so applications can mount it in
// their own server; `ff serve` is one user of it.
//
// Routes (bodies are exactly the envelopes of docs/spec.md §7):
//
//	POST /v1/executions/{execution_id}/waitpoints/{waitpoint_id}/signals
//	     public: Authorization: Bearer <waitpoint token>; body {name, payload, idempotency_key}
//	POST /v1/admin/keystore/seed                   {kid, secret_hex}
//	POST /v1/admin/keystore/rotate                 {new_kid, new_secret_hex, grace_ms}
//	GET  /v1/admin/keystore/kids
//	POST /v1/admin/sign                            {scope, message}
//	POST /v1/admin/verify                          {scope, message, token}
//	POST /v1/admin/executions/{execution_id}/suspend   {waitpoints, condition, timeout_ms, idempotency_key, lease_id}
//	GET  /v1/admin/executions/{execution_id}/signals
//	GET  /v1/admin/suspended?limit=N&cursor=C
//	POST /v1/admin/claim                           {worker_id, lease_ms}
//	POST /v1/admin/executions/{execution_id}/complete  {lease_id}
//	GET  /healthz   always 200 while the process serves
//	GET  /readyz    200 when the backend answers a ping, else 503
//	GET  /metrics   Prometheus metrics
//
// Admin routes require Authorization: Bearer <admin token>, compared in
// constant time; with no admin token configured they answer 403
// admin_disabled. Status codes: 200 success; 400 validation; 401 invalid or
// expired token and missing or wrong admin token; 403 admin routes off; 404
// not found; 405 wrong method; 409 conflict and state; 413 body over the
// limit; 429 contention and 503 transport or unavailable, both with
// Retry-After. A rotate_all whose entries carry errors still answers 200:
// the body says which partitions failed.
package httpapi
