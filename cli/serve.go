package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/flowfabric/flowfabric-go/console"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

// Environment variables read by ff serve.
const (
	AdminTokenEnv = "FF_ADMIN_TOKEN"                // enables the admin routes
	SeedKidEnv    = "FF_WAITPOINT_HMAC_KID"         // with SeedSecretEnv: seed at start-up
	SeedSecretEnv = "FF_WAITPOINT_HMAC_SECRET_FILE" // file holding the secret's hex
)

// ShutdownGrace bounds how long ff serve waits for in-flight requests after
// SIGINT or SIGTERM.
const ShutdownGrace = 10 * time.Second

// MinAdminTokenBytes is the shortest FF_ADMIN_TOKEN ff serve accepts: the
// admin routes hold every secret's power, and a short token can be guessed.
// `openssl rand -hex 32` makes a good one.
const MinAdminTokenBytes = 32

var serveCommand = command{
	name: "serve",
	summary: "serve the HTTP signal gateway and admin API until SIGINT/SIGTERM (admin routes need $" + AdminTokenEnv +
		", at least 32 bytes); --rotate-every D rotates the signing secret every period",
	synopsis: "[--listen 127.0.0.1:8080] [--metrics-listen ADDR] [--rotate-every D [--grace 24h]] [--reseed-on-reset] [--callback-base-url URL] [--console]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		listen := fs.String("listen", "127.0.0.1:8080", "the `ADDR` to listen on (port 0 picks a free port; the log says which)")
		metrics := fs.String("metrics-listen", "", "serve GET /metrics on this `ADDR` only, and not on --listen (e.g. a private 127.0.0.1:9090 when --listen faces the internet)")
		every := fs.Duration("rotate-every", 0, "rotate to a generated secret every period `D` (whole seconds, at least 1s), at start-up and at each period boundary, "+
			"under the kid auto-<period start, UTC>; servers sharing the store agree on it. Never seeds an empty keystore")
		grace := fs.Duration("grace", contracts.DefaultGraceMs*time.Millisecond, "with --rotate-every: how long the outgoing kid keeps verifying (at least D)")
		reseed := fs.Bool("reseed-on-reset", false, "when the store lost its data (store_reset: a Valkey restarted without persistence), take the empty store and seed it again from $"+
			SeedKidEnv+" and $"+SeedSecretEnv+"; without it, ff serve keeps answering store_reset and /readyz fails until an operator acts")
		callbacks := fs.String("callback-base-url", "", "turn callback URLs on: POST /v1/callbacks/{execution_id}/{waitpoint_id}/{token} delivers a signal without an Authorization header, "+
			"and POST /v1/admin/callback-url answers such URLs under this `URL` (this server as senders reach it, e.g. https://hooks.example.com). "+
			"A callback URL is a credential: proxies and browsers log URLs")
		consoleOn := fs.Bool("console", false, "serve the operator console under /console/ on --listen: pages for suspended executions, signals, cancel and key rotation, "+
			"behind a login that asks for $"+AdminTokenEnv)
		return func(inv *invocation) int {
			set := setFlags(fs)
			if set["metrics-listen"] && *metrics == "" {
				return inv.usagef("--metrics-listen: give an address, or leave the flag out to serve /metrics on --listen")
			}
			if set["callback-base-url"] {
				if err := httpapi.CheckCallbackBaseURL(*callbacks); err != nil {
					return inv.usagef("--callback-base-url: must be an absolute http or https URL with a host and no user information, query or fragment")
				}
			}
			var sched *rotationSchedule
			switch {
			case set["rotate-every"]:
				s, err := newRotationSchedule("--rotate-every", *every, "--grace", grace.Milliseconds())
				if err != nil {
					return inv.inputExit(err)
				}
				sched = &s
			case set["grace"]:
				return inv.usagef("--grace goes with --rotate-every")
			}
			return inv.serve(serveConfig{addr: *listen, metricsAddr: *metrics, sched: sched, reseed: *reseed, callbackBase: *callbacks, console: *consoleOn})
		}
	},
}

// serve opens the backend, seeds it from the environment when asked, and
// serves HTTP until the invocation's context ends, then shuts down
// gracefully. With metricsAddr, /metrics is served there only. With sched,
// a rotationScheduler rotates the keystore meanwhile. Logs are JSON lines
// on stderr (the drivers' client libraries log through slog.Default, which
// is set to the same handler); the seed and every scheduled rotation log a
// keystore audit line and count in the handler's metrics. A store reset
// (docs/spec.md §6.1) is logged at ERROR when the watch sees it and, with
// reseed, answered by adopting the empty store and seeding it again. With
// callbackBase, the callback routes are on.
func (inv *invocation) serve(c serveConfig) int {
	addr, metricsAddr, sched, reseed := c.addr, c.metricsAddr, c.sched, c.reseed
	log := slog.New(slog.NewJSONHandler(inv.stderr, nil))
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(log)
	admin := os.Getenv(AdminTokenEnv)
	if admin != "" && len(admin) < MinAdminTokenBytes {
		return inv.usagef("$%s is %d bytes long; it must be at least %d bytes (e.g. from `openssl rand -hex 32`), or unset to turn the admin routes off. Its value is not shown",
			AdminTokenEnv, len(admin), MinAdminTokenBytes)
	}
	seed, err := seedFromEnv(inv)
	if err != nil {
		return inv.inputExit(err)
	}
	if c.console && admin == "" {
		return inv.usagef("--console needs $%s: its login form asks for that token", AdminTokenEnv)
	}
	if reseed && seed == nil {
		return inv.usagef("--reseed-on-reset needs $%s and $%s: the secret it seeds again", SeedKidEnv, SeedSecretEnv)
	}
	e, err := inv.open()
	if err != nil {
		return inv.print(nil, err)
	}
	defer e.Close()
	if !e.Capabilities().Persistent {
		log.Warn("the store does not persist its data: a restart of the store (or of this process, for an in-memory one) loses every secret and wait; "+
			"enable persistence (Valkey: appendonly yes, or RDB snapshots) for anything but a demo", "backend", engine.RedactURL(inv.backendURL))
	}
	h := httpapi.New(e, httpapi.Options{AdminToken: admin, Logger: log, DisableMetricsRoute: metricsAddr != "", CallbackBaseURL: c.callbackBase})
	defer h.Close() // before e.Close: ends the long polls and the claimable watcher
	if seed != nil {
		out, err := e.Seed(inv.ctx, *seed)
		h.KeystoreAudit().Seed(inv.ctx, inv.caller(), seed.Kid, out, err)
		if err != nil {
			return inv.print(nil, err)
		}
		warnSeedMismatch(log, out)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return inv.usagef("--listen %s: %v", printable(addr), err)
	}
	var root http.Handler = h
	if c.console {
		con := newConsole(inv, e, h, admin, log, ln.Addr())
		defer con.Close()
		root = withConsole(con, h)
	}
	apiSrv := httpapi.NewServer(addr, root)
	apiSrv.RegisterOnShutdown(func() { _ = h.Close() }) // NewServer does it only for a bare *httpapi.Handler
	servers := []served{{apiSrv, ln}}
	attrs := []any{"addr", ln.Addr().String()}
	if metricsAddr != "" {
		mln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			ln.Close()
			return inv.usagef("--metrics-listen %s: %v", printable(metricsAddr), err)
		}
		servers = append(servers, served{httpapi.NewServer(metricsAddr, h.MetricsOnly()), mln})
		attrs = append(attrs, "metrics_addr", mln.Addr().String())
	}
	attrs = append(attrs, "backend", engine.RedactURL(inv.backendURL), "admin_routes", admin != "", "callback_urls", c.callbackBase != "", "console", c.console)
	if sched != nil {
		attrs = append(attrs, "rotate_every", sched.every.String(), "grace", (time.Duration(sched.graceMs) * time.Millisecond).String())
	}
	log.Info("listening", attrs...)
	stop := startScheduler(inv.ctx, sched, &rotationScheduler{e: e, audit: h.KeystoreAudit(), log: log, now: time.Now})
	defer stop()
	w := &resetWatch{e: e, log: log, every: ResetCheckInterval, audit: h.KeystoreAudit(), caller: inv.caller()}
	if reseed {
		w.seed = seed
	}
	stopWatch := w.start(inv.ctx)
	defer stopWatch()
	return serveUntilDone(inv.ctx, servers, log)
}

// serveConfig is what ff serve's flags ask for.
type serveConfig struct {
	addr, metricsAddr string
	sched             *rotationSchedule // nil: no scheduled rotation
	reseed            bool
	callbackBase      string // empty: callback URLs off
	console           bool   // serve the operator console under /console/
}

// newConsole returns the operator console over e (package console): its
// login takes the admin token, its rates come from h's metrics, and each
// rotation it makes is a keystore audit line counted in h's metrics. Its
// session cookie goes without Secure only on plain HTTP to a loopback
// listener (see console.Options.PlainHTTPLoopback).
func newConsole(inv *invocation, e *engine.Engine, h *httpapi.Handler, admin string, log *slog.Logger, addr net.Addr) *console.Console {
	tcp, ok := addr.(*net.TCPAddr)
	return console.New(e, console.Options{
		AdminToken:        admin,
		Logger:            log,
		PlainHTTPLoopback: ok && tcp.IP.IsLoopback(),
		Metrics: func() []byte {
			var b bytes.Buffer
			_ = h.WriteMetrics(&b)
			return b.Bytes()
		},
		OnRotate: func(ctx context.Context, r console.Rotation) {
			c := inv.caller()
			c.Via, c.Command, c.RemoteAddr = "console", "rotate", r.RemoteAddr
			h.KeystoreAudit().RotateAll(ctx, c, r.NewKid, r.GraceMs, r.Result, r.Err)
		},
	})
}

// withConsole serves /console and /console/... with con and every other
// path with api, untouched (so the API keeps answering non-canonical paths
// with its own 404 envelope rather than http.ServeMux's redirect).
func withConsole(con *console.Console, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/") {
			con.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// ResetCheckInterval is how often ff serve pings its store to find a store
// reset (docs/spec.md §6.1) that no request has met yet.
const ResetCheckInterval = 5 * time.Second

// resetWatch pings the store every interval and reports a store reset once
// per reset; with seed set it adopts the emptied store and seeds it again.
type resetWatch struct {
	e      *engine.Engine
	log    *slog.Logger
	every  time.Duration
	audit  *httpapi.KeystoreAudit
	caller httpapi.Caller
	seed   *contracts.SeedArgs // nil: report only
	lost   bool                // a reset was reported and not yet answered
}

// start runs the watch until ctx ends and returns the function that stops
// it and waits until it has stopped.
func (w *resetWatch) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.check(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// check pings once and acts on a store reset.
func (w *resetWatch) check(ctx context.Context) {
	err := w.e.Ping(ctx)
	if !errors.Is(err, contracts.ErrStoreReset) {
		if err == nil && w.lost {
			w.log.Info("store: answering again")
			w.lost = false
		}
		return
	}
	if !w.lost {
		w.log.Error("store: it lost its data under this server (every secret and wait is gone); every call answers store_reset and /readyz fails",
			"error", contracts.AsError(err).Detail, "reseed_on_reset", w.seed != nil)
		w.lost = true
	}
	if w.seed == nil {
		return
	}
	if err := w.e.AdoptStore(ctx); err != nil {
		w.log.Error("store: cannot take the emptied store", "error", contracts.AsError(err).Detail)
		return
	}
	out, err := w.e.Seed(ctx, *w.seed)
	w.audit.Seed(ctx, w.caller, w.seed.Kid, out, err)
	if err != nil {
		w.log.Error("store: took the emptied store but could not seed it", "error", contracts.AsError(err).Detail)
		return
	}
	w.log.Warn("store: took the emptied store and seeded it again (--reseed-on-reset); waits and tokens from before the loss are gone", "kid", w.seed.Kid)
	w.lost = false
}

// startScheduler runs r with sched in the background, when sched is set,
// and returns the function that stops it and waits until it has stopped
// (before the Engine closes).
func startScheduler(ctx context.Context, sched *rotationSchedule, r *rotationScheduler) (stop func()) {
	if sched == nil {
		return func() {}
	}
	r.sched = *sched
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// served is one server and the listener it serves on.
type served struct {
	srv *http.Server
	ln  net.Listener
}

// serveUntilDone serves every server on its listener until ctx ends (or
// one of them fails), then lets in-flight requests finish within
// ShutdownGrace.
func serveUntilDone(ctx context.Context, servers []served, log *slog.Logger) int {
	done := make(chan error, len(servers))
	for _, s := range servers {
		go func() { done <- s.srv.Serve(s.ln) }()
	}
	code, pending := ExitOK, len(servers)
	select {
	case err := <-done:
		log.Error("server stopped", "error", err.Error())
		code, pending = ExitContract, pending-1
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	for _, s := range servers {
		if err := s.srv.Shutdown(sctx); err != nil {
			log.Error("shutdown", "error", err.Error())
			code = ExitContract
		}
	}
	for range pending {
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("server stopped", "error", err.Error())
			code = ExitContract
		}
	}
	if code == ExitOK {
		log.Info("stopped")
	}
	return code
}

// seedFromEnv returns the seed arguments named by FF_WAITPOINT_HMAC_KID and
// FF_WAITPOINT_HMAC_SECRET_FILE, nil when neither is set.
func seedFromEnv(inv *invocation) (*contracts.SeedArgs, error) {
	kid, file := os.Getenv(SeedKidEnv), os.Getenv(SeedSecretEnv)
	if kid == "" && file == "" {
		return nil, nil
	}
	if kid == "" || file == "" {
		return nil, usageError("set both %s and %s, or neither", SeedKidEnv, SeedSecretEnv)
	}
	text, err := readSecretFile("$"+SeedSecretEnv, file, inv.stdin)
	if err != nil {
		return nil, err
	}
	secret, err := contracts.ParseSecretHex(SeedSecretEnv, text)
	if err != nil {
		return nil, err
	}
	return &contracts.SeedArgs{Kid: kid, Secret: secret}, nil
}

// warnSeedMismatch warns, next to the seed's audit line, when the stored
// secret of the kid is not the one FF_WAITPOINT_HMAC_SECRET_FILE holds.
func warnSeedMismatch(log *slog.Logger, out contracts.SeedOutcome) {
	if out.SameSecret != nil && !*out.SameSecret {
		log.Warn("seed: the stored secret of this kid differs from "+SeedSecretEnv+"; tokens will not verify with the file's secret",
			"outcome", out.Outcome, "kid", out.Kid, "current_kid", out.CurrentKid)
	}
}
