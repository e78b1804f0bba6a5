package valkey

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// go-redis logs through one logger for the whole process (redis.SetLogger),
// by default a log.Logger of its own writing "redis: ..." lines to stderr,
// whatever the application configured. Importing this package installs
// slogForwarder instead (in its init), so that these lines reach
// slog.Default() at the time each is logged: one record at WARN, message
// "valkey client", the go-redis text in the attribute "text". ff serve, which
// sets slog.Default to its JSON handler, thus logs them as JSON lines.
//
// go-redis logs failures of its background work: a pool that failed to
// dial ("connection pool: failed to dial after N attempts: dial tcp ...:
// connection refused"), a Pub/Sub channel that dropped a message, a
// cluster that picked a node while every one failed, and the like. Its
// texts hold addresses, error texts of the network and TLS stack and of
// the server (whose replies never quote a password) and counts; no command
// argument, no URL and no password, so the forwarder passes them as they
// are.
//
// An application that wants go-redis' own logger back, or another one,
// calls redis.SetLogger (or logging.Disable, logging.Enable of
// github.com/redis/go-redis/v9/logging) after this package's init has run,
// that is anywhere in main or later.
func init() { redis.SetLogger(slogForwarder{}) }

// slogForwarder is the go-redis logger that forwards each line to
// slog.Default().
type slogForwarder struct{}

// Printf logs the formatted text at WARN on slog.Default().
func (slogForwarder) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	slog.Default().Log(ctx, slog.LevelWarn, "valkey client", "text", fmt.Sprintf(format, v...))
}
