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
//	GET  /readyz    200 when the backend answers a ping, else 503 with the error envelope
//	                (SQLite's ping commits a tiny write, so a full disk answers 503 storage_full)
//	GET  /metrics   metrics in the Prometheus text format (off with Options.DisableMetricsRoute)
//
// Admin routes require Authorization: Bearer <admin token>, compared in
// constant time; with no admin token configured they answer 403
// admin_disabled. Status codes: 200 success; 400 validation; 401 invalid or
// expired token and missing or wrong admin token; 403 admin routes off; 404
// not found; 405 wrong method; 409 conflict and state; 413 body over the
// limit; 429 contention and 503 transport or unavailable, both with
// Retry-After. A rotate_all whose entries carry errors still answers 200:
// the body says which partitions failed.
//
// # Metrics
//
// The handler keeps four metrics and serves them in the Prometheus text
// exposition format, version 0.0.4 (Content-Type text/plain; version=0.0.4;
// charset=utf-8), without depending on a Prometheus client library:
//
//	ff_http_requests_total{outcome,route}                  counter
//	ff_http_request_duration_seconds{outcome,route}        histogram, buckets 100µs × 2.5^i, i < 12
//	ff_token_verification_failures_total{reason}           counter
//	ff_rotations_total{outcome}                            counter
//
// route is the operation's name (deliver_signal, seed, ..., not_found,
// method_not_allowed); outcome is ok or the error code (for rotations, one
// per partition: rotated, noop or the error code); reason is malformed,
// unknown_kid, signature_mismatch or token_expired. Label values never carry
// ids, tokens or other caller input. A family is listed once it has a
// series; scrapes are not counted.
//
// GET /metrics serves them next to the API. To serve them elsewhere, for
// instance on a private listener when the API faces the internet, set
// Options.DisableMetricsRoute and serve Handler.MetricsOnly on that
// listener (ff serve --metrics-listen ADDR does), or mount Handler.Metrics
// on a mux of your own; an application with a metrics endpoint of its own
// can append Handler.WriteMetrics to it.
package httpapi
