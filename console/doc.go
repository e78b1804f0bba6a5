// Package console is an operator console for an Engine: server-rendered
// HTML pages (html/template, assets embedded, no CDN and no build step)
// served by one http.Handler that `ff serve --console` mounts under
// /console/.
//
// # Pages
//
//   - Overview (/console/): how many executions are suspended and how many
//     of them are past their timeout, counted by paging list_suspended up to
//     Options.CountCap rows; the most common tags; the oldest wait; and the
//     gateway's rates (signals, suspends, claims, completions, errors, token
//     failures) as small charts drawn server-side from Options.Metrics.
//   - Suspended (/console/suspended): list_suspended, oldest first, a page
//     at a time with its cursor, filtered by tag and by minimum age, with
//     each wait's age, timeout countdown and waitpoint count.
//   - Execution (/console/executions/{id}): the signals of its latest
//     suspension (payloads pretty-printed, capped at MaxPayloadView bytes,
//     escaped), its waitpoints with status and token fingerprint (never a
//     token), and a cancel button with a confirmation step.
//   - Keys (/console/keys): per partition (identical partitions grouped),
//     the current kid and each verifying kid with a countdown to the end of
//     its grace; a rotation form whose secret is generated with crypto/rand
//     and is never shown, logged or kept.
//
// # What the Engine does not say
//
// The Engine lists suspended executions only. Executions resumed and
// waiting for a worker, claimed executions, their claim reason and lease
// expiry are not readable through any Engine call, so the overview shows
// those counts as not available and the execution page says "resumed or
// claimed" for an execution that is remembered but no longer suspended.
// Waitpoints are found by id: those named by the suspension's signals, and
// any id the operator looks up.
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
