// Package workerbench holds the worker benchmarks, so that package worker
// runs them on the embedded stores and internal/integration on PostgreSQL
// and Valkey, with one body: resume → handler start latency and cycle
// throughput at 16 handlers (issue-free figures for docs/benchmarks.md).
package workerbench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/expo/expotest"
	"github.com/flowfabric/flowfabric-go/worker"
)

// Store opens fresh, seeded stores of one backend kind.
type Store struct {
	Name string
	// Open returns an Engine over a fresh store, closed when b ends.
	Open func(b testing.TB) *engine.Engine
	// OpenTwo returns two Engines over one fresh store, as two processes
	// would have: the first runs the worker, the second delivers.
	OpenTwo func(b testing.TB) (*engine.Engine, *engine.Engine)
}

// waitFor bounds every wait for something that takes milliseconds.
const waitFor = 30 * time.Second

// ResumeToStart measures, one execution at a time, the time from a
// resuming delivery to the start of its handler, reported as p50-ms and
// p99-ms, in two modes. same-engine: the delivery goes through the worker's
// Engine, whose own wake-up starts a claim. other-engine: it goes through a
// second Engine on the same store, as from another process: the backend's
// push wakes the worker where it has one (driver.ClaimableWatcher), else
// only the worker's 1 s polling finds it (about 500 ms on average). Each
// delivery waits (untimed) until the worker is idle and, for other-engine,
// for a random phase of the polling.
func ResumeToStart(b *testing.B, s Store) {
	for _, mode := range []string{"same-engine", "other-engine"} {
		b.Run(s.Name+"/"+mode, func(b *testing.B) {
			ew, ed := s.OpenTwo(b)
			if mode == "same-engine" {
				ed = ew
			}
			started := make(chan time.Time, 1)
			h := worker.HandlerFunc(func(context.Context, *worker.Job) (worker.Result, error) {
				started <- time.Now()
				return worker.Complete(), nil
			})
			w := start(b, ew, h, worker.Options{Concurrency: 1, PollInterval: time.Second})
			lat := make([]time.Duration, 0, b.N)
			idle := 0.0 // claims that found nothing so far
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprintf("latency-%d", i)
				b.StopTimer()
				// Deliver to an idle worker: the previous execution
				// completed and a claim found nothing since.
				deadline := time.Now().Add(waitFor)
				for {
					none := metric(b, w, "ff_worker_claims_total", "outcome", "none")
					if none > idle && metric(b, w, "ff_worker_handlers_in_flight") == 0 {
						idle = none
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("the worker did not go idle within %v", waitFor)
					}
					time.Sleep(time.Millisecond)
				}
				if mode != "same-engine" {
					time.Sleep(rand.N(time.Second)) // a random phase of the polling
				}
				wp := suspend(b, ed, id)
				b.StartTimer()
				t0 := time.Now()
				deliver(b, ed, id, wp)
				select {
				case t1 := <-started:
					lat = append(lat, t1.Sub(t0))
				case <-time.After(waitFor):
					b.Fatalf("no handler start within %v", waitFor)
				}
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
}

// Throughput measures whole cycles with 16 handlers: 16 clients suspend
// fresh executions and resume them with a signal, and one worker
// (Concurrency 16, woken by the deliveries) claims, runs and completes
// them; reported as execs/s, the cycles finished per second.
func Throughput(b *testing.B, s Store) {
	const handlers = 16
	b.Run(s.Name+"/16-handlers", func(b *testing.B) {
		e := s.Open(b)
		var ran atomic.Int64
		h := worker.HandlerFunc(func(context.Context, *worker.Job) (worker.Result, error) {
			ran.Add(1)
			return worker.Complete(), nil
		})
		w := start(b, e, h, worker.Options{Concurrency: handlers, PollInterval: time.Second})
		b.ResetTimer()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range handlers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					id := fmt.Sprintf("throughput-%d", i)
					deliver(b, e, id, suspend(b, e, id))
				}
			})
		}
		wg.Wait()
		deadline := time.Now().Add(waitFor)
		for ran.Load() < int64(b.N) || metric(b, w, "ff_worker_handlers_in_flight") > 0 {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d handlers ran within %v", ran.Load(), b.N, waitFor)
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "execs/s")
	})
}

// start runs a worker (logs discarded) until b ends.
func start(b testing.TB, e *engine.Engine, h worker.Handler, o worker.Options) *worker.Worker {
	b.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	w, err := worker.New(e, h, o)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	})
	return w
}

// suspend suspends id on one waitpoint "go".
func suspend(b testing.TB, e *engine.Engine, id string) contracts.WaitpointOutcome {
	s, err := e.Suspend(context.Background(), contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "go"}}})
	if err != nil {
		b.Fatalf("suspend %s: %v", id, err)
	}
	return s.Waitpoints[0]
}

// deliver resumes id with a signal to wp.
func deliver(b testing.TB, e *engine.Engine, id string, wp contracts.WaitpointOutcome) {
	out, err := e.DeliverSignal(context.Background(), contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "go"})
	if err != nil || !out.Resumed {
		b.Fatalf("deliver to %s: %+v %v", id, out, err)
	}
}

// metric reads one sample of the worker's metrics, 0 when absent.
func metric(b testing.TB, w *worker.Worker, name string, labels ...string) float64 {
	rec := httptest.NewRecorder()
	w.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	x, err := expotest.Parse(rec.Body.Bytes())
	if err != nil {
		b.Fatalf("metrics: %v", err)
	}
	v, _ := x.Lookup(name, labels...)
	return v
}

// reportPercentiles reports the p50 and p99 of lat in milliseconds.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op") // the cycle's time is not the measure here
}
