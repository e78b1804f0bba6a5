package worker_test

import (
	"context"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/worker"
)

var completeAll = worker.HandlerFunc(func(context.Context, *worker.Job) (worker.Result, error) { return worker.Complete(), nil })

func TestNew(t *testing.T) {
	e := engine.New(memory.New())
	t.Cleanup(func() { _ = e.Close() })

	t.Run("the zero Options are usable, with a valid default worker id", func(t *testing.T) {
		w, err := worker.New(e, completeAll, worker.Options{})
		require.NoError(t, err)
		require.NoError(t, contracts.ValidateIdentifier("worker_id", w.ID()))
		require.Contains(t, w.ID(), "-"+strconv.Itoa(os.Getpid())+"-", "hostname-pid-random")
		other, err := worker.New(e, completeAll, worker.Options{})
		require.NoError(t, err)
		require.NotEqual(t, w.ID(), other.ID(), "two workers of one process get distinct ids")
	})

	t.Run("invalid options are invalid_input naming the field", func(t *testing.T) {
		for _, c := range []struct {
			field string
			opts  worker.Options
		}{
			{"WorkerID", worker.Options{WorkerID: "has space"}},
			{"WorkerID", worker.Options{WorkerID: ".."}},
			{"Concurrency", worker.Options{Concurrency: -1}},
			{"Concurrency", worker.Options{Concurrency: worker.MaxConcurrency + 1}},
			{"BatchSize", worker.Options{BatchSize: -1}},
			{"BatchSize", worker.Options{BatchSize: contracts.MaxClaimBatch + 1}},
			{"LeaseMs", worker.Options{LeaseMs: -1}},
			{"HeartbeatFraction", worker.Options{HeartbeatFraction: 1}},
			{"HeartbeatFraction", worker.Options{HeartbeatFraction: -0.5}},
			{"PollInterval", worker.Options{PollInterval: -time.Second}},
		} {
			_, err := worker.New(e, completeAll, c.opts)
			require.ErrorIs(t, err, contracts.ErrInvalidInput, "%+v", c.opts)
			var ce *contracts.Error
			require.ErrorAs(t, err, &ce)
			require.True(t, strings.HasPrefix(ce.Detail, c.field+": "), "detail %q names %s", ce.Detail, c.field)
		}
	})

	t.Run("a nil engine or handler is invalid_input", func(t *testing.T) {
		_, err := worker.New(nil, completeAll, worker.Options{})
		require.ErrorIs(t, err, contracts.ErrInvalidInput)
		_, err = worker.New(e, nil, worker.Options{})
		require.ErrorIs(t, err, contracts.ErrInvalidInput)
	})
}

func TestRunTwice(t *testing.T) {
	e := stores[0].open(t)
	r := start(t, e, completeAll, worker.Options{})
	eventually(t, func() bool { return metric(t, r.w, "ff_worker_claims_total", "outcome", "none") >= 1 }, "the worker runs")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.ErrorIs(t, r.w.Run(ctx), worker.ErrAlreadyRunning, "while running")
	r.stop(t)
	require.ErrorIs(t, r.w.Run(ctx), worker.ErrAlreadyRunning, "after running")
}

// overlapChecker is a handler that records, per execution, how many
// handlers run it at once, fails the first attempt of a third of them, and
// completes every other attempt.
type overlapChecker struct {
	mu         sync.Mutex
	running    map[string]int
	attempts   map[string]int
	completed  map[string]int
	violations []string
}

func newOverlapChecker() *overlapChecker {
	return &overlapChecker{running: map[string]int{}, attempts: map[string]int{}, completed: map[string]int{}}
}

func (c *overlapChecker) Work(ctx context.Context, job *worker.Job) (worker.Result, error) {
	id := job.ExecutionID
	c.mu.Lock()
	c.running[id]++
	c.attempts[id]++
	if c.running[id] > 1 {
		c.violations = append(c.violations, id)
	}
	attempt := c.attempts[id]
	c.mu.Unlock()

	time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.running[id]--
	h := fnv.New32a()
	h.Write([]byte(id))
	if attempt == 1 && h.Sum32()%3 == 0 {
		return worker.Result{}, errors.New("first attempt fails")
	}
	c.completed[id]++
	return worker.Complete(), nil
}

// Given many resumed executions and two workers, each with several
// handlers, when they run everything, then no execution ever ran in two
// handlers at once, every one completed exactly once, and the failed first
// attempts were run again.
func TestNeverTwiceConcurrently(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name+"/two workers, two Engines over one store", func(t *testing.T) {
			t.Parallel()
			e1, e2 := s.openTwo(t)
			testNeverTwice(t, e1, e2)
		})
		t.Run(s.name+"/two workers on one Engine", func(t *testing.T) {
			t.Parallel()
			e := s.open(t)
			testNeverTwice(t, e, e)
		})
	}
}

func testNeverTwice(t *testing.T, e1, e2 *engine.Engine) {
	const n = 60
	all := ids("never-twice", n)
	for _, id := range all {
		resume(t, e1, id)
	}
	c := newOverlapChecker()
	// Polling often: wake-ups do not cross Engines.
	o := worker.Options{Concurrency: 4, BatchSize: 3, LeaseMs: 5_000, PollInterval: 10 * time.Millisecond}
	start(t, e1, c, o)
	start(t, e2, c, o)
	eventually(t, func() bool {
		for _, id := range all {
			if !gone(t, e1, id) {
				return false
			}
		}
		return true
	}, "every execution completed")

	c.mu.Lock()
	defer c.mu.Unlock()
	require.Empty(t, c.violations, "executions run by two handlers at once")
	failedFirst := 0
	for _, id := range all {
		require.Equal(t, 1, c.completed[id], "completions of %s", id)
		if c.attempts[id] == 2 {
			failedFirst++
		}
	}
	require.Positive(t, failedFirst, "some first attempts failed and ran again")
}

// leaseLostCase makes a running handler's lease go away from outside.
type leaseLostCase struct {
	name string
	// steal takes the execution's lease away; it returns the lease id the
	// test then holds, or "" when the execution is gone.
	steal func(t *testing.T, e *engine.Engine, job *worker.Job) string
}

var leaseLostCases = []leaseLostCase{
	{"completed elsewhere: execution_not_found", func(t *testing.T, e *engine.Engine, job *worker.Job) string {
		_, err := e.CompleteExecution(context.Background(), contracts.CompleteArgs{ExecutionID: job.ExecutionID, LeaseID: job.LeaseID})
		require.NoError(t, err)
		return ""
	}},
	{"released and re-claimed elsewhere: lease_mismatch", func(t *testing.T, e *engine.Engine, job *worker.Job) string {
		_, err := e.ReleaseExecution(context.Background(), contracts.ReleaseArgs{ExecutionID: job.ExecutionID, LeaseID: job.LeaseID})
		require.NoError(t, err)
		c, err := e.ClaimResumedExecution(context.Background(), contracts.ClaimArgs{WorkerID: "thief", LeaseMs: 3_600_000})
		require.NoError(t, err)
		require.Equal(t, job.ExecutionID, c.ExecutionID, "the thief claims the released execution")
		return c.LeaseID
	}},
}

// Given a handler that outlives its lease because the lease was taken away
// from outside, when its next heartbeat fails, then its context is
// cancelled with ErrLeaseLost and what it returns afterwards is dropped:
// the execution is not completed by the worker.
func TestLeaseLost(t *testing.T) {
	for _, s := range stores {
		for _, c := range leaseLostCases {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e := s.open(t)
				resume(t, e, "outlives")
				jobs := make(chan *worker.Job, 1)
				causes := make(chan error, 1)
				h := worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
					jobs <- job
					<-ctx.Done()
					causes <- context.Cause(ctx)
					return worker.Complete(), nil // dropped
				})
				var logs logBuffer
				// One slot: the worker cannot claim the released execution itself.
				r := start(t, e, h, worker.Options{Concurrency: 1, LeaseMs: 300, PollInterval: 10 * time.Millisecond, Logger: logs.logger()})
				job := receive(t, jobs, "handler start")
				lease := c.steal(t, e, job)

				cause := receive(t, causes, "handler cancellation")
				require.ErrorIs(t, cause, worker.ErrLeaseLost)
				eventually(t, func() bool {
					return metric(t, r.w, "ff_worker_handler_duration_seconds_count", "result", "lease_lost") == 1
				}, "the run is counted as lease_lost")
				require.Equal(t, 1.0, metric(t, r.w, "ff_worker_lease_losses_total"))
				_, completed := scrape(t, r.w).Lookup("ff_worker_handler_duration_seconds_count", "result", "complete")
				require.False(t, completed, "the handler's Complete was dropped")
				require.Contains(t, logs.String(), `"msg":"worker: lease lost; the handler's result is dropped"`)
				require.NotContains(t, logs.String(), job.LeaseID, "logs never hold a lease id")

				if lease != "" {
					_, err := e.CompleteExecution(context.Background(), contracts.CompleteArgs{ExecutionID: job.ExecutionID, LeaseID: lease})
					require.NoError(t, err, "the thief's lease still holds: the worker neither completed nor released it")
				}
			})
		}
	}
}

// Given a handler that fails (an error, a panic, or the zero Result),
// when it returns, then the execution is released and claimed again at
// once (the lease is an hour and polling hourly: only the release's
// wake-up can bring it back), with the same reason and signals and a new
// lease; the failure is logged with the execution id, the error text and
// no lease id, and counted.
func TestFailureReleases(t *testing.T) {
	for _, s := range stores {
		for _, c := range []struct {
			name   string
			result string
			fail   func() (worker.Result, error)
			log    string
		}{
			{"error", "error", func() (worker.Result, error) { return worker.Complete(), errors.New("printer on fire") }, `"error":"printer on fire"`},
			{"panic", "panic", func() (worker.Result, error) { panic("printer exploded") }, `"error":"panic: printer exploded"`},
			{"zero Result", "error", func() (worker.Result, error) { return worker.Result{}, nil }, `"msg":"worker: handler returned no result (the zero Result); execution released"`},
		} {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e := s.open(t)
				resume(t, e, "flaky")
				jobs := make(chan *worker.Job, 2)
				var calls atomic.Int32
				h := worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
					jobs <- job
					if calls.Add(1) == 1 {
						return c.fail()
					}
					return worker.Complete(), nil
				})
				var logs logBuffer
				r := start(t, e, h, worker.Options{LeaseMs: 3_600_000, PollInterval: time.Hour, Logger: logs.logger()})
				first, second := receive(t, jobs, "first run"), receive(t, jobs, "second run")
				// The store forgets the execution when complete commits; the
				// worker records the run's result just after.
				eventually(t, func() bool {
					return gone(t, e, "flaky") && metric(t, r.w, "ff_worker_handler_duration_seconds_count", "result", "complete") > 0
				}, "the second run completed and was recorded")

				require.Equal(t, first.ExecutionID, second.ExecutionID)
				require.Equal(t, first.SuspensionID, second.SuspensionID)
				require.Equal(t, contracts.ReasonSignal, second.Reason, "the reason is kept")
				require.Equal(t, first.Signals, second.Signals)
				require.NotEqual(t, first.LeaseID, second.LeaseID, "a new lease")
				require.Equal(t, 1.0, metric(t, r.w, "ff_worker_handler_duration_seconds_count", "result", c.result))
				require.Equal(t, 1.0, metric(t, r.w, "ff_worker_handler_duration_seconds_count", "result", "complete"))
				out := logs.String()
				require.Contains(t, out, c.log)
				require.Contains(t, out, `"execution_id":"flaky"`)
				require.NotContains(t, out, first.LeaseID, "logs never hold a lease id")
				if c.result == "panic" {
					require.Contains(t, out, `"level":"ERROR","msg":"worker: handler panicked; execution released"`)
					require.Contains(t, out, "goroutine ", "the panic's stack is logged")
				}
			})
		}
	}
}

// Given handlers still running when Run's context ends, when the grace
// passes, then their contexts are cancelled with ErrShutdown and their
// executions released at once: another worker claims them immediately,
// not after their hour-long leases; Run returns even when a handler
// ignores its context.
func TestShutdownReleases(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := s.open(t)
			resume(t, e, "polite")
			resume(t, e, "stubborn")
			started := make(chan string, 2)
			causes := make(chan error, 1)
			unblock := make(chan struct{})
			defer close(unblock)
			h := worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
				started <- job.ExecutionID
				if job.ExecutionID == "stubborn" {
					<-unblock // ignores ctx
					return worker.Complete(), nil
				}
				<-ctx.Done()
				causes <- context.Cause(ctx)
				return worker.Complete(), nil // dropped
			})
			r := start(t, e, h, worker.Options{LeaseMs: 3_600_000, ShutdownGrace: 50 * time.Millisecond})
			receive(t, started, "first handler")
			receive(t, started, "second handler")

			r.stop(t)
			require.ErrorIs(t, receive(t, causes, "cancellation"), worker.ErrShutdown)
			out, err := e.ClaimResumedExecutions(context.Background(), contracts.ClaimBatchArgs{WorkerID: "next", LeaseMs: 60_000, Max: 3})
			require.NoError(t, err)
			var claimed []string
			for _, c := range out.Claims {
				claimed = append(claimed, c.ExecutionID)
				require.Equal(t, contracts.ReasonSignal, c.Reason)
			}
			require.ElementsMatch(t, []string{"polite", "stubborn"}, claimed, "both released at once")
			eventually(t, func() bool {
				return metric(t, r.w, "ff_worker_handler_duration_seconds_count", "result", "shutdown") == 1
			}, "the polite handler's run counts as shutdown")
			require.Equal(t, 0.0, metric(t, r.w, "ff_worker_handlers_in_flight"))
		})
	}
}

// Given a handler running when Run's context ends, when it finishes within
// the grace, then its context stayed alive throughout and its result is
// recorded before Run returns.
func TestShutdownLetsHandlersFinish(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := s.open(t)
			resume(t, e, "almost-done")
			started := make(chan struct{})
			finish := make(chan struct{})
			ctxErr := make(chan error, 1)
			h := worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
				close(started)
				<-finish
				ctxErr <- ctx.Err()
				return worker.Complete(), nil
			})
			r := start(t, e, h, worker.Options{ShutdownGrace: time.Minute})
			receive(t, started, "handler start")
			r.cancel()
			select {
			case <-r.done:
				t.Fatal("Run returned while a handler ran within the grace")
			case <-time.After(20 * time.Millisecond):
			}
			close(finish)
			r.stop(t)
			require.NoError(t, receive(t, ctxErr, "handler end"), "the handler's context lived through the grace")
			require.True(t, gone(t, e, "almost-done"), "completed before Run returned")
		})
	}
}

// Given a handler that opens a pending waitpoint under its lease, hands its
// token out and returns Suspend naming it, then the execution is suspended
// again under the lease, and a signal through that token runs the handler
// again for the new suspension. Given one whose pending waitpoint already
// holds the signal, then the suspend is already satisfied and the handler
// runs again at once, under the same lease.
func TestSuspendResult(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name+"/suspended again, resumed by the new waitpoint", func(t *testing.T) {
			t.Parallel()
			e := s.open(t)
			resume(t, e, "two-step")
			tokens := make(chan contracts.CreateWaitpointOutcome, 1)
			jobs := make(chan *worker.Job, 2)
			h := worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
				jobs <- job
				if job.Signals[0].Name == "approved" {
					return worker.Complete(), nil
				}
				wp, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: job.ExecutionID, Key: "approve",
					ExpiresInMs: 60_000, LeaseID: &job.LeaseID})
				if err != nil {
					return worker.Result{}, err
				}
				tokens <- wp
				return worker.Suspend(contracts.SuspendArgs{Waitpoints: []contracts.WaitpointSpec{{Pending: wp.WaitpointID}}}), nil
			})
			r := start(t, e, h, worker.Options{PollInterval: time.Hour})
			first := receive(t, jobs, "first run")
			wp := receive(t, tokens, "token")
			var suspension string
			eventually(t, func() bool {
				var ok bool
				suspension, ok = suspended(t, e, "two-step")
				return ok
			}, "two-step suspended again")
			require.NotEqual(t, first.SuspensionID, suspension, "a new suspension")
			require.Equal(t, 1.0, metric(t, r.w, "ff_worker_handler_duration_seconds_count", "result", "suspend"))

			deliver(t, e, "two-step", contracts.WaitpointOutcome{WaitpointID: wp.WaitpointID, Token: wp.Token}, "approved")
			second := receive(t, jobs, "second run")
			require.Equal(t, suspension, second.SuspensionID)
			require.Equal(t, "approve", second.Signals[0].WaitpointKey)
			eventually(t, func() bool { return gone(t, e, "two-step") }, "completed")
		})
		t.Run(s.name+"/already satisfied runs the handler again under the lease", func(t *testing.T) {
			t.Parallel()
			e := s.open(t)
			resume(t, e, "early-answer")
			jobs := make(chan *worker.Job, 2)
			h := worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
				jobs <- job
				if job.Signals[0].Name == "early" {
					return worker.Complete(), nil
				}
				wp, err := e.CreateWaitpoint(ctx, contracts.CreateWaitpointArgs{ExecutionID: job.ExecutionID, Key: "answer",
					ExpiresInMs: 60_000, LeaseID: &job.LeaseID})
				if err != nil {
					return worker.Result{}, err
				}
				// The answer arrives before the suspend.
				if _, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: job.ExecutionID, WaitpointID: wp.WaitpointID,
					Token: wp.Token, Name: "early"}); err != nil {
					return worker.Result{}, err
				}
				return worker.Suspend(contracts.SuspendArgs{Waitpoints: []contracts.WaitpointSpec{{Pending: wp.WaitpointID}}}), nil
			})
			start(t, e, h, worker.Options{PollInterval: time.Hour})
			first, second := receive(t, jobs, "first run"), receive(t, jobs, "second run")
			require.Equal(t, first.LeaseID, second.LeaseID, "the same lease")
			require.NotEqual(t, first.SuspensionID, second.SuspensionID, "the satisfied suspension")
			require.Equal(t, contracts.ReasonSignal, second.Reason)
			require.Len(t, second.Signals, 1)
			eventually(t, func() bool { return gone(t, e, "early-answer") }, "completed")
		})
	}
}

// Given an idle worker that polls hourly, when a delivery through the same
// Engine resumes an execution, then the worker's handler starts: the
// Engine's wake-up reached it (no time bound is asserted, only that it
// started before the hour).
func TestWakeUp(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := s.open(t)
			started := make(chan string, 1)
			h := worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
				started <- job.ExecutionID
				return worker.Complete(), nil
			})
			r := start(t, e, h, worker.Options{PollInterval: time.Hour})
			eventually(t, func() bool { return metric(t, r.w, "ff_worker_claims_total", "outcome", "none") >= 1 },
				"the first claim found nothing")
			resume(t, e, "woken")
			require.Equal(t, "woken", receive(t, started, "handler start"))
		})
	}
}

// The metrics parse strictly, list the worker's four families and answer
// 405 to anything but GET and HEAD.
func TestMetrics(t *testing.T) {
	e := stores[0].open(t)
	resume(t, e, "counted")
	done := make(chan struct{})
	r := start(t, e, worker.HandlerFunc(func(context.Context, *worker.Job) (worker.Result, error) {
		defer close(done)
		return worker.Complete(), nil
	}), worker.Options{})
	receive(t, done, "handler run")
	eventually(t, func() bool { return gone(t, e, "counted") }, "completed")
	r.stop(t)

	x := scrape(t, r.w)
	for name, typ := range map[string]string{
		"ff_worker_claims_total":             "counter",
		"ff_worker_handler_duration_seconds": "histogram",
		"ff_worker_lease_losses_total":       "counter",
		"ff_worker_handlers_in_flight":       "gauge",
	} {
		f := x.Families[name]
		require.NotNil(t, f, name)
		require.Equal(t, typ, f.Type, name)
		require.NotEmpty(t, f.Help, name)
	}
	require.Equal(t, 1.0, x.Value(t, "ff_worker_claims_total", "outcome", "claimed"))
	require.Equal(t, 1.0, x.Value(t, "ff_worker_handler_duration_seconds_count", "result", "complete"))
	require.Equal(t, 0.0, x.Value(t, "ff_worker_lease_losses_total"))
	require.Equal(t, 0.0, x.Value(t, "ff_worker_handlers_in_flight"))

	rec := httptest.NewRecorder()
	r.w.Metrics().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/metrics", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	require.Equal(t, "GET", rec.Header().Get("Allow"))
	var b strings.Builder
	require.NoError(t, r.w.WriteMetrics(&b))
	require.Contains(t, b.String(), "# TYPE ff_worker_handlers_in_flight gauge\n")
}

// Given a handler that runs well past its first lease, when heartbeats
// extend it, then nobody else can claim the execution meanwhile, the
// job's lease expiry moves on, and the handler's result is recorded.
func TestHeartbeatKeepsLease(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := s.open(t)
			resume(t, e, "long-runner")
			const leaseMs = 200
			stolen := make(chan contracts.ClaimOutcome, 1)
			ctxErr := make(chan error, 1)
			h := worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
				first := job.LeaseExpiresAt()
				// Past the first lease by the store's clock (this process's).
				for time.Now().Before(first.Add(2 * leaseMs * time.Millisecond)) {
					time.Sleep(5 * time.Millisecond)
				}
				c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "other", LeaseMs: 60_000})
				if err != nil {
					return worker.Result{}, err
				}
				stolen <- c
				for job.LeaseExpiresAt().Before(first.Add(2 * leaseMs * time.Millisecond)) {
					time.Sleep(5 * time.Millisecond)
				}
				ctxErr <- ctx.Err()
				return worker.Complete(), nil
			})
			r := start(t, e, h, worker.Options{LeaseMs: leaseMs})
			require.Equal(t, contracts.OutcomeNone, receive(t, stolen, "competing claim").Outcome, "the extended lease holds")
			require.NoError(t, receive(t, ctxErr, "handler end"))
			eventually(t, func() bool { return gone(t, e, "long-runner") }, "completed")
			require.Equal(t, 0.0, metric(t, r.w, "ff_worker_lease_losses_total"))
		})
	}
}
