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
		", at least 32 bytes)",
	synopsis: "[--listen 127.0.0.1:8080] [--metrics-listen ADDR]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		listen := fs.String("listen", "127.0.0.1:8080", "the `ADDR` to listen on (port 0 picks a free port; the log says which)")
		metrics := fs.String("metrics-listen", "", "serve GET /metrics on this `ADDR` only, and not on --listen (e.g. a private 127.0.0.1:9090 when --listen faces the internet)")
		return func(inv *invocation) int {
			if setFlags(fs)["metrics-listen"] && *metrics == "" {
				return inv.usagef("--metrics-listen: give an address, or leave the flag out to serve /metrics on --listen")
			}
			return inv.serve(*listen, *metrics)
		}
	},
}

// serve opens the backend, seeds it from the environment when asked, and
// serves HTTP until the invocation's context ends, then shuts down
// gracefully. With metricsAddr, /metrics is served there only. Logs are
// JSON lines on stderr.
func (inv *invocation) serve(addr, metricsAddr string) int {
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
	if seed != nil {
		out, err := e.Seed(inv.ctx, *seed)
		if err != nil {
			return inv.print(nil, err)
		}
		logSeed(log, out)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return inv.usagef("--listen %s: %v", printable(addr), err)
	}
	h := httpapi.New(e, httpapi.Options{AdminToken: admin, Logger: log, DisableMetricsRoute: metricsAddr != ""})
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
	log.Info("listening", attrs...)
	return serveUntilDone(inv.ctx, servers, log)
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

func logSeed(log *slog.Logger, out contracts.SeedOutcome) {
	attrs := []any{"outcome", out.Outcome, "kid", out.Kid, "current_kid", out.CurrentKid}
	if out.SameSecret != nil && !*out.SameSecret {
		log.Warn("seed: the stored secret of this kid differs from "+SeedSecretEnv+"; tokens will not verify with the file's secret", attrs...)
		return
	}
	log.Info("seed", attrs...)
}
