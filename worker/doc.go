// Package worker is the application's claim loop: it claims resumed
// executions from an engine.Engine, runs each through a Handler, keeps its
// lease alive while the handler runs, and completes, suspends again or
// releases the execution according to what the handler answers
// (docs/spec.md §5.5, §5.6, §8.4, §8.8).
//
//	w, err := worker.New(e, worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
//		if err := ship(ctx, job.ExecutionID, job.Signals); err != nil {
//			return worker.Result{}, err // released: claimed again at once
//		}
//		return worker.Complete(), nil
//	}), worker.Options{})
//	...
//	err = w.Run(ctx) // until ctx ends, then a clean shutdown
//
// # Claiming
//
// The worker claims only while one of its Options.Concurrency slots is
// free, never more executions than free slots, in batches of up to
// Options.BatchSize (Engine.ClaimResumedExecutions). It claims when it
// starts, whenever Engine.WatchClaimable wakes it (this Engine's own
// resuming deliveries, cancels and releases, and, on a backend that
// pushes, those of every process), every Options.PollInterval otherwise,
// and again at once after a claim that filled every slot it asked for.
// Executions that become claimable with time (a suspension's timeout, an
// expired lease) wake nobody: polling finds them.
//
// # Leases
//
// Each claim carries a lease of Options.LeaseMs. While the handler runs,
// the worker extends it every LeaseMs × Options.HeartbeatFraction
// (Engine.ExtendLease). When an extend answers lease_mismatch or
// execution_not_found (somebody re-claimed, released or completed the
// execution), or when the lease expires without a successful extend (the
// store unreachable meanwhile), the lease is lost: the worker cancels the
// handler's context with cause ErrLeaseLost and drops whatever the handler
// returns. A handler that ignores its context may then run at the same
// time as the next claimer's: honour ctx, and make side effects idempotent
// (at-least-once, like any lease-based queue).
//
// # Results and the retry policy
//
// A handler returns Complete() (complete_execution: the store forgets the
// execution) or Suspend(args) (suspend again under the job's lease; see
// Suspend for tokens and for already_satisfied). A handler error, a panic
// (recovered, logged with its stack and counted) or the zero Result
// releases the execution (release_execution): it is claimable again at
// once, with the same reason and signals, by this worker or another.
//
// The store keeps no attempt counter and no backoff: a handler that always
// fails is claimed and run again at the pace of the claims. A handler that
// should give up keeps its own count — in its own store, keyed by
// Job.ExecutionID and Job.SuspensionID (which stays the same across
// re-claims of one resumption) — and, past its limit, records the failure
// where its application looks for it and returns Complete() (or Suspend to
// wait for an operator's signal) instead of an error. To back off, it can
// sleep (honouring ctx) before returning the error: the execution stays
// leased meanwhile.
//
// # Shutdown
//
// When Run's context ends the worker stops claiming and gives running
// handlers Options.ShutdownGrace to finish, their contexts still alive and
// their leases still extended. Then it cancels the others (cause
// ErrShutdown) and releases their executions at once, on fresh contexts
// bounded by a few seconds, so that another worker claims them without
// waiting for their leases to expire. Executions claimed by a claim that
// returned after the context ended are released unstarted.
//
// # Observability
//
// Logs go to Options.Logger (slog.Default() by default): a handler error or
// a lost lease at WARN with the execution id and the error text, a panic at
// ERROR with its stack, failed store calls at WARN when retryable and ERROR
// otherwise, claims at DEBUG. Logs never hold a token or a lease id.
// Metrics are served in the Prometheus text format by Worker.Metrics and
// written by Worker.WriteMetrics, which lists them.
package worker
