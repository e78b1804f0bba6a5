package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Callback URLs: a waitpoint's whole credential in one URL, for senders
// that can be given a URL and nothing else (a webhook setting, a form's
// action). They are off unless Options.CallbackBaseURL is set.
//
//	POST /v1/callbacks/{execution_id}/{waitpoint_id}/{token}?name=N
//
// The path names the execution, the waitpoint and the token, so that the
// route answers exactly what the signal route answers for the same
// inputs and keeps its lack of an existence oracle: a wrong token, an
// unknown waitpoint and a waitpoint of another execution all answer 401
// invalid_token / signature_mismatch with one detail.

// DefaultCallbackSignalName is the signal name of a callback without a
// name query parameter.
const DefaultCallbackSignalName = "callback"

// callbackPrefix starts every callback path.
const callbackPrefix = "/v1/callbacks/"

// CheckCallbackBaseURL checks a value for Options.CallbackBaseURL: an
// absolute http or https URL with a host, and no user information, query
// or fragment (the URLs built on it go to third parties). A path is kept as
// a prefix: https://hooks.example.com/ff gives
// https://hooks.example.com/ff/v1/callbacks/... (a proxy in front of the
// server strips /ff). The error names base_url and never quotes the value.
func CheckCallbackBaseURL(raw string) error {
	_, err := parseCallbackBase(raw)
	return err
}

func parseCallbackBase(raw string) (*url.URL, error) {
	bad := contracts.Invalid("base_url", "must be an absolute http or https URL with a host and no user information, query or fragment")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return nil, bad
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// CallbackURL returns the callback URL of a waitpoint under
// Options.CallbackBaseURL: POST to it delivers a signal named name
// (DefaultCallbackSignalName when empty) with the request body as payload.
// It checks the parts (execution_id and name as identifiers, waitpoint_id
// as a UUID, the token's form) and does no I/O: whether the token opens
// the waitpoint is the delivery's business. With callbacks off it answers
// 404 route_not_found.
//
// The URL is the waitpoint's credential: hand it only to the party that
// may signal, and keep it out of logs (see the package documentation).
func (h *Handler) CallbackURL(executionID, waitpointID, token, name string) (string, error) {
	if h.callbackBase == nil {
		return "", errCallbacksOff
	}
	if err := contracts.ValidateIdentifier("execution_id", executionID); err != nil {
		return "", err
	}
	if err := contracts.ValidateUUID("waitpoint_id", waitpointID); err != nil {
		return "", err
	}
	if _, err := contracts.ParseToken("token", token); err != nil {
		// 400, not 401: this admin route authenticates with the admin token.
		return "", contracts.Invalid("token", "must be <kid>:<64 lowercase hex>")
	}
	if name != "" {
		if err := contracts.ValidateIdentifier("name", name); err != nil {
			return "", err
		}
	}
	u := *h.callbackBase
	u.Path += callbackPrefix + executionID + "/" + waitpointID + "/" + token
	if name != "" {
		u.RawQuery = url.Values{"name": {name}}.Encode()
	}
	return u.String(), nil
}

// errCallbacksOff answers the callback routes when Options.CallbackBaseURL
// is empty.
var errCallbacksOff = errRouteNotFound.With("path: callback URLs are off on this server (Options.CallbackBaseURL, ff serve --callback-base-url)")

// CallbackURLResult is the body of POST /v1/admin/callback-url.
type CallbackURLResult struct {
	CallbackURL string `json:"callback_url"`
}

// callbackURL is the admin route POST /v1/admin/callback-url
// {execution_id, waitpoint_id, token, name} → {"callback_url": URL}.
func (h *Handler) callbackURL(r *http.Request) (any, error) {
	var b struct {
		ExecutionID string `json:"execution_id"`
		WaitpointID string `json:"waitpoint_id"`
		Token       string `json:"token"`
		Name        string `json:"name"`
	}
	if err := decodeText(r, &b); err != nil {
		return nil, err
	}
	u, err := h.CallbackURL(b.ExecutionID, b.WaitpointID, b.Token, b.Name)
	if err != nil {
		return nil, err
	}
	return CallbackURLResult{CallbackURL: u}, nil
}

// deliverCallback is the callback route: deliver_signal with the token
// from the path, the name from the query (DefaultCallbackSignalName when
// absent or empty), the body as payload (empty: null) and the
// Idempotency-Key header as idempotency key.
func (h *Handler) deliverCallback(r *http.Request) (any, error) {
	exec, err := pathText(r, "execution_id")
	if err != nil {
		return nil, err
	}
	wp, err := pathText(r, "waitpoint_id")
	if err != nil {
		return nil, err
	}
	token, err := pathText(r, "token")
	if err != nil {
		return nil, err
	}
	name, err := queryText(r, "name")
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = DefaultCallbackSignalName
	}
	key, err := idempotencyKey(r, "")
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errBodyTooLarge.With("body: must be at most %d bytes", tooLarge.Limit)
		}
		return nil, contracts.Invalid("body", "could not be read")
	}
	payload := bytes.TrimSpace(body)
	if len(payload) == 0 || string(payload) == "null" {
		payload = nil
	}
	// The Engine checks the payload (I-JSON, UTF-8, 64 KiB) and names it.
	return h.e.DeliverSignal(r.Context(), contracts.DeliverSignalArgs{
		ExecutionID: exec, WaitpointID: wp, Token: token, Name: name, Payload: payload, IdempotencyKey: key,
	})
}

// IdempotencyKeyHeader is the header both signal routes read an
// idempotency key from (draft-ietf-httpapi-idempotency-key-header).
const IdempotencyKeyHeader = "Idempotency-Key"

// idempotencyKey returns the idempotency key of a delivery: the
// Idempotency-Key header's, else bodyKey. The header holds a Structured
// Field string ("K", RFC 8941, as the draft writes it) or, for clients that
// send it bare, the value as is, without surrounding whitespace. It may be
// given once; a body member that differs from it is refused, naming both.
func idempotencyKey(r *http.Request, bodyKey string) (string, error) {
	values := r.Header.Values(IdempotencyKeyHeader)
	switch len(values) {
	case 0:
		return bodyKey, nil
	case 1:
	default:
		return "", contracts.Invalid("idempotency-key", "must be given once")
	}
	if err := headerText(r, IdempotencyKeyHeader, "idempotency-key"); err != nil {
		return "", err
	}
	key, ok := parseSFString(strings.TrimSpace(values[0]))
	if !ok {
		return "", contracts.Invalid("idempotency-key", `must be a Structured Field string ("K", printable ASCII with \" and \\ escapes) or a bare value`)
	}
	if key == "" {
		return "", contracts.Invalid("idempotency-key", "must not be empty")
	}
	if bodyKey != "" && bodyKey != key {
		return "", contracts.Invalid("idempotency_key", "the body member and the Idempotency-Key header differ; give one of them, or the same key in both")
	}
	return key, nil
}

// parseSFString reads v as an RFC 8941 sf-string when it starts with a
// double quote, else returns it as it is.
func parseSFString(v string) (string, bool) {
	if !strings.HasPrefix(v, `"`) {
		return v, true
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i == len(v) || (v[i] != '"' && v[i] != '\\') {
				return "", false
			}
			b.WriteByte(v[i])
		case c == '"':
			return b.String(), i == len(v)-1
		case c < 0x20 || c > 0x7e:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false // no closing quote
}

// loggablePath is a request path fit for an error detail or a log line: a
// callback path keeps its execution and waitpoint ids, and nothing after
// them, where the token is (nothing at all when it has fewer segments: the
// token may be anywhere in a mistyped one).
func loggablePath(p string) string {
	rest, ok := strings.CutPrefix(p, callbackPrefix)
	if !ok {
		return p
	}
	if parts := strings.SplitN(rest, "/", 3); len(parts) == 3 {
		return callbackPrefix + parts[0] + "/" + parts[1] + "/[REDACTED]"
	}
	return callbackPrefix + "[REDACTED]"
}

// notFound answers a request no route serves: 404 route_not_found, naming
// the path (without a callback token), or saying that callbacks are off.
func (h *Handler) notFound(r *http.Request) error {
	if h.callbackBase == nil && (strings.HasPrefix(r.URL.Path, callbackPrefix) || r.URL.Path == "/v1/admin/callback-url") {
		return errCallbacksOff
	}
	return errRouteNotFound.With("path: no route for %s %s", r.Method, loggablePath(r.URL.Path))
}
