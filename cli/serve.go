package cli

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"net/url"
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

var serveCommand = command{
	name:     "serve",
	summary:  "serve the HTTP signal gateway and admin API until SIGINT/SIGTERM (admin routes need $" + AdminTokenEnv + ")",
	synopsis: "[--listen 127.0.0.1:8080]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		listen := fs.String("listen", "127.0.0.1:8080", "the `ADDR` to listen on (port 0 picks a free port; the log says which)")
		return func(inv *invocation) int { return inv.serve(*listen) }
	},
}

// serve opens the backend, seeds it from the environment when asked, and
// serves HTTP until the invocation's context ends, then shuts down
// gracefully. Logs are JSON lines on stderr.
func (inv *invocation) serve(addr string) int {
	log := slog.New(slog.NewJSONHandler(inv.stderr, nil))
	seed, err := seedFromEnv(inv)
	if err != nil {
		return inv.inputExit(err)
	}
	e, err := engine.Open(inv.ctx, inv.backendURL)
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
		return inv.usagef("--listen %s: %v", addr, err)
	}
	admin := os.Getenv(AdminTokenEnv)
	srv := httpapi.NewServer(addr, httpapi.New(e, httpapi.Options{AdminToken: admin, Logger: log}))
	log.Info("listening", "addr", ln.Addr().String(), "backend", redacted(inv.backendURL), "admin_routes", admin != "")
	return serveUntilDone(inv.ctx, srv, ln, log)
}

// serveUntilDone serves on ln until ctx ends, then lets in-flight requests
// finish within ShutdownGrace.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger) int {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		log.Error("server stopped", "error", err.Error())
		return ExitContract
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", "error", err.Error())
		return ExitContract
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("server stopped", "error", err.Error())
		return ExitContract
	}
	log.Info("stopped")
	return ExitOK
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
	text, err := readSecretFile(file, inv.stdin)
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

// redacted returns rawURL with any password replaced, for logs.
func redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
