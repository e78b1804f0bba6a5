package cli

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

var suspendCommand = command{
	name:    "suspend",
	summary: "suspend an execution on 1-16 waitpoints and print their tokens",
	synopsis: "--execution E (--waitpoint KEY | --pending W) [--waitpoint KEY | --pending W ...]\n" +
		"        [--condition any|all | --count N] [--timeout-ms N] [--idempotency-key K] [--lease-id L] [--tag T ...]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		var wps waitpointList
		fs.Var(wps.flag(false), "waitpoint", "a new waitpoint `KEY` (repeat for several)")
		fs.Var(wps.flag(true), "pending", "use the pending waitpoint `W` made by ff waitpoint create (repeatable; in order with --waitpoint)")
		cond := fs.String("condition", contracts.ConditionAny, "resume on `any` signal or once all waitpoints hold one")
		count := fs.Int("count", 0, "resume once `N` distinct waitpoints hold a signal (instead of --condition)")
		timeout := fs.Int64("timeout-ms", 0, "time out after `N` ms (default: never)")
		idem := fs.String("idempotency-key", "", "replaying the same key returns the first outcome")
		lease := fs.String("lease-id", "", "the current lease `L`, when re-suspending a claimed execution")
		var tags stringList
		fs.Var(&tags, "tag", "tag the suspension with `T`, shown by ff suspended and filtered by --tag there (repeat for several)")
		return func(inv *invocation) int {
			if m := missing(fs, "execution"); m != "" {
				return inv.usagef("missing %s", m)
			}
			if len(wps) == 0 {
				return inv.usagef("missing --waitpoint (or --pending)")
			}
			if countSet(fs, "condition", "count") > 1 {
				return inv.usagef("give at most one of --condition, --count")
			}
			a := contracts.SuspendArgs{ExecutionID: *exec, Waitpoints: wps, Condition: *cond, IdempotencyKey: *idem, Tags: tags}
			set := setFlags(fs)
			if set["count"] {
				c, err := countCondition(*count)
				if err != nil {
					return inv.print(nil, err)
				}
				a.Condition = c
			}
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

// countCondition is --count N as the HTTP API reads {"count": N}
// (contracts.ParseConditionJSON), so that both refuse the same values with
// the same detail (condition.count).
func countCondition(n int) (string, error) {
	return contracts.ParseConditionJSON("condition", json.RawMessage(`{"count":`+strconv.Itoa(n)+`}`))
}

// waitpointList holds suspend's waitpoints in command-line order: --waitpoint
// adds a new one by key, --pending a pending one by id (docs/spec.md §8.1).
type waitpointList []contracts.WaitpointSpec

// flag returns the flag.Value of --pending (pending) or --waitpoint.
func (l *waitpointList) flag(pending bool) flag.Value { return waitpointFlag{l, pending} }

type waitpointFlag struct {
	l       *waitpointList
	pending bool
}

func (f waitpointFlag) String() string {
	if f.l == nil {
		return ""
	}
	var out []string
	for _, w := range *f.l {
		if f.pending == (w.Pending != "") {
			out = append(out, w.Key+w.Pending)
		}
	}
	return strings.Join(out, ",")
}

func (f waitpointFlag) Set(v string) error {
	if f.pending {
		*f.l = append(*f.l, contracts.WaitpointSpec{Pending: v})
	} else {
		*f.l = append(*f.l, contracts.WaitpointSpec{Key: v})
	}
	return nil
}

var signalCommand = command{
	name:     "signal",
	summary:  "deliver a signal to a waitpoint, presenting its token",
	synopsis: "--execution E --waitpoint-id W (--token-file PATH|- | --token T) --name N [--payload JSON] [--idempotency-key K]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		wp := fs.String("waitpoint-id", "", "the waitpoint id `W` printed by suspend or waitpoint create")
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
			return inv.withFlags(fs, []string{"execution"}, func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: *exec, Limit: *limit, Cursor: *cursor})
			})
		}
	},
}

var suspendedCommand = command{
	name:     "suspended",
	summary:  "page through suspended executions, oldest first",
	synopsis: "[--limit N] [--cursor C] [--tag T]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		limit := fs.Int("limit", contracts.DefaultListLimit, "page size `N` (1-1000)")
		cursor := fs.String("cursor", "", "the next_cursor `C` of the previous page")
		tag := fs.String("tag", "", "list only executions whose suspension carries tag `T`")
		return func(inv *invocation) int {
			a := contracts.ListSuspendedArgs{Limit: *limit, Cursor: *cursor, Tag: *tag}
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
	summary:  `lease the oldest resumed (or timed-out) execution to a worker, or print {"outcome":"none"}; with --max N, up to N of them: {"claims":[…]}`,
	synopsis: "--worker W [--lease-ms N] [--max N]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		worker := fs.String("worker", "", "the worker id `W`")
		leaseMs := fs.Int64("lease-ms", contracts.DefaultLeaseMs, "lease length `N` in ms")
		max := fs.Int("max", 0, "claim up to `N` executions (1-100) in one call, oldest first, and print {\"claims\":[…]}")
		return func(inv *invocation) int {
			batch := setFlags(fs)["max"]
			return inv.withFlags(fs, []string{"worker"}, func(ctx context.Context, e *engine.Engine) (any, error) {
				if batch {
					return e.ClaimResumedExecutions(ctx, contracts.ClaimBatchArgs{WorkerID: *worker, LeaseMs: *leaseMs, Max: *max})
				}
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
			return inv.withFlags(fs, []string{"execution", "lease-id"}, func(ctx context.Context, e *engine.Engine) (any, error) {
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
