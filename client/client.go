// Package client is a typed Go client for the FlowFabric-Go HTTP API
// (package httpapi, `ff serve`): one method per route, with the Engine's
// names, arguments and results, so that code written against an
// *engine.Engine moves to a remote server by changing one constructor.
// It uses only the standard library and package contracts.
//
//	c, err := client.New("https://ff.internal:8080", client.WithAdminToken(os.Getenv("FF_ADMIN_TOKEN")))
//	out, err := c.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "order-7",
//		Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}}})
//
// # Results and errors
//
// A method returns the operation's contracts outcome, decoded from the
// server's envelope, or a *contracts.Error: the server's error envelope
// decoded (errors.Is(err, contracts.ErrLeaseMismatch) works as with the
// Engine), including the codes only HTTP has (unauthorized,
// admin_disabled, route_not_found, method_not_allowed, body_too_large;
// httpapi's Code constants). Arguments are checked first with the
// contracts rules, as the Engine checks them, so a call the Engine would
// refuse answers the same validation error without a request. Failures
// below HTTP are transport errors: a server that cannot be reached, a
// connection lost, an answer that is not the API's (a proxy's 502 page)
// are transport / backend_unreachable (retryable), the context's deadline
// transport / deadline_exceeded and its cancellation transport /
// canceled. A detail names the route and the server's host, never a
// token, the admin token or the request's path (a callback path holds a
// token).
//
// # Retries
//
// A call is retried, with exponential backoff and jitter (RetryPolicy),
// after a failure that may pass: an error envelope with "retryable": true
// (503 backend_unreachable, 429 serialization_retry_exhausted, ...), a 429
// or 503 that is not the API's, and transport failures. A Retry-After
// header longer than the backoff is waited out. A retry never outlives the
// context. Only idempotent calls are retried after a failure that may
// have come after the server acted:
//
//	idempotent (retried)         seed, rotate_all, revoke_kid, list_kids, sign, verify,
//	                             observe_signals, list_suspended, get_waitpoint, extend_lease,
//	                             suspend and deliver_signal with an idempotency key,
//	                             callback_url, health, ready, metrics, openapi
//	not idempotent (not blindly) claim (one and batch), create_waitpoint, complete_execution,
//	                             release_execution, cancel_suspension, and suspend and
//	                             deliver_signal without an idempotency key
//
// A call that is not idempotent is retried only when the server cannot
// have acted: the connection was never made, or the answer is contention /
// serialization_retry_exhausted or unavailable / storage_full, after which
// nothing was applied (docs/spec.md §6). A claim is the costly case: a
// claim whose answer was lost may have leased an execution, which stays
// leased to nobody until its lease_ms passes (as after a worker crash) and
// is then claimable again; a blind retry would lease a second one. So a
// claim that failed in transit answers backend_unreachable and is not
// repeated; claim again when you choose to.
//
// # Long polls
//
// ClaimResumedExecutionWait and ClaimResumedExecutionsWait wait on the
// server up to 30 s for an execution to become claimable. The HTTP
// client's Timeout (WithHTTPClient) must exceed the wait; the default
// client has none, and the context bounds the call.
//
// A Client is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Client calls one server of the HTTP API. Create it with New.
type Client struct {
	base  *url.URL // without a trailing slash
	hc    *http.Client
	admin string
	retry RetryPolicy
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (transport, TLS, timeouts). Default:
// a client of its own over http.DefaultTransport's settings, without a
// timeout (contexts bound calls). A Timeout must exceed the long polls'
// waits.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithAdminToken sets the admin token the /v1/admin/ routes need (the
// server's FF_ADMIN_TOKEN). Without it they answer unauthorized.
func WithAdminToken(token string) Option { return func(c *Client) { c.admin = token } }

// WithRetry sets the retry policy; RetryPolicy{MaxAttempts: 1} never
// retries.
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// RetryPolicy bounds the retries of a call. Zero fields take the defaults.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts, the first included (default
	// 4; 1: no retry).
	MaxAttempts int
	// BaseDelay is the backoff before the first retry (default 100 ms); it
	// doubles for each further one, up to MaxDelay, and is jittered over
	// its upper half.
	BaseDelay time.Duration
	// MaxDelay caps the backoff (default 5 s). A server's Retry-After
	// that is longer is honoured all the same, within the context.
	MaxDelay time.Duration
}

// Defaults of RetryPolicy.
const (
	DefaultMaxAttempts = 4
	DefaultBaseDelay   = 100 * time.Millisecond
	DefaultMaxDelay    = 5 * time.Second
)

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	return p
}

// backoff is the delay before retry n (1 for the first): BaseDelay × 2^(n-1)
// capped at MaxDelay, jittered uniformly over its upper half.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	return d/2 + rand.N(d/2+1)
}

// New returns a client of the server at baseURL: an absolute http or https
// URL, possibly with a path prefix (https://example.com/ff), without user
// information, query or fragment. A bad baseURL is validation /
// invalid_input naming base_url.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return nil, contracts.Invalid("base_url", "must be an absolute http or https URL with a host and no user information, query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	c.retry = c.retry.withDefaults()
	return c, nil
}

// BaseURL returns the server's base URL, as New was given it (without a
// trailing slash).
func (cl *Client) BaseURL() string { return cl.base.String() }

// call is one request of the API.
type call struct {
	route      string // the route's name, for errors
	method     string
	segments   []string // path segments, escaped by do
	query      url.Values
	body       any    // nil: no body; []byte: as is; else JSON
	bearer     string // Authorization: Bearer, when set
	header     http.Header
	idempotent bool
	out        any // decoded from a 200 body; *[]byte: the raw body
	secrets    []string
}

// maxAnswerBytes caps an answer's body: a claim carries at most 10,000
// signals and 1 MiB of payloads at the default limits, ten times that at
// the largest (docs/spec.md §8.3).
const maxAnswerBytes = 64 << 20

// do sends c, with retries, and decodes the answer.
func (cl *Client) do(ctx context.Context, c call) error {
	var body []byte
	switch b := c.body.(type) {
	case nil:
	case []byte:
		body = b
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // a payload's "<" stays "<", as the Engine keeps it
		if err := enc.Encode(b); err != nil {
			return contracts.Invalid("body", "could not be encoded as JSON")
		}
		body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	u := *cl.base
	escaped := u.EscapedPath()
	for _, s := range c.segments {
		escaped += "/" + url.PathEscape(s)
	}
	u.Path, _ = url.PathUnescape(escaped) // escaped by PathEscape: it unescapes
	u.RawPath = escaped
	u.RawQuery = c.query.Encode()
	target := u.String()
	for attempt := 1; ; attempt++ {
		wait, err := cl.once(ctx, c, target, body)
		if err == nil {
			return nil
		}
		if wait < 0 || attempt >= cl.retry.MaxAttempts {
			return err
		}
		d := max(cl.retry.backoff(attempt), wait)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return err // the retry would not finish in time
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// once makes one attempt. On failure it returns the error and the least
// wait before a retry (a Retry-After), or a negative wait when the
// failure must not be retried.
func (cl *Client) once(ctx context.Context, c call, target string, body []byte) (time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, target, rd)
	if err != nil {
		return -1, contracts.ErrInternal.With("client: %s: could not build the request", c.route)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return -1, contracts.AsError(ctxErr)
		}
		e := cl.transportError(c, err)
		if c.idempotent || neverSent(err) {
			return 0, e
		}
		return -1, e
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil || len(raw) > maxAnswerBytes {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return -1, contracts.AsError(ctxErr)
		}
		e := contracts.ErrBackendUnreachable.With("server: %s to %s: the answer was cut short or is over %d bytes", c.route, cl.base.Host, maxAnswerBytes)
		if c.idempotent {
			return 0, e
		}
		return -1, e
	}
	if resp.StatusCode == http.StatusOK {
		if c.out == nil {
			return 0, nil
		}
		if p, ok := c.out.(*[]byte); ok {
			*p = raw
			return 0, nil
		}
		if err := json.Unmarshal(raw, c.out); err != nil {
			return -1, contracts.ErrInternal.With("server: %s: the answer is not the operation's envelope", c.route)
		}
		return 0, nil
	}
	ce := answerError(c.route, resp.StatusCode, raw)
	ce = scrub(ce, append(c.secrets, c.bearer, cl.admin))
	if !retryAnswer(ce, c.idempotent) {
		return -1, ce
	}
	return retryAfter(resp.Header.Get("Retry-After")), ce
}

// answerError decodes an error envelope, or describes an answer that is
// not one (a proxy's page): 429, 502, 503 and 504 as backend_unreachable,
// retryable; any other status as internal_error.
func answerError(route string, status int, raw []byte) *contracts.Error {
	var env contracts.ErrorEnvelope
	if json.Unmarshal(raw, &env) == nil && env.Error != nil && env.Error.Kind != "" && env.Error.Code != "" {
		return env.Error
	}
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return contracts.ErrBackendUnreachable.With("server: %s: answered %d %s without an error envelope (a proxy?)", route, status, http.StatusText(status))
	}
	return contracts.ErrInternal.With("server: %s: answered %d %s without an error envelope", route, status, http.StatusText(status))
}

// retryAnswer reports whether an error answer may be retried: a retryable
// one (an envelope's "retryable", or a 429, 502, 503 or 504 that is not
// the API's) for an idempotent call; for another, only the answers after
// which nothing was applied.
func retryAnswer(ce *contracts.Error, idempotent bool) bool {
	if errors.Is(ce, contracts.ErrSerializationRetryExhausted) || errors.Is(ce, contracts.ErrStorageFull) {
		return true
	}
	return idempotent && ce.Retryable
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date; 0 when
// absent or unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// transportError describes a failure below HTTP without the request's URL
// (its path may hold a token): the route, the host and the cause.
func (cl *Client) transportError(c call, err error) *contracts.Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // url.Error's text quotes the whole URL
	}
	e := contracts.ErrBackendUnreachable.With("server: %s to %s: %s", c.route, cl.base.Host, err.Error())
	e = scrub(e, append(c.secrets, c.bearer, cl.admin))
	e.Err = err
	return e
}

// neverSent reports whether err happened before the request could reach
// the server: the connection was refused or could not be made.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// scrub replaces every secret in e's detail, as a last guard: no detail
// the client builds holds one, and the server's never do.
func scrub(e *contracts.Error, secrets []string) *contracts.Error {
	d := e.Detail
	for _, s := range secrets {
		if len(s) >= 8 {
			d = strings.ReplaceAll(d, s, "[REDACTED]")
		}
	}
	if d == e.Detail {
		return e
	}
	c := *e
	c.Detail = d
	return &c
}
