package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/worker"
)

// A worker program: an execution waits for an approval; once the approver's
// signal resumes it, the worker runs the handler and completes it. Here the
// handler stops the worker after its one job; a real program runs the
// worker until it is told to stop (signal.NotifyContext).
func Example() {
	ctx := context.Background()
	eng := engine.New(memory.New())
	defer eng.Close()
	secret, _ := contracts.ParseSecretHex("secret", strings.Repeat("5e", 32))
	if _, err := eng.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret}); err != nil {
		panic(err)
	}

	// The workflow suspends order-7 until somebody approves it.
	sus, err := eng.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "order-7", Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}}})
	if err != nil {
		panic(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	w, err := worker.New(eng, worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
		var by struct{ By string }
		if err := json.Unmarshal(job.Signals[0].Payload, &by); err != nil {
			return worker.Result{}, err // released: claimed and run again
		}
		fmt.Printf("shipping %s: %s by %s\n", job.ExecutionID, job.Signals[0].Name, by.By)
		stop() // one job for the example: the worker shuts down once this one is recorded
		return worker.Complete(), nil
	}), worker.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	done := make(chan error)
	go func() { done <- w.Run(runCtx) }()

	// The approver's signal resumes order-7 and wakes the worker at once.
	wp := sus.Waitpoints[0]
	if _, err := eng.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "order-7", WaitpointID: wp.WaitpointID,
		Token: wp.Token, Name: "approved", Payload: json.RawMessage(`{"by":"alice"}`)}); err != nil {
		panic(err)
	}

	fmt.Println("Run:", <-done)
	_, err = eng.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "order-7"})
	fmt.Println("completed:", errors.Is(err, contracts.ErrExecutionNotFound))
	// Output:
	// shipping order-7: approved by alice
	// Run: <nil>
	// completed: true
}
