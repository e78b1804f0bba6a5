package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// DefaultMaxBodyBytes caps request bodies: a 64 KiB payload plus its envelope.
const DefaultMaxBodyBytes = contracts.MaxPayloadLen + 16<<10

// Options configure the handler. The zero value serves the public signal
// route, health and metrics, with the admin routes off.
type Options struct {
	// AdminToken enables the admin routes for callers presenting it as a
	// bearer token. Empty: admin routes answer 403 admin_disabled. Use at
	// least 32 random bytes (ff serve refuses a shorter FF_ADMIN_TOKEN).
	AdminToken string
	// Logger receives one structured line per request. Nil: slog.Default().
	Logger *slog.Logger
	// DisableMetricsRoute turns GET /metrics off: it answers 404
	// route_not_found like any unknown path. The metrics are still kept;
	// serve them elsewhere with Handler.Metrics, e.g. on a private listener
	// when this handler faces the internet.
	DisableMetricsRoute bool
	// MaxBodyBytes caps request bodies. Zero: DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// CallbackBaseURL turns the callback routes on: POST
	// /v1/callbacks/{execution_id}/{waitpoint_id}/{token}, which delivers
	// a signal without an Authorization header, and the admin route POST
	// /v1/admin/callback-url, which answers URLs under this base: the
	// server's URL as senders reach it (https://hooks.example.com, a path
	// prefix allowed; see CheckCallbackBaseURL). Empty: both answer 404
	// route_not_found. New panics on a value CheckCallbackBaseURL refuses,
	// as a programming error. A callback URL is a credential in a URL:
	// read the package documentation's "Callback URLs" before turning
	// them on.
	CallbackBaseURL string
}

// Handler serves the gateway and admin API. Create it with New.
type Handler struct {
	e            *engine.Engine
	opts         Options
	mux          *http.ServeMux
	metrics      *metrics
	audit        *KeystoreAudit // logs with opts.Logger, counts in metrics
	callbackBase *url.URL       // nil: callbacks off
	claims       *claimWatch    // the long polls' shared watcher
}

// New returns the HTTP API over e.
func New(e *engine.Engine, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	h := &Handler{e: e, opts: opts, mux: http.NewServeMux(), metrics: newMetrics(), claims: newClaimWatch(e, claimPollInterval)}
	h.audit = &KeystoreAudit{log: opts.Logger, metrics: h.metrics}
	if opts.CallbackBaseURL != "" {
		base, err := parseCallbackBase(opts.CallbackBaseURL)
		if err != nil {
			panic("httpapi: Options.CallbackBaseURL: " + err.Error())
		}
		h.callbackBase = base
	}
	h.routes()
	return h
}

// ServeHTTP implements http.Handler. A path that is not in canonical form
// (//, /./, /../) answers 404 route_not_found with an envelope, rather than
// http.ServeMux's bodiless redirect: every answer of the API is an envelope.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p != "" && !isCanonical(p) {
		h.serve(w, r, endpoint{name: "not_found", op: func(*http.Request) (any, error) {
			return nil, errRouteNotFound.With("path: must be in canonical form (no //, /./ or /../)")
		}})
		return
	}
	h.mux.ServeHTTP(w, r)
}

// isCanonical reports whether p is what path.Clean makes of it, allowing a
// trailing slash after a segment ("//" is not the root).
func isCanonical(p string) bool {
	c := path.Clean(p)
	return c == p || c != "/" && c+"/" == p
}

// op is one API operation: it decodes its request and calls the engine,
// returning the envelope to answer.
type op func(r *http.Request) (any, error)

// endpoint is one method on one path.
type endpoint struct {
	method string
	name   string // metric label, e.g. "deliver_signal"
	admin  bool
	op     op
}

// handle registers the endpoints of one path. The method check is ours, not
// the mux's, so that a wrong method also answers an error envelope.
func (h *Handler) handle(path string, eps ...endpoint) {
	h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		for _, ep := range eps {
			if r.Method == ep.method || ep.method == http.MethodGet && r.Method == http.MethodHead {
				h.serve(w, r, ep)
				return
			}
		}
		allowed := make([]string, len(eps))
		for i, ep := range eps {
			allowed[i] = ep.method
		}
		h.handle405(w, r, allowed)
	})
}

// handle405 answers a method the path does not serve.
func (h *Handler) handle405(w http.ResponseWriter, r *http.Request, allowed []string) {
	list := strings.Join(allowed, ", ")
	w.Header().Set("Allow", list)
	h.serve(w, r, endpoint{name: "method_not_allowed", op: func(*http.Request) (any, error) {
		return nil, errMethod.With("method: %s is not allowed here; use %s", r.Method, list)
	}})
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, ep endpoint) {
	start := time.Now()
	reqID := requestID(r)
	w.Header().Set("X-Request-Id", reqID)
	ctx := context.WithValue(r.Context(), requestIDKey{}, reqID)
	lp := &longPollConn{w: w}
	r = r.WithContext(context.WithValue(ctx, longPollKey{}, lp))
	var (
		body any
		err  error
	)
	if ep.admin {
		err = h.authorizeAdmin(r)
	}
	if err == nil {
		r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
		body, err = ep.op(r)
	}
	status, outcome := http.StatusOK, "ok"
	var ce *contracts.Error
	if err != nil {
		ce = contracts.AsError(err)
		status, outcome = StatusOf(ce), ce.Code
		h.metrics.observeError(ce)
		if ce.Retryable {
			w.Header().Set("Retry-After", "1")
		}
		body = contracts.ErrorEnvelope{Error: ce}
	}
	writeJSON(w, status, body)
	lp.restore()
	elapsed := time.Since(start)
	h.metrics.observeRequest(ep.name, outcome, elapsed)
	// Never log headers or bodies: they carry tokens and secrets.
	attrs := []slog.Attr{slog.String("request_id", reqID), slog.String("method", r.Method),
		slog.String("route", ep.name), slog.Int("status", status),
		slog.String("outcome", outcome), slog.Duration("duration", elapsed)}
	level := slog.LevelInfo
	if status >= 500 {
		level = failureLevel(ce)
		// The contract's detail, which never holds a secret or a token
		// (the native cause may: it is not logged).
		attrs = append(attrs, slog.String("error", ce.Detail), slog.Bool("retryable", ce.Retryable))
	}
	h.opts.Logger.LogAttrs(r.Context(), level, "request", attrs...)
}

// failureLevel is the log level of a request that failed with a 5xx: WARN
// for what a retry may fix (the store unreachable, a deadline), ERROR for
// what needs an operator (internal errors, a schema or KEK mismatch, a
// closed backend, refused credentials).
func failureLevel(ce *contracts.Error) slog.Level {
	if ce.Retryable {
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (h *Handler) authorizeAdmin(r *http.Request) error {
	if h.opts.AdminToken == "" {
		return errAdminDisabled.With("admin API is off: start the server with FF_ADMIN_TOKEN set")
	}
	got, ok := bearer(r)
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(h.opts.AdminToken)) != 1 {
		return errUnauthorized.With("authorization: admin routes need Authorization: Bearer <admin token>")
	}
	return nil
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// requestID keeps a caller's X-Request-Id when it is short and plain, else
// makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && contracts.ValidateIdentifier("x", id) == nil {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(contracts.ErrorEnvelope{Error: contracts.ErrInternal.With("response: could not encode the envelope")})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// decodeBody decodes a JSON object into dst, refusing unknown fields,
// trailing data and oversized bodies. Errors name the body and never quote
// its content.
func decodeBody(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("trailing data")
	}
	if err == nil {
		return nil
	}
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return errBodyTooLarge.With("body: must be at most %d bytes", tooLarge.Limit)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return contracts.Invalid(typeErr.Field, "has the wrong JSON type; expected "+typeErr.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return contracts.Invalid("body", "has an unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return contracts.Invalid("body", "must be one JSON object")
	}
}
