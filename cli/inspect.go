package cli

import (
	"context"
	"flag"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// describeCommand is describe_execution (docs/spec.md §8.9).
var describeCommand = command{
	name:     "describe",
	summary:  "show an execution: state, claim reason, lease expiry and waitpoints (never a token or a lease id)",
	synopsis: "--execution E",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		exec := fs.String("execution", "", "the execution id `E`")
		return func(inv *invocation) int {
			return inv.withFlags(fs, []string{"execution"}, func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: *exec})
			})
		}
	},
}

// countsCommand is count_executions (docs/spec.md §8.9).
var countsCommand = command{
	name:    "counts",
	summary: "count executions by state: suspended, timed out, resumed, claimed, lease expired",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		return func(inv *invocation) int {
			return inv.withFlags(fs, nil, func(ctx context.Context, e *engine.Engine) (any, error) {
				return e.CountExecutions(ctx, contracts.CountExecutionsArgs{})
			})
		}
	},
}
