package cli

import (
	"context"
	"flag"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// The commands of version 2 of the waitpoint lifecycle (docs/spec.md §8.1,
// §8.4–§8.6). Like every command they print one envelope on stdout; a
// backend whose driver does not implement driver.Lifecycle answers them
// unavailable / unsupported (exit 1).

var waitpointCommand = command{
	name:    "waitpoint",
	summary: "open a pending waitpoint before suspending (create), or describe one (get)",
	subcommands: []command{
		waitpointCreateCommand,
		waitpointGetCommand,
	},
}

var waitpointCreateCommand = command{
	name:     "create",
	summary:  "open a pending waitpoint for an execution not yet suspended and print its token; signals delivered to it wait for the suspend that uses it (ff suspend --pending)",
	synopsis: "--execution E --key KEY (--expires-in 24h | --expires-in-ms N) [--lease-id L] [--tag T ...]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		key := fs.String("key", "", "the waitpoint's `KEY`")
		expiresIn := fs.Duration("expires-in", 0, "how long the waitpoint waits for its suspend, e.g. 24h")
		expiresInMs := fs.Int64("expires-in-ms", 0, "the same in milliseconds `N` (instead of --expires-in)")
		lease := fs.String("lease-id", "", "the current lease `L`, when the execution is claimed")
		var tags stringList
		fs.Var(&tags, "tag", "tag the waitpoint with `T` (repeat for several)")
		return func(inv *invocation) int {
			if m := missing(fs, "execution", "key"); m != "" {
				return inv.usagef("missing %s", m)
			}
			switch countSet(fs, "expires-in", "expires-in-ms") {
			case 0:
				return inv.usagef("missing --expires-in (or --expires-in-ms)")
			case 2:
				return inv.usagef("give at most one of --expires-in, --expires-in-ms")
			}
			a := contracts.CreateWaitpointArgs{ExecutionID: *exec, Key: *key, ExpiresInMs: expiresIn.Milliseconds(), Tags: tags}
			set := setFlags(fs)
			if set["expires-in-ms"] {
				a.ExpiresInMs = *expiresInMs
			} // a --expires-in under 1 ms is 0 ms, which validation refuses

			if set["lease-id"] {
				a.LeaseID = lease
			}
			return inv.withEngine(func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.CreateWaitpoint(ctx, a)
			})
		}
	},
}

var waitpointGetCommand = command{
	name:     "get",
	summary:  "describe a waitpoint: status, signal count, tags and token fingerprint (never its token)",
	synopsis: "--execution E --waitpoint-id W",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		wp := fs.String("waitpoint-id", "", "the waitpoint id `W` printed by ff waitpoint create or ff suspend")
		return func(inv *invocation) int {
			return inv.withFlags(fs, []string{"execution", "waitpoint-id"}, func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: *exec, WaitpointID: *wp})
			})
		}
	},
}

var extendCommand = command{
	name:     "extend",
	summary:  "extend a claimed execution's lease to N ms from now: a worker's heartbeat",
	synopsis: "--execution E --lease-id L [--lease-ms N]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		lease := fs.String("lease-id", "", "the lease `L` printed by claim")
		leaseMs := fs.Int64("lease-ms", contracts.DefaultLeaseMs, "the lease ends `N` ms from now")
		return func(inv *invocation) int {
			return inv.withFlags(fs, []string{"execution", "lease-id"}, func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.ExtendLease(ctx, contracts.ExtendLeaseArgs{ExecutionID: *exec, LeaseID: *lease, LeaseMs: *leaseMs})
			})
		}
	},
}

var releaseCommand = command{
	name:     "release",
	summary:  "give a claimed execution back: claimable again at once, with its claim reason",
	synopsis: "--execution E --lease-id L",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		lease := fs.String("lease-id", "", "the lease `L` printed by claim")
		return func(inv *invocation) int {
			return inv.withFlags(fs, []string{"execution", "lease-id"}, func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.ReleaseExecution(ctx, contracts.ReleaseArgs{ExecutionID: *exec, LeaseID: *lease})
			})
		}
	},
}

var cancelCommand = command{
	name:     "cancel",
	summary:  `cancel a suspension: its waitpoints close and the execution is claimable with reason "cancelled"`,
	synopsis: "--execution E",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		return func(inv *invocation) int {
			return inv.withFlags(fs, []string{"execution"}, func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: *exec})
			})
		}
	},
}
