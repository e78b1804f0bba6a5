package bench

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// cycleSteps name the steps of a cycle, timed apart in the report.
var cycleSteps = []string{"suspend", "deliver_http", "claim", "complete"}

// shutdownGrace bounds how long the loopback server waits for requests in
// flight when the run ends, as ff serve's does.
const shutdownGrace = 10 * time.Second

// cycleOp serves Config.Handler over HTTP on a loopback port, as ff serve
// does, and measures suspend → deliver (HTTP, the public route) → claim →
// complete. A claim that returns an execution of another user (possible
// only with Force on a shared store) is not completed: its lease expires
// and it becomes claimable again; the report counts it.
func (r *runner) cycleOp() (opFunc, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, contracts.ErrBackendUnreachable.With("bench: listening on loopback: %v", err)
	}
	srv := &http.Server{Handler: r.cfg.Handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	n := r.cfg.Concurrency
	r.steps = make([]histogram, len(cycleSteps))
	r.stepNames = cycleSteps
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n}}
	base := "http://" + ln.Addr().String()
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(ctx)
		client.CloseIdleConnections()
	}
	op := func(ctx context.Context, w, i int) error {
		id := r.execID(w, i)
		t := time.Now()
		out, err := r.suspend(ctx, id, contracts.ConditionAny, "a")
		if err != nil {
			return err
		}
		t = r.step(0, t)
		if err := deliverHTTP(ctx, client, base, id, out.Waitpoints[0]); err != nil {
			return err
		}
		r.created.resumed(id)
		return r.claimAndComplete(ctx, w, r.step(1, t))
	}
	return op, cleanup, nil
}

// step records the latency of cycle step k since t0 and returns the time
// now. One set of histograms for all workers: a histogram is 58 KB, too
// much to keep four per worker at 4096 workers, and the lock is cheap next
// to a step (a script call or an HTTP request).
func (r *runner) step(k int, t0 time.Time) time.Time {
	now := time.Now()
	r.stepsMu.Lock()
	r.steps[k].add(now.Sub(t0))
	r.stepsMu.Unlock()
	return now
}

// deliverHTTP posts one signal to the public route, the token as bearer.
func deliverHTTP(ctx context.Context, client *http.Client, base, execID string, wp contracts.WaitpointOutcome) error {
	url := base + "/v1/executions/" + execID + "/waitpoints/" + wp.WaitpointID + "/signals"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"name":"bench","idempotency_key":"1"}`))
	if err != nil {
		return contracts.ErrInternal.With("bench: building the request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+wp.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return contracts.ErrBackendUnreachable.With("bench: POST signals: %v", err).Wrapping(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var env contracts.ErrorEnvelope
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		return env.Error
	}
	return contracts.ErrInternal.With("bench: POST signals answered HTTP %d", resp.StatusCode)
}

// claimAndComplete claims until it holds an execution of this run, then
// completes it. Another worker may have claimed the one this worker
// resumed; this worker then takes the next of the run's. t0 is when the
// claim step began.
func (r *runner) claimAndComplete(ctx context.Context, w int, t0 time.Time) error {
	worker := "ff-bench-" + r.id + "-" + strconv.Itoa(w)
	ours := "bench-" + r.id + "-"
	giveUp := time.Now().Add(10 * time.Second)
	for {
		out, err := r.e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: worker, LeaseMs: 30_000})
		switch {
		case err != nil:
			return err
		case out.Outcome == contracts.OutcomeClaimed && strings.HasPrefix(out.ExecutionID, ours):
			t := r.step(2, t0)
			_, err := r.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: out.ExecutionID, LeaseID: out.LeaseID})
			if err == nil {
				r.step(3, t)
				r.created.done(out.ExecutionID)
			}
			return err
		case out.Outcome == contracts.OutcomeClaimed:
			r.foreign.Add(1)
		case time.Now().After(giveUp):
			return contracts.ErrInternal.With("bench: no execution of this run to claim for 10s")
		default:
			time.Sleep(200 * time.Microsecond)
		}
	}
}
