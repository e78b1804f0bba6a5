package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// A driver written before docs/spec.md §8 (no driver.Lifecycle, no
// driver.Inspector) gets
// unavailable / unsupported for the version 2 operations and arguments,
// before any driver call: recordingBackend panics on any call it does not
// count.
func TestVersion2NeedsLifecycle(t *testing.T) {
	b := &recordingBackend{}
	e := &Engine{b: b, limits: contracts.DefaultSignalLimits()}
	ctx := context.Background()
	lease := driver.NewID()
	id := driver.NewID()
	calls := map[string]func() error{
		"create_waitpoint": func() error {
			_, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: "e", Key: "k", ExpiresInMs: 1})
			return err
		},
		"get_waitpoint": func() error {
			_, err := e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: "e", WaitpointID: id})
			return err
		},
		"extend_lease": func() error {
			_, err := e.ExtendLease(ctx, contracts.ExtendLeaseArgs{ExecutionID: "e", LeaseID: lease})
			return err
		},
		"release_execution": func() error {
			_, err := e.ReleaseExecution(ctx, contracts.ReleaseArgs{ExecutionID: "e", LeaseID: lease})
			return err
		},
		"cancel_suspension": func() error {
			_, err := e.CancelSuspension(ctx, contracts.CancelArgs{ExecutionID: "e"})
			return err
		},
		"suspend with a pending item": func() error {
			_, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e", Waitpoints: []contracts.WaitpointSpec{{Pending: id}}})
			return err
		},
		"suspend with a count": func() error {
			_, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Condition: contracts.CountCondition(1)})
			return err
		},
		"suspend with tags": func() error {
			_, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Tags: []string{"t"}})
			return err
		},
		"list by tag": func() error {
			_, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Tag: "t"})
			return err
		},
		"describe_execution": func() error {
			_, err := e.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: "e"})
			return err
		},
		"count_executions": func() error {
			_, err := e.CountExecutions(ctx, contracts.CountExecutionsArgs{})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		var ce *contracts.Error
		if !errors.Is(err, contracts.ErrUnsupported) || !errors.As(err, &ce) || ce.Retryable {
			t.Errorf("%s: %v, want unavailable/unsupported", name, err)
		}
	}
	if b.calls != 0 {
		t.Fatalf("the driver was called %d times", b.calls)
	}
}
