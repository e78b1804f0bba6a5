package cli

import (
	"context"
	"flag"
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
			s, err := secret.load(fs, inv.stdin, "secret_hex")
			if err != nil {
				return inv.inputExit(err)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.Seed(ctx, contracts.SeedArgs{Kid: *kid, Secret: s})
			})
		}
	},
}

var rotateCommand = command{
	name:     "rotate",
	summary:  "make a new kid current on every partition; the outgoing kid verifies for the grace window (exit 1 if any partition failed)",
	synopsis: "--kid K (--secret-file PATH|- | --generate [--generate-to PATH] | --secret-hex HEX) [--grace 24h | --grace-ms N]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		kid := fs.String("kid", "", "the new key id `K` (1-64 bytes of [A-Za-z0-9._-]; never reused)")
		var secret secretFlags
		secret.define(fs)
		grace := fs.Duration("grace", contracts.DefaultGraceMs*time.Millisecond, "how long tokens of the outgoing kid keep verifying")
		graceMs := fs.Int64("grace-ms", 0, "the grace window in milliseconds `N` (instead of --grace)")
		return func(inv *invocation) int {
			if m := missing(fs, "kid"); m != "" {
				return inv.usagef("missing %s", m)
			}
			if countSet(fs, "grace", "grace-ms") > 1 {
				return inv.usagef("give at most one of --grace, --grace-ms")
			}
			ms := grace.Milliseconds()
			if setFlags(fs)["grace-ms"] {
				ms = *graceMs
			}
			s, err := secret.load(fs, inv.stdin, "new_secret_hex")
			if err != nil {
				return inv.inputExit(err)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.RotateAll(ctx, contracts.RotateArgs{NewKid: *kid, NewSecret: s, GraceMs: ms})
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
	synopsis: "[--scope S] (--message M | --message-file PATH|-) --token T",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		scope := fs.String("scope", "", "the scope `S` the token was signed for (default empty)")
		token := fs.String("token", "", "the token `T` (<kid>:<64 hex>)")
		var msg messageFlags
		msg.define(fs)
		return func(inv *invocation) int {
			if m := missing(fs, "token"); m != "" {
				return inv.usagef("missing %s", m)
			}
			m, err := msg.load(fs, inv.stdin)
			if err != nil {
				return inv.inputExit(err)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.Verify(ctx, contracts.VerifyArgs{Scope: *scope, Message: m, Token: *token})
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
