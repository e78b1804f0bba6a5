// Package bench is the load generator behind `ff bench`. It calls one
// operation of an engine.Engine from concurrent workers for a fixed duration
// and measures throughput (operations per second), latency percentiles
// (p50, p90, p99, max) and, for a full cycle, the latency of each step.
// Failed operations are counted by error code.
//
// Bench writes to the store of the engine it is given: it seeds a keystore
// that has no current kid; rotate installs kids and leaves the last one
// current; suspend, deliver and cycle suspend executions, and cycle claims
// and completes them. After the measured run, Run removes what it created:
// it signals, claims and completes every execution it suspended and did not
// complete (Report.RemovedExecutions; Report.LeftBehind counts those it
// could not). Because every operation that writes changes what other users
// of the store see (the current kid; executions suspended; a claim takes the
// oldest claimable execution, the cleanup's too), Run refuses rotate,
// suspend, deliver and cycle on a keystore bench did not seed unless
// Config.Force is set; sign and verify only read. Point it at a scratch
// store.
//
// OpCycleWorker measures the cycle in a job queue's shape: producers
// suspend and deliver over HTTP while one worker, which the caller supplies
// (Config.Worker: a worker.Worker, which this package may not import),
// claims in batches and completes; Ops does not list it, since ff bench
// has no worker to give it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// The operations Run measures.
const (
	OpSign    = "sign"    // sign an 80-byte message
	OpVerify  = "verify"  // verify a token signed once per worker
	OpRotate  = "rotate"  // rotate every partition to a new kid
	OpSuspend = "suspend" // suspend a new execution on one waitpoint
	OpDeliver = "deliver" // deliver an accepted signal to a suspended execution
	OpCycle   = "cycle"   // suspend, deliver over HTTP, claim, complete

	// OpCycleWorker is the cycle in a job queue's shape: producers
	// suspend and deliver over HTTP while one worker (Config.Worker)
	// claims in batches and completes. Not among Ops: `ff bench` cannot
	// run it, since package cli may not import package worker.
	OpCycleWorker = "cycle-worker"
)

// Ops returns the operations in the order ff bench lists them.
func Ops() []string {
	return []string{OpSign, OpVerify, OpRotate, OpSuspend, OpDeliver, OpCycle}
}

// Writes reports whether op changes what other users of the store see, so
// that Run refuses it on a keystore bench did not seed unless Config.Force
// is set: every operation but sign and verify.
func Writes(op string) bool { return op != OpSign && op != OpVerify }

// Config is the settings of one run.
type Config struct {
	Op          string        // one of Ops
	Concurrency int           // concurrent workers, at least 1
	Duration    time.Duration // how long workers start operations; positive
	Grace       time.Duration // OpRotate: the grace of each rotation

	// Force runs the operations that write (OpRotate, OpSuspend,
	// OpDeliver, OpCycle) on a keystore whose current kids bench did not
	// install (see the package doc).
	Force bool

	// CPUProfile, unless "", is the file Run writes a Go CPU profile of
	// the measured run to.
	CPUProfile string

	// SkipCleanup leaves the executions the run suspended in the store
	// instead of removing them afterwards: for a store nobody else sees
	// that ends with the process (ff bench on memory://).
	SkipCleanup bool

	// Handler is the HTTP API over the same engine (httpapi.New). OpCycle
	// and OpCycleWorker serve it on a loopback port and deliver their
	// signals through it, as a client of ff serve does. Required for them,
	// unused otherwise.
	Handler http.Handler

	// Worker runs OpCycleWorker's worker (see WorkerFunc). Required for
	// OpCycleWorker, unused otherwise.
	Worker WorkerFunc
	// WorkerSlots is the handler slots of OpCycleWorker's worker; 0 means
	// DefaultWorkerSlots.
	WorkerSlots int
	// InFlight bounds OpCycleWorker's executions suspended and not yet
	// handled (producers wait for a slot); 0 means DefaultInFlight.
	InFlight int
}

// ErrForeignKeystore is returned by Run for an operation that writes
// (Writes) without Config.Force when the current kids of the keystore are
// not bench's own.
var ErrForeignKeystore = errors.New("bench: the keystore was not seeded by bench")

// A ProfileError reports that Run could not start the CPU profile of
// Config.CPUProfile.
type ProfileError struct{ Err error }

// Error describes the failure.
func (e *ProfileError) Error() string { return "bench: cpu profile: " + e.Err.Error() }

// Unwrap returns the error of creating the file or starting the profile.
func (e *ProfileError) Unwrap() error { return e.Err }

// Run seeds the keystore of e when no partition has a current kid,
// prepares cfg.Op and calls it from cfg.Concurrency workers until
// cfg.Duration has passed; an operation in flight at the deadline
// completes and counts. Cancelling ctx stops the workers early.
//
// Afterwards Run removes the executions the run suspended (see the package
// doc), even when ctx was cancelled; the time it takes is not measured.
//
// A failed operation is counted in the report, not returned. Run returns
// an error only when the run could not start: an invalid Config
// (contracts.ErrInvalidInput), ErrForeignKeystore, a backend error while
// preparing, or a *ProfileError. Report.Backend and Report.KeystoreCacheMs
// describe how the caller opened e, which Run cannot see: it leaves them
// for the caller to fill.
func Run(ctx context.Context, e *engine.Engine, cfg Config) (Report, error) {
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	seeded, err := ensureKeystore(ctx, e)
	if err != nil {
		return Report{}, err
	}
	if Writes(cfg.Op) && !seeded && !cfg.Force {
		return Report{}, fmt.Errorf("%w (op %s changes state other users of the store see)", ErrForeignKeystore, cfg.Op)
	}
	r := &runner{cfg: cfg, e: e, id: runID(), seeded: seeded}
	if cfg.Op == OpCycleWorker {
		rep, err := r.runCycleWorker(ctx)
		if err != nil {
			r.cleanup(ctx)
			return Report{}, err
		}
		rep.RemovedExecutions, rep.LeftBehind = r.cleanup(ctx)
		rep.ForeignClaims = r.foreign.Load()
		return rep, nil
	}
	op, stopServing, err := r.prepare(ctx)
	if err != nil {
		r.cleanup(ctx) // deliver's targets, suspended while preparing
		return Report{}, err
	}
	stop, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		stopServing()
		r.cleanup(ctx)
		return Report{}, &ProfileError{Err: err}
	}
	rep := r.run(ctx, op)
	stop()
	stopServing()
	rep.RemovedExecutions, rep.LeftBehind = r.cleanup(ctx)
	rep.ForeignClaims = r.foreign.Load()
	return rep, nil
}

func (c Config) validate() error {
	switch {
	case !slices.Contains(Ops(), c.Op) && c.Op != OpCycleWorker:
		return contracts.ErrInvalidInput.With("bench: op %q: want one of %v", c.Op, Ops())
	case c.Concurrency < 1:
		return contracts.ErrInvalidInput.With("bench: concurrency: must be at least 1")
	case c.Duration <= 0:
		return contracts.ErrInvalidInput.With("bench: duration: must be positive")
	case c.Grace < 0:
		return contracts.ErrInvalidInput.With("bench: grace: must not be negative")
	case (c.Op == OpCycle || c.Op == OpCycleWorker) && c.Handler == nil:
		return contracts.ErrInvalidInput.With("bench: %s needs Config.Handler, the HTTP API over the engine", c.Op)
	case c.Op == OpCycleWorker && c.Worker == nil:
		return contracts.ErrInvalidInput.With("bench: cycle-worker needs Config.Worker, the worker that claims and completes")
	case c.WorkerSlots < 0 || c.InFlight < 0:
		return contracts.ErrInvalidInput.With("bench: worker slots and in-flight: must not be negative")
	}
	return nil
}
