package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// Given 16 workers, each running 25 full cycles (suspend, deliver, claim,
// complete) on executions of its own while claiming whatever is oldest,
// then no call fails (in particular none exhausts the retry budget on
// serialization failures between unrelated executions) and every execution
// is completed exactly once.
func TestConcurrentCyclesAcrossExecutions(t *testing.T) {
	e, _ := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	ctx := context.Background()
	const workers, cycles = 16, 25
	var (
		mu        sync.Mutex
		completed = map[string]int{}
		wg        sync.WaitGroup
	)
	errs := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for c := range cycles {
				id := fmt.Sprintf("exec-%02d-%03d", w, c)
				if err := suspendAndSignal(ctx, e, id); err != nil {
					errs <- err
					return
				}
				claimed, err := claimAndComplete(ctx, e, fmt.Sprintf("worker-%d", w))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if claimed != "" {
					completed[claimed]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			t.Logf("native error: %s; %s", pe.Message, pe.Detail)
		}
		t.Fatal(err)
	}
	for { // drain what the workers left claimable
		claimed, err := claimAndComplete(ctx, e, "drain")
		if err != nil {
			t.Fatal(err)
		}
		if claimed == "" {
			break
		}
		completed[claimed]++
	}
	if len(completed) != workers*cycles {
		t.Fatalf("%d executions completed, want %d", len(completed), workers*cycles)
	}
	for id, n := range completed {
		if n != 1 {
			t.Fatalf("%s completed %d times", id, n)
		}
	}
	st := e.Backend().(*postgres.Backend).Stats()
	t.Logf("%d cycles in %v: %d transactions, %d retries, %d exhausted",
		workers*cycles, time.Since(start).Round(time.Millisecond), st.Transactions, st.Retries, st.Exhausted)
}

func suspendAndSignal(ctx context.Context, e *engine.Engine, id string) error {
	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, IdempotencyKey: "k"})
	if err != nil {
		return fmt.Errorf("suspend %s: %w", id, err)
	}
	w := s.Waitpoints[0]
	out, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go", IdempotencyKey: "evt"})
	if err != nil || out.Outcome != contracts.OutcomeAccepted || !out.Resumed {
		return fmt.Errorf("deliver to %s: %+v %w", id, out, err)
	}
	return nil
}

// claimAndComplete claims one execution and completes it; "" when none
// was claimable.
func claimAndComplete(ctx context.Context, e *engine.Engine, worker string) (string, error) {
	c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: worker, LeaseMs: 60_000})
	if err != nil {
		return "", fmt.Errorf("%s: claim: %w", worker, err)
	}
	if c.Outcome == contracts.OutcomeNone {
		return "", nil
	}
	if len(c.Signals) != 1 || c.Reason != contracts.ReasonSignal {
		return "", fmt.Errorf("%s: claim of %s: %+v", worker, c.ExecutionID, c)
	}
	if _, err := e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: c.ExecutionID, LeaseID: c.LeaseID}); err != nil {
		return "", fmt.Errorf("%s: complete %s: %w", worker, c.ExecutionID, err)
	}
	return c.ExecutionID, nil
}

// Given a delivery blocked in the statement that records its signal and
// counts it (on the waitpoint, locked by another connection), when its
// connection is terminated, then the call fails as transport /
// backend_unreachable, nothing of it remains, the execution's lock is free
// again, and the same delivery then succeeds once.
func TestDeliveryKilledMidwayLeavesNothing(t *testing.T) {
	app := fmt.Sprintf("ff_victim_%d", time.Now().UnixNano())
	base := schemaURL(t)
	e := engine.New(openURL(t, withParam(t, withParam(t, base, postgres.ParamMigrate, postgres.MigrateAuto), "application_name", app)))
	ctx := context.Background()
	seed(t, e, "kid-a", 0x01)
	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "exec-1", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	w := s.Waitpoints[0]
	signal := contracts.DeliverSignalArgs{ExecutionID: "exec-1", WaitpointID: w.WaitpointID, Token: w.Token, Name: "go", IdempotencyKey: "evt-1"}

	// The blocker holds the waitpoint's row: the delivery's write statement
	// waits for it.
	blocker := connect(t, base)
	if _, err := blocker.Exec(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(ctx, `SELECT 1 FROM ff_waitpoints WHERE waitpoint_id = $1 FOR UPDATE`, w.WaitpointID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.DeliverSignal(ctx, signal)
		done <- err
	}()
	admin := connect(t, base)
	var pid int
	eventually(t, "the delivery to wait on the blocker's lock", func() bool {
		return admin.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock' AND query LIKE 'WITH ins AS%'`, app).Scan(&pid) == nil
	})
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, contracts.ErrBackendUnreachable) {
		t.Fatalf("killed delivery: got %v, want transport / backend_unreachable", err)
	}
	if _, err := blocker.Exec(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if o, err := e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "exec-1"}); err != nil || len(o.Signals) != 0 {
		t.Fatalf("after the kill: %+v %v, want no signal", o, err)
	}
	out, err := e.DeliverSignal(ctx, signal)
	if err != nil || out.Outcome != contracts.OutcomeAccepted || !out.Resumed {
		t.Fatalf("delivery after the kill: %+v %v", out, err)
	}
	if again, err := e.DeliverSignal(ctx, signal); err != nil || again.Outcome != contracts.OutcomeDuplicate || again.SignalID != out.SignalID {
		t.Fatalf("redelivery: %+v %v, want a duplicate of %s", again, err, out.SignalID)
	}
}

// A cancelled context while waiting for another operation on the same
// execution fails as transport / canceled and leaves the execution usable.
func TestCancelWhileWaitingForExecutionLock(t *testing.T) {
	base := schemaURL(t)
	e := engine.New(openURL(t, withParam(t, base, postgres.ParamMigrate, postgres.MigrateAuto)))
	seed(t, e, "kid-a", 0x01)
	holder := connect(t, base)
	ctx := context.Background()
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock(hashtext('flowfabric.execution'), hashtext('exec-1'))`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	args := contracts.SuspendArgs{ExecutionID: "exec-1", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}}
	if _, err := e.Suspend(short, args); !errors.Is(err, contracts.ErrDeadlineExceeded) {
		t.Fatalf("suspend while the lock is held: got %v, want transport / deadline_exceeded", err)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock_all()`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Suspend(ctx, args); err != nil {
		t.Fatalf("suspend after the lock was released: %v", err)
	}
}

// Open on an unreachable server fails as transport / backend_unreachable,
// retryable, without the password in the message.
func TestOpenUnreachableServer(t *testing.T) {
	_, err := engine.OpenBackend(context.Background(), "postgres://ff:s3cret-pw@127.0.0.1:1/x?connect_timeout=2")
	if !errors.Is(err, contracts.ErrBackendUnreachable) {
		t.Fatalf("got %v, want transport / backend_unreachable", err)
	}
	var ce *contracts.Error
	if errors.As(err, &ce); !ce.Retryable || containsSecret(ce) {
		t.Fatalf("%#v: want retryable and no password", ce)
	}
}

func containsSecret(e *contracts.Error) bool {
	b, _ := e.MarshalJSON()
	return strings.Contains(string(b), "s3cret-pw") || strings.Contains(e.Error(), "s3cret-pw")
}

// claimAll opens rawURL and claims with workers goroutines until nothing is
// claimable, returning the execution_ids it claimed.
func claimAll(rawURL string, workers int) ([]string, error) {
	ctx := context.Background()
	e, err := engine.Open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	var (
		mu      sync.Mutex
		claimed []string
		wg      sync.WaitGroup
	)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for {
				c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: fmt.Sprintf("w-%d", w), LeaseMs: 600_000})
				if err != nil {
					errs <- err
					return
				}
				if c.Outcome == contracts.OutcomeNone {
					return
				}
				mu.Lock()
				claimed = append(claimed, c.ExecutionID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	return claimed, <-errs
}

// Given 200 resumed executions, when two processes and this one each claim
// with 4 goroutines until nothing is claimable, then every execution is
// claimed exactly once, by one of the three.
func TestThreeProcessesClaimEachOnce(t *testing.T) {
	e, plain := newEngine(t)
	seed(t, e, "kid-a", 0x01)
	ctx := context.Background()
	const n = 200
	for i := range n {
		if err := suspendAndSignal(ctx, e, fmt.Sprintf("exec-%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	u := withParam(t, plain, postgres.ParamMigrate, postgres.MigrateAuto)
	results, at := runHelpers[[]string](t, "claim", u, 2)
	time.Sleep(time.Until(at))
	mine, err := claimAll(u, 4)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	perProcess := []int{len(mine)}
	for _, id := range mine {
		count[id]++
	}
	for _, ids := range results() {
		perProcess = append(perProcess, len(ids))
		for _, id := range ids {
			count[id]++
		}
	}
	if len(count) != n {
		t.Fatalf("%d executions claimed, want %d", len(count), n)
	}
	for id, c := range count {
		if c != 1 {
			t.Fatalf("%s claimed %d times", id, c)
		}
	}
	t.Logf("claims per process: %v", perProcess)
}
