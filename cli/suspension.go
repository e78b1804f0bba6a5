package cli

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"slices"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

var suspendCommand = command{
	name:     "suspend",
	summary:  "suspend an execution on 1-16 waitpoints and print their tokens",
	synopsis: "--execution E --waitpoint KEY [--waitpoint KEY ...] [--condition any|all] [--timeout-ms N] [--idempotency-key K] [--lease-id L]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		var keys stringList
		fs.Var(&keys, "waitpoint", "a waitpoint `KEY` (repeat for several)")
		cond := fs.String("condition", contracts.ConditionAny, "resume on `any` signal or once all waitpoints hold one")
		timeout := fs.Int64("timeout-ms", 0, "time out after `N` ms (default: never)")
		idem := fs.String("idempotency-key", "", "replaying the same key returns the first outcome")
		lease := fs.String("lease-id", "", "the current lease `L`, when re-suspending a claimed execution")
		return func(inv *invocation) int {
			if m := missing(fs, "execution", "waitpoint"); m != "" {
				return inv.usagef("missing %s", m)
			}
			a := contracts.SuspendArgs{ExecutionID: *exec, Condition: *cond, IdempotencyKey: *idem}
			for _, k := range keys {
				a.Waitpoints = append(a.Waitpoints, contracts.WaitpointSpec{Key: k})
			}
			set := setFlags(fs)
			if set["timeout-ms"] {
				a.TimeoutMs = timeout
			}
			if set["lease-id"] {
				a.LeaseID = lease
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.Suspend(ctx, a)
			})
		}
	},
}

var signalCommand = command{
	name:     "signal",
	summary:  "deliver a signal to a waitpoint, presenting its token",
	synopsis: "--execution E --waitpoint-id W (--token-file PATH|- | --token T) --name N [--payload JSON] [--idempotency-key K]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		wp := fs.String("waitpoint-id", "", "the waitpoint id `W` printed by suspend")
		var token tokenFlags
		token.define(fs, "the waitpoint's token")
		name := fs.String("name", "", "the signal name `N`")
		payload := fs.String("payload", "", "a JSON value carried by the signal (default: none)")
		idem := fs.String("idempotency-key", "", "a second delivery with the same key is a duplicate")
		return func(inv *invocation) int {
			need := []string{"execution", "waitpoint-id", "token", "name"}
			if setFlags(fs)["token-file"] {
				need = slices.DeleteFunc(need, func(f string) bool { return f == "token" })
			}
			if m := missing(fs, need...); m != "" {
				if strings.Contains(m, "--token") {
					m += " (or --token-file PATH|-, which keeps the token out of the process list)"
				}
				return inv.usagef("missing %s", m)
			}
			tok, err := token.load(fs, inv.stdin)
			if err != nil {
				return inv.inputExit(err)
			}
			a := contracts.DeliverSignalArgs{ExecutionID: *exec, WaitpointID: *wp, Token: tok, Name: *name, IdempotencyKey: *idem}
			if setFlags(fs)["payload"] {
				a.Payload = json.RawMessage(*payload)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.DeliverSignal(ctx, a)
			})
		}
	},
}

var signalsCommand = command{
	name:     "signals",
	summary:  "list the signals of an execution's latest suspension, in delivery order",
	synopsis: "--execution E [--limit N] [--cursor C]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		limit := fs.Int("limit", contracts.DefaultObserveLimit, "signals per page, `N` from 1 to 1000")
		cursor := fs.String("cursor", "", "continue after the page whose next_cursor is `C`")
		return func(inv *invocation) int {
			if m := missing(fs, "execution"); m != "" {
				return inv.usagef("missing %s", m)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: *exec, Limit: *limit, Cursor: *cursor})
			})
		}
	},
}

var suspendedCommand = command{
	name:     "suspended",
	summary:  "page through suspended executions, oldest first",
	synopsis: "[--limit N] [--cursor C]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		limit := fs.Int("limit", contracts.DefaultListLimit, "page size `N` (1-1000)")
		cursor := fs.String("cursor", "", "the next_cursor `C` of the previous page")
		return func(inv *invocation) int {
			a := contracts.ListSuspendedArgs{Limit: *limit, Cursor: *cursor}
			// The Engine reads a zero limit as "default"; on the command line
			// --limit 0 is an explicit value outside 1-1000.
			if err := a.Validate(); err != nil {
				return inv.print(nil, err)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.ListSuspended(ctx, a)
			})
		}
	},
}

var claimCommand = command{
	name:     "claim",
	summary:  `lease the oldest resumed (or timed-out) execution to a worker, or print {"outcome":"none"}`,
	synopsis: "--worker W [--lease-ms N]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		worker := fs.String("worker", "", "the worker id `W`")
		leaseMs := fs.Int64("lease-ms", contracts.DefaultLeaseMs, "lease length `N` in ms")
		return func(inv *invocation) int {
			if m := missing(fs, "worker"); m != "" {
				return inv.usagef("missing %s", m)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: *worker, LeaseMs: *leaseMs})
			})
		}
	},
}

var completeCommand = command{
	name:     "complete",
	summary:  "complete a claimed execution: forget it and everything recorded for it",
	synopsis: "--execution E --lease-id L",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		lease := fs.String("lease-id", "", "the lease `L` printed by claim")
		return func(inv *invocation) int {
			if m := missing(fs, "execution", "lease-id"); m != "" {
				return inv.usagef("missing %s", m)
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: *exec, LeaseID: *lease})
			})
		}
	},
}

// maxTokenFileBytes bounds what --token-file reads: far more than a token
// (a kid of at most 64 bytes, a colon and 64 hex digits), so that an
// oversized file is reported rather than read without limit.
const maxTokenFileBytes = 4096

// tokenFlags give signal and verify their token: from a file or stdin
// (--token-file, which keeps it out of the process list and the shell's
// history) or inline (--token).
type tokenFlags struct {
	token string
	file  string
}

func (t *tokenFlags) define(fs *flag.FlagSet, what string) {
	fs.StringVar(&t.file, "token-file", "", "read "+what+" from `PATH` (- for stdin); surrounding whitespace is trimmed")
	fs.StringVar(&t.token, "token", "", what+" `T`, <kid>:<64 hex> (visible in the process list: prefer --token-file)")
}

// load returns the token from exactly one of --token-file and --token.
// Errors never quote the token nor the value of --token-file, which may be
// a token pasted in the wrong place.
func (t *tokenFlags) load(fs *flag.FlagSet, stdin io.Reader) (string, error) {
	switch countSet(fs, "token", "token-file") {
	case 0:
		return "", usageError("missing --token (or --token-file PATH|-)")
	case 2:
		return "", usageError("give exactly one of --token-file, --token")
	}
	if !setFlags(fs)["token-file"] {
		return t.token, nil
	}
	b, err := readSecretInput("--token-file", t.file, stdin, maxTokenFileBytes)
	if err != nil {
		return "", err
	}
	if len(b) > maxTokenFileBytes {
		return "", usageError("--token-file: the file holds more than %d bytes; a token is <kid>:<64 hex>", maxTokenFileBytes)
	}
	return strings.TrimSpace(string(b)), nil
}
