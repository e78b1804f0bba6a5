package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

var seedCommand = command{
	name:     "seed",
	summary:  "install the first signing secret (idempotent: safe on every start)",
	synopsis: "--kid K (--secret-file PATH|- | --generate [--generate-to PATH] | --secret-hex HEX)",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		kid := fs.String("kid", "", "the key id `K` (1-64 bytes of [A-Za-z0-9._-])")
		var secret secretFlags
		secret.define(fs)
		return func(inv *invocation) int {
			if m := missing(fs, "kid"); m != "" {
				return inv.usagef("missing %s", m)
			}
			s, kept, err := loadSecret(fs, secret, inv.stdin, "secret_hex")
			if err != nil {
				return inv.inputExit(err)
			}
			var installed, unknown bool
			code := inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				out, err := e.Seed(ctx, contracts.SeedArgs{Kid: *kid, Secret: s})
				inv.audit().Seed(ctx, inv.caller(), *kid, out, err)
				installed = err == nil && out.Outcome == contracts.SeedSeeded
				unknown = outcomeUnknown(err)
				return out, err
			})
			kept.settle(inv, installed, unknown)
			return code
		}
	},
}

var rotateCommand = command{
	name: "rotate",
	summary: "make a new kid current on every partition; the outgoing kid verifies for the grace window (exit 1 if any partition failed); " +
		"--auto: rotate to the current period's kid with a generated secret, for a cron job",
	synopsis: "(--kid K (--secret-file PATH|- | --generate [--generate-to PATH] | --secret-hex HEX) | --auto --every D) [--grace 24h | --grace-ms N]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		kid := fs.String("kid", "", "the new key id `K` (1-64 bytes of [A-Za-z0-9._-]; never reused)")
		var secret secretFlags
		secret.define(fs)
		grace := fs.Duration("grace", contracts.DefaultGraceMs*time.Millisecond, "how long tokens of the outgoing kid keep verifying")
		graceMs := fs.Int64("grace-ms", 0, "the grace window in milliseconds `N` (instead of --grace)")
		auto := fs.Bool("auto", false, "rotate to the kid of the current period (auto-<period start, UTC>) with a generated secret, unless it or a later one is current: "+
			"idempotent and safe concurrently, for a cron job run every --every (no --kid, no secret flags)")
		every := fs.Duration("every", 0, "with --auto: the rotation period `D` (whole seconds, at least 1s; the grace must be at least D)")
		return func(inv *invocation) int {
			set := setFlags(fs)
			if countSet(fs, "grace", "grace-ms") > 1 {
				return inv.usagef("give at most one of --grace, --grace-ms")
			}
			ms := grace.Milliseconds()
			if set["grace-ms"] {
				ms = *graceMs
			}
			if *auto {
				return inv.rotateAuto(fs, *every, ms)
			}
			if set["every"] {
				return inv.usagef("--every goes with --auto")
			}
			if m := missing(fs, "kid"); m != "" {
				return inv.usagef("missing %s (or --auto)", m)
			}
			s, kept, err := loadSecret(fs, secret, inv.stdin, "new_secret_hex")
			if err != nil {
				return inv.inputExit(err)
			}
			var installed, unknown bool
			code := inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				res, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: *kid, NewSecret: s, GraceMs: ms})
				inv.audit().RotateAll(ctx, inv.caller(), *kid, ms, res, err)
				unknown = outcomeUnknown(err)
				for _, entry := range res.Entries {
					installed = installed || entry.Outcome != nil && entry.Outcome.Outcome == contracts.RotateRotated
					unknown = unknown || entry.Error != nil && outcomeUnknown(entry.Error)
				}
				return res, err
			})
			kept.settle(inv, installed, unknown)
			return code
		}
	},
}

// rotateAuto is `ff rotate --auto --every D`: one scheduled rotation for
// the current period (rotationSchedule.rotate), printing the rotate_all
// envelope. It exits 0 when the period's kid was installed now or before,
// also by another caller; 1 on an error, a failed partition included.
func (inv *invocation) rotateAuto(fs *flag.FlagSet, every time.Duration, graceMs int64) int {
	if countSet(fs, "kid", "secret-file", "secret-hex", "generate", "generate-to") > 0 {
		return inv.usagef("--auto names its kid after the period and generates its secret: drop --kid and the secret flags")
	}
	if !setFlags(fs)["every"] {
		return inv.usagef("--auto needs --every D, the period the cron job runs at")
	}
	sched, err := newRotationSchedule("--every", every, graceFlag(fs), graceMs)
	if err != nil {
		return inv.inputExit(err)
	}
	secret, err := drawSecret()
	if err != nil {
		return inv.usagef("%v", err)
	}
	defer clear(secret)
	return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
		kid, res, err := sched.rotate(ctx, e, sched.periodStart(time.Now()), secret)
		c := inv.caller()
		c.Command = "rotate --auto"
		inv.audit().RotateAll(ctx, c, kid, sched.graceMs, res, err)
		return res, err
	})
}

// graceFlag names the grace flag the user gave, for usage errors.
func graceFlag(fs *flag.FlagSet) string {
	if setFlags(fs)["grace-ms"] {
		return "--grace-ms"
	}
	return "--grace"
}

var revokeCommand = command{
	name: "revoke",
	summary: "revoke a verifying kid on every partition, for a leaked secret: its tokens answer token_expired at once, " +
		"its secret is deleted and its name never reused (exit 1 if any partition failed, e.g. kid_is_current: rotate first)",
	synopsis: "--kid K",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		kid := fs.String("kid", "", "the verifying key id `K` to revoke (not the current one: rotate first)")
		return func(inv *invocation) int {
			return inv.withFlags(fs, []string{"kid"}, func(ctx context.Context, e *engine.Engine) (any, error) {
				res, err := e.RevokeKid(ctx, contracts.RevokeKidArgs{Kid: *kid})
				inv.audit().RevokeKid(ctx, inv.caller(), *kid, res, err)
				return res, err
			})
		}
	},
}

var kidsCommand = command{
	name:     "kids",
	summary:  "list each partition's current kid and the verifying kids still in grace",
	synopsis: "",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		return func(inv *invocation) int {
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.ListKids(ctx)
			})
		}
	},
}

var signCommand = command{
	name:     "sign",
	summary:  "sign a message with the current kid of the scope's partition",
	synopsis: "[--scope S] (--message M | --message-file PATH|-)",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		scope := fs.String("scope", "", "the scope `S` that routes to a partition (0-256 bytes; default empty)")
		var msg messageFlags
		msg.define(fs)
		return func(inv *invocation) int {
			m, err := msg.load(fs, inv.stdin)
			if err != nil {
				return inv.inputExit(err)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.Sign(ctx, contracts.SignArgs{Scope: *scope, Message: m})
			})
		}
	},
}

var verifyCommand = command{
	name:     "verify",
	summary:  "verify a token for a message (exit 1 with invalid_token or token_expired when rejected)",
	synopsis: "[--scope S] (--message M | --message-file PATH|-) (--token-file PATH|- | --token T)",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		scope := fs.String("scope", "", "the scope `S` the token was signed for (default empty)")
		var token tokenFlags
		token.define(fs, "the token")
		var msg messageFlags
		msg.define(fs)
		return func(inv *invocation) int {
			if setFlags(fs)["message-file"] && msg.file == "-" && setFlags(fs)["token-file"] && token.file == "-" {
				return inv.usagef("--message-file and --token-file cannot both read stdin (-)")
			}
			tok, err := token.load(fs, inv.stdin)
			if err != nil {
				return inv.inputExit(err)
			}
			m, err := msg.load(fs, inv.stdin)
			if err != nil {
				return inv.inputExit(err)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.Verify(ctx, contracts.VerifyArgs{Scope: *scope, Message: m, Token: tok})
			})
		}
	},
}

// MigrateResult is the envelope of `ff migrate`: the migrations applied, in
// order; empty when the schema was current or the backend has none.
type MigrateResult struct {
	Applied []string `json:"applied"`
}

var migrateCommand = command{
	name:     "migrate",
	summary:  `apply the backend's pending schema migrations; prints {"applied":[...]}`,
	synopsis: "",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		return func(inv *invocation) int {
			if inv.kekErr != nil {
				return inv.print(nil, inv.kekErr)
			}
			applied, err := engine.Migrate(inv.ctx, inv.backendURL)
			if err != nil {
				return inv.print(nil, err)
			}
			if applied == nil {
				applied = []string{}
			}
			return inv.print(MigrateResult{Applied: applied}, nil)
		}
	},
}

// loadSecret returns the secret of seed and rotate from exactly one of
// their sources (secretFlags.load), with two differences:
//
//   - a --secret-file that cannot be read is reported by the OS's reason,
//     never by its value, which may be a secret pasted in the wrong place;
//   - with --generate --generate-to PATH, the file is written (0600, new)
//     before the backend is called, so that a secret installed is never
//     lost, and the returned *generatedFile removes it again unless the
//     secret was installed (settle).
func loadSecret(fs *flag.FlagSet, s secretFlags, stdin io.Reader, field string) (contracts.Secret, *generatedFile, error) {
	to := s.generateTo
	secret, err := s.load(fs, stdin, field)
	if err != nil || !s.generate || to == "" {
		return secret, nil, err
	}
	g, err := writeGenerated(to, secret)
	if err != nil {
		return nil, nil, err
	}
	return secret, g, nil
}

// generatedFile is the --generate-to file of one seed or rotate.
type generatedFile struct{ path string }

// writeGenerated writes the secret's hex and a newline to a new file at
// path with mode 0600, synced to disk. Errors never name the path.
func writeGenerated(path string, secret contracts.Secret) (*generatedFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, usageError("--generate-to: cannot create the file: %s (the file must not exist; the value is not shown)", osReason(err))
	}
	_, werr := f.WriteString(hex.EncodeToString(secret) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if werr != nil || serr != nil || cerr != nil {
		_ = os.Remove(path)
		return nil, usageError("--generate-to: writing the file failed; nothing was installed")
	}
	return &generatedFile{path: path}, nil
}

// settle keeps the file when the generated secret was installed (seed
// outcome seeded, or a partition rotated to it) or when the outcome is
// unknown (the call failed in transport: it may have committed), and
// removes it otherwise: a kid that was already seeded keeps its stored
// secret, which the file does not hold. A note on stderr says what
// happened to the file unless it was simply kept.
func (g *generatedFile) settle(inv *invocation, installed, unknown bool) {
	switch {
	case g == nil || installed:
	case unknown:
		fmt.Fprintf(inv.stderr, "ff %s: --generate-to: the file was kept: the call failed before its outcome was known, so the generated secret may be installed; check with `ff %s --secret-file` naming it\n", inv.cmd, inv.cmd)
	default:
		if err := os.Remove(g.path); err != nil {
			fmt.Fprintf(inv.stderr, "ff %s: --generate-to: the generated secret was not installed, and removing the file failed (%s); delete it: it is not the kid's secret\n", inv.cmd, osReason(err))
			return
		}
		fmt.Fprintf(inv.stderr, "ff %s: --generate-to: no file written: the generated secret was not installed (the stored secret stays)\n", inv.cmd)
	}
}

// outcomeUnknown reports whether err leaves it open whether the call
// committed: a transport or unavailable error, other than a closed backend
// or a schema the binary cannot use, which fail before anything is written.
func outcomeUnknown(err error) bool {
	if err == nil {
		return false
	}
	e := contracts.AsError(err)
	switch {
	case errors.Is(e, contracts.ErrBackendClosed), errors.Is(e, contracts.ErrSchemaMismatch), errors.Is(e, contracts.ErrKEKMismatch):
		return false
	}
	return e.Kind == contracts.KindTransport || e.Kind == contracts.KindUnavailable
}
