package client_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/client"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

// A workflow suspends on an approval, the approver signals, and a worker
// waiting in a long poll claims the execution and completes it: each step
// through the client, against a server (here httpapi over an in-memory
// engine, as `ff serve --backend memory://` would be).
func ExampleNew() {
	e := engine.New(memory.New())
	defer e.Close()
	h := httpapi.New(e, httpapi.Options{AdminToken: "example-admin-token-0123456789abcdef", Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx := context.Background()
	c, err := client.New(srv.URL, client.WithAdminToken("example-admin-token-0123456789abcdef"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: bytes.Repeat([]byte{7}, 32)}); err != nil {
		log.Fatal(err)
	}
	sus, err := c.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "order-7",
		Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}}, IdempotencyKey: "order-7-approval"})
	if err != nil {
		log.Fatal(err)
	}
	wp := sus.Waitpoints[0] // its token goes to the approver

	claimed := make(chan contracts.ClaimOutcome)
	go func() { // a worker waits up to 30 s for work
		out, err := c.ClaimResumedExecutionWait(ctx, contracts.ClaimArgs{WorkerID: "worker-1"}, 30*time.Second)
		if err != nil {
			log.Fatal(err)
		}
		claimed <- out
	}()

	sig, err := c.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "order-7", WaitpointID: wp.WaitpointID,
		Token: wp.Token, Name: "approved", Payload: []byte(`{"by":"ana"}`), IdempotencyKey: "mail-1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signal:", sig.Outcome, "resumed:", sig.Resumed)

	out := <-claimed
	fmt.Println("claim:", out.Outcome, out.ExecutionID, out.Reason, string(out.Signals[0].Payload))
	done, err := c.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: out.ExecutionID, LeaseID: out.LeaseID})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("complete:", done.Outcome)

	_, err = c.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: out.ExecutionID, LeaseID: out.LeaseID})
	fmt.Println("again:", err)
	// Output:
	// signal: accepted resumed: true
	// claim: claimed order-7 signal {"by":"ana"}
	// complete: completed
	// again: not_found/execution_not_found: execution_id: "order-7" is not known
}
