package cli

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

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
	synopsis: "[--listen 127.0.0.1:8080] [--metrics-listen ADDR] [--rotate-every D [--grace 24h]]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		listen := fs.String("listen", "127.0.0.1:8080", "the `ADDR` to listen on (port 0 picks a free port; the log says which)")
		metrics := fs.String("metrics-listen", "", "serve GET /metrics on this `ADDR` only, and not on --listen (e.g. a private 127.0.0.1:9090 when --listen faces the internet)")
		every := fs.Duration("rotate-every", 0, "rotate to a generated secret every period `D` (whole seconds, at least 1s), at start-up and at each period boundary, "+
			"under the kid auto-<period start, UTC>; servers sharing the store agree on it. Never seeds an empty keystore")
		grace := fs.Duration("grace", contracts.DefaultGraceMs*time.Millisecond, "with --rotate-every: how long the outgoing kid keeps verifying (at least D)")
		return func(inv *invocation) int {
			set := setFlags(fs)
			if set["metrics-listen"] && *metrics == "" {
				return inv.usagef("--metrics-listen: give an address, or leave the flag out to serve /metrics on --listen")
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
			return inv.serve(*listen, *metrics, sched)
		}
	},
}

// serve opens the backend, seeds it from the environment when asked, and
// serves HTTP until the invocation's context ends, then shuts down
// gracefully. With metricsAddr, /metrics is served there only. With sched,
// a rotationScheduler rotates the keystore meanwhile. Logs are JSON lines
// on stderr; the seed and every scheduled rotation log a keystore audit
// line and count in the handler's metrics.
func (inv *invocation) serve(addr, metricsAddr string, sched *rotationSchedule) int {
	log := slog.New(slog.NewJSONHandler(inv.stderr, nil))
	admin := os.Getenv(AdminTokenEnv)
	if admin != "" && len(admin) < MinAdminTokenBytes {
		return inv.usagef("$%s is %d bytes long; it must be at least %d bytes (e.g. from `openssl rand -hex 32`), or unset to turn the admin routes off. Its value is not shown",
			AdminTokenEnv, len(admin), MinAdminTokenBytes)
	}
	seed, err := seedFromEnv(inv)
	if err != nil {
		return inv.inputExit(err)
	}
	e, err := inv.open()
	if err != nil {
		return inv.print(nil, err)
	}
	defer e.Close()
	h := httpapi.New(e, httpapi.Options{AdminToken: admin, Logger: log, DisableMetricsRoute: metricsAddr != ""})
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
	servers := []served{{httpapi.NewServer(addr, h), ln}}
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
	attrs = append(attrs, "backend", engine.RedactURL(inv.backendURL), "admin_routes", admin != "")
	if sched != nil {
		attrs = append(attrs, "rotate_every", sched.every.String(), "grace", (time.Duration(sched.graceMs) * time.Millisecond).String())
	}
	log.Info("listening", attrs...)
	stop := startScheduler(inv.ctx, sched, &rotationScheduler{e: e, audit: h.KeystoreAudit(), log: log, now: time.Now})
	defer stop()
	return serveUntilDone(inv.ctx, servers, log)
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
