package bench

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// cycleWorkerSteps name the steps of a cycle-worker cycle, timed apart in
// the report: the producer's suspend and its delivery over HTTP, then the
// wait from the delivery's answer until the worker's handler starts on the
// execution (the worker's wake-up and batch claim).
var cycleWorkerSteps = []string{"suspend", "deliver_http", "to_handler"}

// DefaultWorkerSlots is the handler slots of OpCycleWorker's worker when
// Config.WorkerSlots is 0: as many as the River reference's workers.
const DefaultWorkerSlots = 100

// DefaultInFlight bounds OpCycleWorker's executions suspended and not yet
// handled when Config.InFlight is 0: as the River reference bounds its jobs
// inserted and not completed.
const DefaultInFlight = 1000

// WorkerFunc runs one worker over e with slots handler slots until ctx
// ends, then shuts it down and returns. The worker claims resumed
// executions (in batches, woken by Engine.WatchClaimable) and calls handle
// with each; when handle returns nil it completes the execution, otherwise
// it releases it. worker.Worker is the intended implementation, which the
// caller supplies (package cli/bench may not import package worker:
// internal/archtest), e.g.
//
//	func(ctx context.Context, e *engine.Engine, slots int, handle func(context.Context, string) error) error {
//		w, err := worker.New(e, worker.HandlerFunc(func(ctx context.Context, j *worker.Job) (worker.Result, error) {
//			if err := handle(ctx, j.ExecutionID); err != nil {
//				return worker.Result{}, err
//			}
//			return worker.Complete(), nil
//		}), worker.Options{Concurrency: slots})
//		if err != nil {
//			return err
//		}
//		return w.Run(ctx)
//	}
type WorkerFunc func(ctx context.Context, e *engine.Engine, slots int, handle func(ctx context.Context, executionID string) error) error

// cycleWorker is the state of one OpCycleWorker run.
type cycleWorker struct {
	r        *runner
	base     string
	client   *http.Client
	slots    chan struct{} // one per execution suspended and not yet handled
	deadline time.Time

	mu       sync.Mutex
	cycles   map[string]*cycleTimes // the executions suspended and not yet handled
	hist     histogram              // cycles handled before the deadline
	handled  atomic.Int64           // handler calls on this run's executions, all of them
	repeated atomic.Int64           // handler calls on an execution handled before (a released one)
}

// runCycleWorker measures OpCycleWorker: Concurrency producers each loop
// suspend → deliver over HTTP, at most InFlight executions outstanding,
// while one worker (Config.Worker, WorkerSlots slots) claims the resumed
// executions in batches and completes them. The rate is the cycles whose
// handler started before the deadline per second (the worker completes
// each right after its handler returns); the latency of a cycle runs from
// its suspend to its handler. Producer failures count as errors.
func (r *runner) runCycleWorker(ctx context.Context) (Report, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Report{}, contracts.ErrBackendUnreachable.With("bench: listening on loopback: %v", err)
	}
	srv := &http.Server{Handler: r.cfg.Handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	n := r.cfg.Concurrency
	cw := &cycleWorker{
		r:      r,
		base:   "http://" + ln.Addr().String(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n}},
		slots:  make(chan struct{}, r.inFlight()),
		cycles: map[string]*cycleTimes{},
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
		cw.client.CloseIdleConnections()
	}()
	r.steps = make([]histogram, len(cycleWorkerSteps))
	r.stepNames = cycleWorkerSteps

	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	workerDone := make(chan error, 1)
	go func() { workerDone <- r.cfg.Worker(workerCtx, r.e, r.workerSlots(), cw.handle) }()

	stop, err := startCPUProfile(r.cfg.CPUProfile)
	if err != nil {
		stopWorker()
		<-workerDone
		return Report{}, &ProfileError{Err: err}
	}
	start := time.Now()
	cw.mu.Lock() // handle reads it, on the worker's goroutines
	cw.deadline = start.Add(r.cfg.Duration)
	cw.mu.Unlock()
	producers := make([]worker, n)
	var wg sync.WaitGroup
	for w := range producers {
		wg.Go(func() { cw.produce(ctx, w, &producers[w]) })
	}
	wg.Wait()
	// Producers stop at the deadline; the worker goes on handling what
	// they resumed until then, which counts only when handled in time.
	if d := time.Until(cw.deadline); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	elapsed := time.Since(start)
	stop()
	stopWorker()
	werr := <-workerDone

	rep := r.report(producers, elapsed)
	cw.mu.Lock()
	rep.Ops = int64(cw.hist.n)
	rep.LatencyUs = cw.hist.latency()
	cw.mu.Unlock()
	rep.OpsPerSec = float64(rep.Ops) / elapsed.Seconds()
	if werr != nil && ctx.Err() == nil {
		rep.Errors++
		rep.ErrorCodes[contracts.AsError(werr).Code]++
	}
	return rep, nil
}

// produce is producer w's closed loop until the deadline: take an in-flight
// slot, suspend, deliver over HTTP. Its tally counts its failures only.
func (cw *cycleWorker) produce(ctx context.Context, w int, tally *worker) {
	r := cw.r
	tally.errors = map[string]int64{}
	for i := 0; ctx.Err() == nil && time.Now().Before(cw.deadline); i++ {
		select {
		case cw.slots <- struct{}{}:
		case <-ctx.Done():
			return
		case <-time.After(time.Until(cw.deadline)):
			return
		}
		id := r.execID(w, i)
		t0 := time.Now()
		c := &cycleTimes{start: t0}
		cw.mu.Lock()
		cw.cycles[id] = c
		cw.mu.Unlock()
		err := cw.suspendAndDeliver(ctx, id, c)
		if err == nil {
			continue
		}
		cw.forget(id) // the worker may have handled it (a delivery whose answer was lost)
		if ctx.Err() != nil {
			return
		}
		tally.errors[contracts.AsError(err).Code]++
	}
}

// cycleTimes are the times of one cycle, under cycleWorker.mu.
type cycleTimes struct {
	start     time.Time // its suspend began
	delivered time.Time // the delivery answered; zero before
}

// suspendAndDeliver is the producers' part of a cycle: suspend execution
// id on one waitpoint, then deliver the signal that resumes it over HTTP.
func (cw *cycleWorker) suspendAndDeliver(ctx context.Context, id string, c *cycleTimes) error {
	r := cw.r
	out, err := r.suspend(ctx, id, contracts.ConditionAny, "a")
	if err != nil {
		return err
	}
	t := r.step(0, c.start)
	if err := deliverHTTP(ctx, cw.client, cw.base, id, out.Waitpoints[0]); err != nil {
		return err
	}
	r.created.resumed(id)
	delivered := r.step(1, t)
	cw.mu.Lock()
	c.delivered = delivered
	cw.mu.Unlock()
	return nil
}

// handle is the worker's handler: it records a cycle of this run, once per
// execution, and answers nil so that the worker completes it. An execution
// of another user (possible only with Force on a shared store) is answered
// with an error: the worker releases it.
func (cw *cycleWorker) handle(_ context.Context, id string) error {
	r := cw.r
	if !strings.HasPrefix(id, "bench-"+r.id+"-") {
		r.foreign.Add(1)
		return errForeign
	}
	now := time.Now()
	cw.mu.Lock()
	c, ok := cw.cycles[id]
	var delivered time.Time
	if ok {
		delivered = c.delivered
		if now.Before(cw.deadline) {
			cw.hist.add(now.Sub(c.start))
		}
	}
	cw.mu.Unlock()
	cw.forget(id)
	cw.handled.Add(1)
	if !ok {
		cw.repeated.Add(1) // released after a failed complete, or resumed by the cleanup
		r.created.done(id)
		return nil
	}
	if !delivered.IsZero() { // else the worker ran it before the HTTP answer arrived
		r.stepsMu.Lock()
		r.steps[2].add(now.Sub(delivered))
		r.stepsMu.Unlock()
	}
	r.created.done(id) // the worker completes it once this returns
	return nil
}

// forget ends the cycle of execution id, if it was not ended yet, freeing
// its in-flight slot: exactly once per cycle, by the handler or by the
// producer that failed.
func (cw *cycleWorker) forget(id string) {
	cw.mu.Lock()
	_, ok := cw.cycles[id]
	delete(cw.cycles, id)
	cw.mu.Unlock()
	if ok {
		<-cw.slots
	}
}

// errForeign refuses another user's execution to the worker, which then
// releases it.
var errForeign = contracts.ErrInternal.With("bench: not an execution of this run")

// workerSlots is Config.WorkerSlots or its default.
func (r *runner) workerSlots() int {
	if r.cfg.WorkerSlots > 0 {
		return r.cfg.WorkerSlots
	}
	return DefaultWorkerSlots
}

// inFlight is Config.InFlight or its default.
func (r *runner) inFlight() int {
	if r.cfg.InFlight > 0 {
		return r.cfg.InFlight
	}
	return DefaultInFlight
}
