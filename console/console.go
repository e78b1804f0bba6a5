package console

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Defaults of Options.
const (
	DefaultPrefix       = "/console/"
	DefaultSessionTTL   = 8 * time.Hour
	DefaultCountCap     = 10_000
	DefaultPageSize     = 50
	DefaultMetricsEvery = 10 * time.Second
	// MaxPayloadView caps the bytes of a pretty-printed payload a page shows.
	MaxPayloadView = 8 << 10
	// MetricsSamples is how many samples of the metrics the charts keep.
	MetricsSamples = 90
)

// ContentSecurityPolicy is the policy every answer carries.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Options configure the console.
type Options struct {
	// AdminToken is what the login form asks for: ff serve's
	// FF_ADMIN_TOKEN. Empty: every page answers 403, the console is off.
	AdminToken string
	// Prefix is the path the handler is mounted under, with a leading and
	// a trailing slash. Empty: DefaultPrefix.
	Prefix string
	// PlainHTTPLoopback lets the session cookie go without Secure on a
	// request that came over plain HTTP (no TLS, no X-Forwarded-Proto:
	// https) for a loopback host (localhost, 127.0.0.0/8, [::1]) from a
	// loopback peer, and on no other request. Set it when the listener is
	// plain HTTP on loopback (ff serve --listen 127.0.0.1:…).
	PlainHTTPLoopback bool
	// Metrics returns the gateway's metrics in the Prometheus text format
	// (httpapi's Handler.WriteMetrics). Nil: the overview shows no rates.
	Metrics func() []byte
	// MetricsEvery is how often Metrics is sampled for the rate charts.
	// Zero: DefaultMetricsEvery.
	MetricsEvery time.Duration
	// OnRotate, when set, is called after every rotation started from the
	// console, with what it asked and what it got (for ff serve: the
	// keystore audit, httpapi's KeystoreAudit.RotateAll). It never sees the
	// secret.
	OnRotate func(ctx context.Context, r Rotation)
	// Logger receives the console's own lines (logins, cancels,
	// rotations), never a token, secret or payload. Nil: slog.Default().
	Logger *slog.Logger
	// SessionTTL is how long a login lasts. Zero: DefaultSessionTTL.
	SessionTTL time.Duration
	// CountCap bounds the rows the overview reads to count suspended
	// executions. Zero: DefaultCountCap.
	CountCap int
	// PageSize is the number of rows of a page of the suspended list.
	// Zero: DefaultPageSize; at most contracts.MaxListLimit-1.
	PageSize int
	// Now is the console's clock, for ages and countdowns. Nil: time.Now.
	// It should read what the backend's clock reads.
	Now func() time.Time
}

// Rotation is what Options.OnRotate is told of a rotation made from the
// console.
type Rotation struct {
	NewKid     string
	GraceMs    int64
	Result     contracts.RotateAllResult
	Err        error
	RemoteAddr string // the operator's peer address
}

// Console is the console's http.Handler. Create it with New; Close it
// before closing the Engine.
type Console struct {
	e        *engine.Engine
	opts     Options
	prefix   string
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessionStore
	logins   *loginLimiter
	rates    *sampler // nil without Options.Metrics
	static   fs.FS
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the console over e. With Options.Metrics it samples the
// metrics in the background until Close. It panics on a Prefix that does
// not start and end with "/", as a programming error.
func New(e *engine.Engine, opts Options) *Console {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(opts.Prefix, "/") || !strings.HasSuffix(opts.Prefix, "/") {
		panic("console: Options.Prefix must start and end with /")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.CountCap <= 0 {
		opts.CountCap = DefaultCountCap
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	opts.PageSize = min(opts.PageSize, contracts.MaxListLimit-1) // a page reads one row more
	if opts.MetricsEvery <= 0 {
		opts.MetricsEvery = DefaultMetricsEvery
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	static, _ := fs.Sub(staticFS, "static")
	c := &Console{
		e: e, opts: opts, prefix: opts.Prefix, mux: http.NewServeMux(),
		sessions: newSessionStore(opts.SessionTTL, opts.Now),
		logins:   newLoginLimiter(opts.Now),
		static:   static,
	}
	c.pages = parseTemplates(c.funcs())
	if opts.Metrics != nil {
		c.rates = startSampler(opts.Metrics, opts.MetricsEvery, MetricsSamples, opts.Now)
	}
	c.routes()
	return c
}

// Close stops sampling the metrics. The handler still serves afterwards,
// without new samples.
func (c *Console) Close() error {
	if c.rates != nil {
		c.rates.stop()
	}
	return nil
}

func (c *Console) routes() {
	p := c.prefix
	c.mux.HandleFunc("GET "+p+"static/{file}", c.serveStatic)
	c.mux.HandleFunc("GET "+p+"login", c.loginPage)
	c.mux.HandleFunc("POST "+p+"login", c.login)
	c.mux.HandleFunc("POST "+p+"logout", c.authed(c.logout))
	c.mux.HandleFunc("GET "+p+"{$}", c.authed(c.overview))
	c.mux.HandleFunc("GET "+p+"suspended", c.authed(c.suspended))
	c.mux.HandleFunc("GET "+p+"executions", c.authed(c.findExecution))
	c.mux.HandleFunc("GET "+p+"executions/{id}", c.authed(c.execution))
	c.mux.HandleFunc("POST "+p+"executions/{id}/cancel", c.authed(c.cancel))
	c.mux.HandleFunc("GET "+p+"keys", c.authed(c.keys))
	c.mux.HandleFunc("POST "+p+"keys/rotate", c.authed(c.rotate))
	c.mux.HandleFunc(p, c.authed(c.notFound))
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store") // pages and redirects; the assets say no-cache
	if !strings.HasPrefix(r.URL.Path, c.prefix) && r.URL.Path+"/" != c.prefix {
		http.NotFound(w, r)
		return
	}
	if r.URL.Path+"/" == c.prefix {
		http.Redirect(w, r, c.prefix, http.StatusMovedPermanently)
		return
	}
	if c.opts.AdminToken == "" {
		h.Set("Cache-Control", "no-store")
		c.renderStatus(w, r, nil, http.StatusForbidden, "The console is off",
			"The console needs the admin token: start the server with FF_ADMIN_TOKEN set.")
		return
	}
	c.mux.ServeHTTP(w, r)
}

// authed wraps a page that needs a session: without one, the answer is a
// redirect to the login form (GET and HEAD with a next= back to the page).
// A POST is also checked for its origin and its CSRF token (403 otherwise).
func (c *Console) authed(page func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s := c.sessions.fromRequest(r)
		if s == nil {
			to := c.prefix + "login"
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				if next := r.URL.RequestURI(); c.safeNext(next) && next != c.prefix {
					to += "?next=" + queryEscape(next)
				}
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) {
				c.renderStatus(w, r, s, http.StatusForbidden, "Refused", "This form was sent from another site.")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil {
				c.renderStatus(w, r, s, http.StatusBadRequest, "Bad request", "The form could not be read.")
				return
			}
			if !s.checkCSRF(r.PostForm.Get("csrf")) {
				c.renderStatus(w, r, s, http.StatusForbidden, "Refused",
					"The form's CSRF token is missing or wrong: nothing was changed. Reload the page and try again.")
				return
			}
		}
		page(w, r, s)
	}
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderStatus(w, r, s, http.StatusNotFound, "Not found", "There is no console page at this address.")
}

// serveStatic serves the embedded stylesheet and script.
func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(c.static, name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// page is what every template receives.
type page struct {
	Title   string
	Nav     string // the nav entry to mark current
	Prefix  string
	CSRF    string // empty without a session
	Flash   string
	Warning string
	NowMs   int64
	Data    any
}

// render writes the named page with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name string, p page) {
	p.Prefix = c.prefix
	p.NowMs = c.opts.Now().UnixMilli()
	if s != nil {
		p.CSRF = s.csrf
		if p.Flash == "" {
			p.Flash = c.sessions.takeFlash(s)
		}
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		c.opts.Logger.Error("console: rendering a page failed", "page", name, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// statusView is the data of the status page.
type statusView struct {
	Heading, Message string
	Back             string
}

// renderStatus answers a page that only says what happened.
func (c *Console) renderStatus(w http.ResponseWriter, r *http.Request, s *session, status int, heading, message string) {
	c.render(w, r, s, status, "status", page{Title: heading, Data: statusView{Heading: heading, Message: message}})
}

// errorText is what a page shows of an Engine error: its code and detail,
// which never hold a secret or a token (docs/spec.md §6).
func errorText(err error) string {
	ce := contracts.AsError(err)
	return ce.Code + ": " + ce.Detail
}

// statusOf is the HTTP status a page answers for an Engine error.
func statusOf(err error) int {
	switch contracts.AsError(err).Kind {
	case contracts.KindValidation:
		return http.StatusBadRequest
	case contracts.KindNotFound:
		return http.StatusNotFound
	case contracts.KindConflict, contracts.KindState:
		return http.StatusConflict
	default:
		return http.StatusServiceUnavailable
	}
}
