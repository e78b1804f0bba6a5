package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// An execution suspends on a waitpoint, an outside party delivers a signal
// with the waitpoint's token, and a worker claims and completes the
// resumed execution.
func Example() {
	ctx := context.Background()
	eng, err := engine.Open(ctx, "memory://") // registered by importing backend/memory
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	secret, _ := contracts.ParseSecretHex("secret", strings.Repeat("5e", 32))
	if _, err := eng.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret}); err != nil {
		panic(err)
	}

	sus, err := eng.Suspend(ctx, contracts.SuspendArgs{
		ExecutionID: "order-7",
		Waitpoints:  []contracts.WaitpointSpec{{Key: "approve"}},
		Condition:   contracts.ConditionAny,
	})
	if err != nil {
		panic(err)
	}
	wp := sus.Waitpoints[0] // wp.Token goes to the approver

	sig, err := eng.DeliverSignal(ctx, contracts.DeliverSignalArgs{
		ExecutionID: "order-7",
		WaitpointID: wp.WaitpointID,
		Token:       wp.Token,
		Name:        "approved",
		Payload:     json.RawMessage(`{"by":"alice"}`),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("signal:", sig.Outcome, "resumed:", sig.Resumed)

	claim, err := eng.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "worker-1"}) // default lease
	if err != nil {
		panic(err)
	}
	fmt.Println("claimed:", claim.ExecutionID, "because of a", claim.Reason, "with", len(claim.Signals), "signal")

	done, err := eng.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: claim.ExecutionID, LeaseID: claim.LeaseID})
	if err != nil {
		panic(err)
	}
	fmt.Println(done.Outcome)
	// Output:
	// signal: accepted resumed: true
	// claimed: order-7 because of a signal with 1 signal
	// completed
}

// Errors are *contracts.Error values; branch on them with errors.Is against
// the sentinels of package contracts.
func ExampleEngine_DeliverSignal_wrongToken() {
	ctx := context.Background()
	eng := engine.New(memory.New())
	defer eng.Close()
	secret, _ := contracts.ParseSecretHex("secret", strings.Repeat("5e", 32))
	_, _ = eng.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret})
	sus, _ := eng.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "order-8", Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}}, Condition: contracts.ConditionAny})

	forged := "k1:" + strings.Repeat("0", 64)
	_, err := eng.DeliverSignal(ctx, contracts.DeliverSignalArgs{
		ExecutionID: "order-8", WaitpointID: sus.Waitpoints[0].WaitpointID, Token: forged, Name: "approved",
	})
	fmt.Println(errors.Is(err, contracts.ErrSignatureMismatch))
	var ce *contracts.Error
	if errors.As(err, &ce) {
		fmt.Println(ce.Kind, ce.Code, ce.Reason, ce.Retryable)
	}
	// Output:
	// true
	// validation invalid_token signature_mismatch false
}

// The approval mail: the execution opens a pending waitpoint and mails its
// token before it suspends. The approver answers at once; the suspend that
// uses the waitpoint then finds the condition met and does not wait.
func ExampleEngine_CreateWaitpoint() {
	ctx := context.Background()
	eng := engine.New(memory.New())
	defer eng.Close()
	secret, _ := contracts.ParseSecretHex("secret", strings.Repeat("5e", 32))
	_, _ = eng.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret})

	wp, err := eng.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{
		ExecutionID: "order-9", Key: "approve", ExpiresInMs: 24 * 60 * 60 * 1000, Tags: []string{"mail"},
	})
	if err != nil {
		panic(err)
	}
	// ... wp.Token goes out in the mail; the reply comes before the suspend:
	_, _ = eng.DeliverSignal(ctx, contracts.DeliverSignalArgs{
		ExecutionID: "order-9", WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "approved",
	})

	sus, err := eng.Suspend(ctx, contracts.SuspendArgs{
		ExecutionID: "order-9",
		Waitpoints:  []contracts.WaitpointSpec{{Pending: wp.WaitpointID}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(sus.Outcome, len(sus.Signals), sus.Signals[0].Name)
	// Output:
	// already_satisfied 1 approved
}

// Two of three approvers suffice: a count condition (docs/spec.md §8.2).
func ExampleEngine_Suspend_quorum() {
	ctx := context.Background()
	eng := engine.New(memory.New())
	defer eng.Close()
	secret, _ := contracts.ParseSecretHex("secret", strings.Repeat("5e", 32))
	_, _ = eng.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: secret})

	sus, _ := eng.Suspend(ctx, contracts.SuspendArgs{
		ExecutionID: "budget-3",
		Waitpoints:  []contracts.WaitpointSpec{{Key: "ana"}, {Key: "bo"}, {Key: "cy"}},
		Condition:   contracts.CountCondition(2),
	})
	for _, wp := range sus.Waitpoints[:2] {
		sig, _ := eng.DeliverSignal(ctx, contracts.DeliverSignalArgs{
			ExecutionID: "budget-3", WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "approve",
		})
		fmt.Println(wp.WaitpointKey, "resumed:", sig.Resumed)
	}
	// Output:
	// ana resumed: false
	// bo resumed: true
}
