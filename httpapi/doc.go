// Package httpapi is the HTTP signal gateway and admin API of FlowFabric-Go
// as an http.Handler over an *engine.Engine, so applications can mount it in
// their own server; `ff serve` is one user of it.
//
// Routes (bodies are exactly the envelopes of docs/spec.md §7; Routes lists
// them, and GET /openapi.json describes them in OpenAPI 3.1):
//
//	POST /v1/executions/{execution_id}/waitpoints/{waitpoint_id}/signals
//	     public: Authorization: Bearer <waitpoint token>; body {name, payload, idempotency_key};
//	     or the key in an Idempotency-Key header
//	POST /v1/callbacks/{execution_id}/{waitpoint_id}/{token}?name=N
//	     public, only with Options.CallbackBaseURL: no Authorization; the body is the payload
//	POST /v1/admin/keystore/seed                   {kid, secret_hex}
//	POST /v1/admin/keystore/rotate                 {new_kid, new_secret_hex, grace_ms}
//	POST /v1/admin/keystore/revoke                 {kid}
//	GET  /v1/admin/keystore/kids
//	POST /v1/admin/sign                            {scope, message}
//	POST /v1/admin/verify                          {scope, message, token}
//	POST /v1/admin/executions/{execution_id}/suspend   {waitpoints, condition, timeout_ms, idempotency_key, lease_id, tags}
//	GET  /v1/admin/executions/{execution_id}/signals?limit=N&cursor=C
//	GET  /v1/admin/suspended?limit=N&cursor=C&tag=T
//	GET  /v1/admin/executions/{execution_id}
//	GET  /v1/admin/counts
//	POST /v1/admin/claim                           {worker_id, lease_ms, wait_ms}
//	POST /v1/admin/claims                          {worker_id, lease_ms, max, wait_ms}
//	POST /v1/admin/executions/{execution_id}/complete  {lease_id}
//	POST /v1/admin/executions/{execution_id}/waitpoints {key, expires_in_ms, lease_id, tags}
//	GET  /v1/admin/executions/{execution_id}/waitpoints/{waitpoint_id}
//	POST /v1/admin/executions/{execution_id}/extend    {lease_id, lease_ms}
//	POST /v1/admin/executions/{execution_id}/release   {lease_id}
//	POST /v1/admin/executions/{execution_id}/cancel    no body, or {}
//	POST /v1/admin/callback-url                    {execution_id, waitpoint_id, token, name} (with Options.CallbackBaseURL)
//	GET  /healthz   always 200 while the process serves
//	GET  /readyz    200 when the backend answers a ping, else 503 with the error envelope
//	                (SQLite's ping commits a tiny write, so a full disk answers 503 storage_full)
//	GET  /metrics   metrics in the Prometheus text format (off with Options.DisableMetricsRoute)
//	GET  /openapi.json  the OpenAPI 3.1 document of these routes, without authorization
//
// Every body is one JSON object; a member the route does not know is
// refused (400 invalid_input naming the body), and so is text that is not
// valid UTF-8 or not I-JSON, naming the member (docs/spec.md §2). Optional
// members may be left out or null. Defaults: grace_ms 24 h; lease_ms (claim,
// extend) 30 s when absent or 0; condition "any" when absent, null or "";
// limit 100 (suspended) or 1000 (signals); wait_ms 0.
//
// # OpenAPI
//
// GET /openapi.json serves the API's OpenAPI 3.1 document (OpenAPI
// returns it): every route of Routes with its parameters, request and
// answer schemas (the envelopes, additionalProperties false where the
// handler refuses unknown members), every status with the error
// envelope's schema, and the security of each route (the admin token, the
// waitpoint token, none). Routes is the list the router registers, and
// the tests fail when a route is missing from the document, when an answer
// of the handler breaks it, and when a status it lists is never produced
// (internal/integration/openapi); scripts/test.sh lints it with redocly.
// Package client is a typed Go client of these routes.
//
// # Long-poll claims
//
// The claim routes take wait_ms, 0 to 30000 (MaxClaimWaitMs; absent, null
// or 0: answer at once, as before). When nothing is claimable, the request
// waits up to wait_ms and answers as soon as it claims an execution, else
// outcome none (or "claims":[]) at the deadline. A waiting claim tries
// again on every wake-up of Engine.WatchClaimable (the Engine's own
// resuming deliveries, cancels and releases; other processes' where the
// driver pushes, as PostgreSQL's LISTEN/NOTIFY does) and every second
// regardless (wake-ups may be lost, and timeouts and expired leases wake
// nobody). One watcher per Handler serves every waiting request; it runs
// while one waits and 30 s after (so that a worker's next long poll finds
// it listening); each wake-up lets every waiting request try a
// claim, and each execution goes to exactly one of them. A waiting request
// costs a goroutine and a channel. It moves its connection's read and
// write deadlines to wait_ms + WriteTimeout, so a server's shorter
// timeouts neither cancel it nor drop its answer. A caller that goes away
// ends its wait; a claim made just before is lost to it, and the
// execution is claimable again when its lease_ms passes (keep lease_ms
// short for long polls, and extend). Handler.Close ends every wait at once
// (the answer is outcome none); NewServer's Shutdown calls it.
//
// POST /v1/admin/claims {worker_id, lease_ms, max, wait_ms} answers
// claim_resumed_executions (docs/spec.md §8.8): {"claims":[...]}, up to max
// (1-100) claims, oldest first; with wait_ms it waits for the first. When
// the Engine fails after some claims, those are answered with 200 and the
// failure is logged at WARN (their leases are the caller's).
//
// Long polls show in ff_http_request_duration_seconds with their wait
// (its last bucket is about 2.4 s).
//
// # Idempotency-Key
//
// Both signal routes read an Idempotency-Key header
// (draft-ietf-httpapi-idempotency-key-header) as the delivery's
// idempotency_key: a Structured Field string ("mail-1") or a bare value.
// It may be given once; on the signal route a body idempotency_key that
// differs from it is 400 invalid_input naming idempotency_key, and the
// same key in both is fine. An empty value, or a string that is not a
// well-formed sf-string, is 400 naming idempotency-key.
//
// # Callback URLs
//
// Some senders can be given a URL and nothing else: a webhook setting, a
// form's action, a SaaS integration. With Options.CallbackBaseURL (ff serve
// --callback-base-url URL), POST
// /v1/callbacks/{execution_id}/{waitpoint_id}/{token} delivers a signal
// with the token taken from the path instead of an Authorization header;
// without it the route answers 404 route_not_found. The request body is
// the payload (any one I-JSON value; an empty body is a null payload,
// whatever the Content-Type); the query parameter name is the signal name
// (DefaultCallbackSignalName, "callback", when absent or empty); the
// Idempotency-Key header is the idempotency key. The path names the
// execution, the waitpoint and the whole token, so the route answers
// exactly what the signal route answers for the same inputs, status and
// envelope, and stays free of existence oracles: a wrong token, an
// unknown waitpoint and one of another execution all answer 401
// invalid_token / signature_mismatch with one detail.
//
// Build the URL as
//
//	<base>/v1/callbacks/<execution_id>/<waitpoint_id>/<token>[?name=<name>]
//
// from a suspend's or create_waitpoint's envelope (the envelopes do not
// change: they carry the token, not a URL), or ask the server: POST
// /v1/admin/callback-url {execution_id, waitpoint_id, token, name} answers
// {"callback_url": URL} under the base URL, after checking the parts'
// forms (Handler.CallbackURL does the same in Go). It does no I/O: whether
// the token opens the waitpoint is the delivery's business.
//
// A callback URL is a credential in a URL, and URLs travel further than
// headers: proxies, load balancers and CDNs log request lines, browsers
// keep history and may send Referer headers, and the sender's own logs
// and dashboards show the URLs they call. Whoever reads one of those logs
// can deliver a signal to the waitpoint until its suspension closes. So:
// turn callbacks on only for senders that cannot send a header; serve
// them over HTTPS only; keep request logging of paths off on whatever
// stands in front (or strip the last segment of /v1/callbacks/ paths);
// prefer short suspensions (timeout_ms) and idempotency keys; and revoke
// (rotate, then revoke_kid) when a URL leaked. This handler never logs a
// request's path: its request line carries the route name, and the 404
// detail of a callback path shows it without its token.
//
// # Version 2 of the waitpoint lifecycle
//
// The routes of docs/spec.md §8 and the version 2 members of suspend and
// list_suspended (each answers the operation's envelope with 200, as
// suspend does; every error keeps the status of its kind, below):
//
//   - create_waitpoint, POST .../{execution_id}/waitpoints: a pending
//     waitpoint and its token, for an execution that is not suspended yet
//     (§8.1). expires_in_ms is required (1 to 2^53-1); lease_id is the
//     current lease when the execution is claimed, else absent or null.
//     Not idempotent: every call opens another waitpoint. Errors:
//     409 already_suspended, lease_mismatch (conflict) and
//     waitpoint_limit_exceeded (state: 16 live pending waitpoints).
//   - get_waitpoint, GET .../{execution_id}/waitpoints/{waitpoint_id}:
//     status (pending, open, closed, expired), signal count, tags and
//     token_fingerprint, never the token (§8.6); 404 waitpoint_not_found
//     for an unknown waitpoint or one of another execution. It is an admin
//     route, so that the public signal route stays free of existence oracles.
//   - extend_lease, POST .../{execution_id}/extend: a worker's heartbeat,
//     lease_expires_at_ms = now + lease_ms (§8.4). release_execution, POST
//     .../{execution_id}/release: the execution is claimable again at once,
//     with its claim reason. Both: 404 execution_not_found, 409
//     lease_mismatch.
//   - cancel_suspension, POST .../{execution_id}/cancel: the waitpoints close
//     and the execution is claimable with reason "cancelled" (§8.5); 404
//     execution_not_found, 409 not_suspended.
//   - suspend: waitpoints items are {"key": K} (a new waitpoint) or
//     {"pending": waitpoint_id} (one create_waitpoint made), never both;
//     condition is "any", "all" or {"count": n} (contracts.ParseConditionJSON,
//     §8.2); tags are 0-10 distinct tags of 1-64 bytes of [A-Za-z0-9._:-].
//     When the signals already on the pending waitpoints satisfy the
//     condition the answer is 200 with outcome already_satisfied and those
//     signals. 409 pending_waitpoint_unavailable for a pending id that is
//     unknown, of another execution, used or expired.
//   - list_suspended: ?tag=T lists only executions whose suspension
//     carries tag T.
//   - describe_execution, GET /v1/admin/executions/{execution_id}: state,
//     claimable, reason, latest suspension, lease expiry and waitpoints,
//     never a token or a lease id (§8.9); 404 execution_not_found.
//     count_executions, GET /v1/admin/counts: suspended, timed_out,
//     resumed, claimed and lease_expired; its cost grows with the store on
//     the SQL backends (a dashboard's call, not a hot path's).
//
// On a backend whose driver does not implement driver.Lifecycle these
// routes, and suspend and list_suspended with a version 2 member, answer
// 501 unavailable / unsupported, before any I/O.
//
// # Revoking a kid
//
// revoke_kid, POST /v1/admin/keystore/revoke {kid}, answers for a leaked
// secret (docs/spec.md §8.7) with the revoke_kid envelope, one entry per
// partition in partition order, as rotate_all:
//
//	{"entries":[{"partition":0,"outcome":{"outcome":"revoked","kid":"k1"},"error":null}]}
//
// A verifying kid still in its grace is revoked: its tokens and signatures
// answer 401 token_expired (detail `token: kid "K" was revoked`) through
// this handler's Engine at once, and through other Engines on the store
// within the backend's push latency, or the keystore cache's TTL (1 s by
// default) where the backend pushes nothing. Its secret is deleted and its
// name is never reused (a later rotate_all to it answers
// rotation_conflict). An unknown, expired or already revoked kid is noop.
// The current kid cannot be revoked: its partition's entry carries 409's
// conflict / kid_is_current, and, as for rotate_all, the answer is still
// 200, the body telling which partitions failed (rotate first, then revoke
// the outgoing kid). A malformed or missing kid answers 400 invalid_input;
// a backend whose driver lacks driver.KidRevoker answers 501 unsupported.
//
// # Keystore audit
//
// Every seed, rotate_all and revoke_kid that reaches the Engine, whatever
// its outcome, logs exactly one line with the message "keystore audit"
// (KeystoreAudit) before the request line: op, kid, outcome (the seed
// outcome; for rotate_all and revoke_kid the first failed entry's code,
// else rotated or revoked when a partition changed, else noop), the
// partition counts, the error codes met, and the caller (caller "http",
// command = the route name, remote_addr, request_id as on the request
// line). It is WARN when something failed or a seed found another secret
// under its kid, else INFO. It never holds a secret, a token or an error's
// detail. Handler.KeystoreAudit gives the same audit to changes made next
// to the API (ff serve's seed at start-up and its scheduled rotation), so
// that they log and count alike; NewKeystoreAudit gives one that only logs
// (ff seed, ff rotate and ff revoke log it on stderr).
//
// # Authorization and status codes
//
// Admin routes require Authorization: Bearer <admin token>, compared in
// constant time; with no admin token configured they answer 403
// admin_disabled. Status codes: 200 success; 400 validation; 401 invalid or
// expired token and missing or wrong admin token; 403 admin routes off; 404
// not found (execution_not_found, waitpoint_not_found, route_not_found); 405
// wrong method; 409 conflict and state; 413 body over the limit; 429
// contention and 503 transport or unavailable, with Retry-After when the
// error is retryable; 501 unsupported (StatusOf). A rotate_all or
// revoke_kid whose entries carry errors still answers 200: the body says
// which partitions failed.
//
// # Metrics
//
// The handler keeps five metrics and serves them in the Prometheus text
// exposition format, version 0.0.4 (Content-Type text/plain; version=0.0.4;
// charset=utf-8), without depending on a Prometheus client library:
//
//	ff_http_requests_total{outcome,route}                  counter
//	ff_http_request_duration_seconds{outcome,route}        histogram, buckets 100µs × 2.5^i, i < 12
//	ff_token_verification_failures_total{reason}           counter
//	ff_rotations_total{outcome}                            counter
//	ff_keystore_changes_total{op,outcome}                  counter
//
// route is the operation's name (deliver_signal, seed, ..., create_waitpoint,
// get_waitpoint, extend_lease, release_execution, cancel_suspension,
// revoke_kid, claim_resumed_executions, describe_execution,
// count_executions, deliver_signal_callback,
// callback_url, openapi, not_found, method_not_allowed: Route.Name);
// outcome is ok or the error code
// (for rotations, one per partition: rotated, noop or the error code; for
// keystore changes, one per call: the audit line's outcome, with op seed,
// rotate_all or revoke_kid; they count the admin routes and whatever else
// uses Handler.KeystoreAudit, as ff serve's scheduled rotation does, whose
// partitions also count in ff_rotations_total); reason is malformed,
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
