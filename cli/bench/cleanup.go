package bench

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// cleanupBase bounds the cleanup after a run, plus twice the run's
// duration: the cleanup makes up to three calls per execution left (signal,
// claim, complete) where the run made one or two.
const cleanupBase = time.Minute

// cleanupIdle is how long the cleanup keeps claiming while nothing of this
// run is claimable before it gives up on the executions left.
const cleanupIdle = 2 * time.Second

// ledger records the executions a run suspended and has not completed yet,
// with what the cleanup needs to resume each.
type ledger struct {
	mu   sync.Mutex
	open map[string]*pendingExec // by execution id
}

// pendingExec is one execution of the run not yet completed.
type pendingExec struct {
	waitpoints []contracts.WaitpointOutcome // signalled by the cleanup until the execution resumes
	resumed    bool                         // a signal already resumed it: the cleanup only claims it
}

func (l *ledger) add(execID string, wps []contracts.WaitpointOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open == nil {
		l.open = map[string]*pendingExec{}
	}
	l.open[execID] = &pendingExec{waitpoints: wps}
}

func (l *ledger) resumed(execID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.open[execID]; ok {
		p.resumed = true
	}
}

// done forgets an execution that was completed, reporting whether it was
// one of the run's.
func (l *ledger) done(execID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.open[execID]
	delete(l.open, execID)
	return ok
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

// toResume returns the executions that still need a signal to resume.
func (l *ledger) toResume() map[string][]contracts.WaitpointOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]contracts.WaitpointOutcome{}
	for id, p := range l.open {
		if !p.resumed {
			out[id] = p.waitpoints
		}
	}
	return out
}

// cleanup removes what the run created: it signals every waitpoint of each
// execution the run suspended and did not complete, so that it resumes,
// then claims and completes them, from Concurrency workers. A claim that
// returns an execution of another user (possible only with Force on a
// shared store) is not completed; it is counted, and its lease expires.
// The cleanup runs even when ctx was cancelled (bounded by cleanupBase plus
// twice the run's duration), so that an interrupted run leaves nothing
// behind either. It returns how many executions it completed and how many
// it had to leave.
func (r *runner) cleanup(ctx context.Context) (removed, left int64) {
	if r.cfg.SkipCleanup || r.created.len() == 0 {
		return 0, 0
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupBase+2*r.cfg.Duration)
	defer cancel()
	r.resumeAll(ctx)
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Add(r.claimLeft(ctx, w))
		}()
	}
	wg.Wait()
	return n.Load(), int64(r.created.len())
}

// resumeAll signals every waitpoint of the executions not yet resumed.
// Errors are ignored: a waitpoint over its budget or already closed needs
// no signal, and an execution that does not resume is counted as left.
func (r *runner) resumeAll(ctx context.Context) {
	work := make(chan string)
	pending := r.created.toResume()
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				for _, wp := range pending[id] {
					_, _ = r.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{
						ExecutionID: id, WaitpointID: wp.WaitpointID, Token: wp.Token,
						Name: "bench-cleanup", IdempotencyKey: "bench-cleanup",
					})
				}
			}
		}()
	}
	for id := range pending {
		if ctx.Err() != nil {
			break
		}
		work <- id
	}
	close(work)
	wg.Wait()
}

// claimLeft claims and completes executions of this run until none is
// left, or none has been claimable for cleanupIdle, or ctx ends. It returns
// how many it completed.
func (r *runner) claimLeft(ctx context.Context, w int) int64 {
	worker := "ff-bench-" + r.id + "-cleanup-" + strconv.Itoa(w)
	ours := "bench-" + r.id + "-"
	var completed int64
	idleSince := time.Now()
	for r.created.len() > 0 && ctx.Err() == nil {
		out, err := r.e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: worker, LeaseMs: 30_000})
		switch {
		case err != nil || out.Outcome != contracts.OutcomeClaimed:
			if time.Since(idleSince) > cleanupIdle {
				return completed
			}
			time.Sleep(time.Millisecond)
		case strings.HasPrefix(out.ExecutionID, ours):
			idleSince = time.Now()
			if _, err := r.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: out.ExecutionID, LeaseID: out.LeaseID}); err == nil {
				r.created.done(out.ExecutionID)
				completed++
			}
		default:
			idleSince = time.Now()
			r.foreign.Add(1)
		}
	}
	return completed
}
