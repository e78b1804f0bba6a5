// Package console is an operator console for an Engine: server-rendered
// HTML pages (html/template, assets embedded, no CDN and no build step)
// served by one http.Handler that `ff serve --console` mounts under
// /console/.
//
// # Pages
//
//   - Overview (/console/): how many executions are suspended, past their
//     timeout, resumed and waiting for a worker, claimed, and claimed with an
//     expired lease (count_executions), as numbers and a bar chart drawn
//     server-side; the most common tags among the oldest suspended
//     executions and the oldest wait, read by paging list_suspended up to
//     Options.CountCap rows; and the gateway's rates (signals, suspends,
//     claims, completions, errors, token failures) as small charts drawn
//     server-side from Options.Metrics.
//   - Suspended (/console/suspended): list_suspended, oldest first, a page
//     at a time with its cursor, filtered by tag and by minimum age, with
//     each wait's age, timeout countdown and waitpoint count.
//   - Execution (/console/executions/{id}): describe_execution's view: its
//     state in words (suspended; past its timeout; resumed, waiting for a
//     worker, with its reason; claimed, with the lease's expiry and a
//     countdown; claimed with an expired lease; none), its latest
//     suspension, its waitpoints with status and token fingerprint (never a
//     token) plus any other looked up by id (get_waitpoint), the signals of
//     its latest suspension (observe_signals; payloads pretty-printed,
//     capped at MaxPayloadView bytes, escaped), and, while it is suspended,
//     a cancel button with a confirmation step.
//   - Keys (/console/keys): per partition (identical partitions grouped),
//     the current kid and each verifying kid with a countdown to the end of
//     its grace; a rotation form whose secret is generated with crypto/rand
//     and is never shown, logged or kept.
//
// # Drivers without describe_execution and count_executions
//
// The execution page and the cancel confirmation read describe_execution,
// the overview's counts count_executions (docs/spec.md §8.9). A driver
// that does not implement them answers unsupported: the execution page
// then says so (501) instead of guessing the state from other calls, and
// the overview shows the message in place of the counts, the rest of the
// page as usual.
//
// # Security
//
//   - Every page but the login form and the assets needs a session. A
//     session starts when the operator types the admin token
//     (Options.AdminToken) into the login form; it is compared in constant
//     time, and five wrong tokens from one address within ten minutes make
//     that address wait (429). Failed logins are logged without the token.
//   - The session cookie holds a random 32-byte session id and its
//     HMAC-SHA256 under a key made at New (so sessions end with the
//     process), never the admin token. It is HttpOnly, SameSite=Strict,
//     scoped to the console's path, and Secure, except on a request that
//     came over plain HTTP for a loopback host name from a loopback peer
//     when Options.PlainHTTPLoopback is set (a browser on the machine that
//     runs `ff serve --listen 127.0.0.1:…`): browsers send Secure cookies
//     only over HTTPS, so a console behind a TLS proxy keeps Secure cookies
//     as long as the proxy passes the public Host or X-Forwarded-Proto:
//     https. Sessions end after Options.SessionTTL and at logout.
//   - Every form that changes something (cancel, rotate, logout) carries a
//     per-session CSRF token, compared in constant time; a POST without it,
//     with another session's, with a foreign Origin, or with Sec-Fetch-Site
//     cross-site or same-site (another port of the host) answers 403 and
//     changes nothing. The login form carries a
//     token of its own, bound to a pre-session cookie.
//   - Every answer carries Content-Security-Policy (default-src 'self',
//     no inline script or style, frame-ancestors 'none', form-action 'self',
//     base-uri 'none', object-src 'none'), X-Content-Type-Options: nosniff,
//     Referrer-Policy: no-referrer, X-Frame-Options: DENY and, for pages,
//     Cache-Control: no-store.
//   - Payloads, idempotency keys and every other stored string are
//     attacker-controlled: templates escape them all (html/template), and
//     the one script (countdowns) reads only data attributes the server
//     wrote.
//   - The pages work without JavaScript: the countdowns are rendered as
//     text at page load and the script only keeps them moving.
package console
