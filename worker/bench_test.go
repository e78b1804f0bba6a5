package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/worker"
)

// BenchmarkResumeToStart measures, one execution at a time, the time from
// a resuming delivery to the start of its handler, reported as p50-ms and
// p99-ms. wakeup: the delivery goes through the worker's Engine, whose
// wake-up starts a claim at once. poll-1s: it goes through a second Engine
// over the same store, whose wake-ups do not reach the worker, so only its
// 1 s polling finds the execution (about 500 ms on average). Each delivery
// waits (untimed) until the worker is idle, and for poll-1s until a random
// phase of its polling.
func BenchmarkResumeToStart(b *testing.B) {
	for _, s := range stores {
		for _, mode := range []string{"wakeup", "poll-1s"} {
			b.Run(s.name+"/"+mode, func(b *testing.B) {
				ew, ed := s.openTwo(b)
				if mode == "wakeup" {
					ed = ew
				}
				started := make(chan time.Time, 1)
				h := worker.HandlerFunc(func(context.Context, *worker.Job) (worker.Result, error) {
					started <- time.Now()
					return worker.Complete(), nil
				})
				r := start(b, ew, h, worker.Options{Concurrency: 1, PollInterval: time.Second})
				lat := make([]time.Duration, 0, b.N)
				idle := 0.0 // claims that found nothing so far
				b.ResetTimer()
				for i := range b.N {
					id := fmt.Sprintf("latency-%d", i)
					b.StopTimer()
					// Deliver to an idle worker: the previous execution
					// completed and a claim found nothing since.
					for {
						none := metric(b, r.w, "ff_worker_claims_total", "outcome", "none")
						if none > idle && metric(b, r.w, "ff_worker_handlers_in_flight") == 0 {
							idle = none
							break
						}
						time.Sleep(time.Millisecond)
					}
					if mode != "wakeup" {
						// At a random phase of the polling.
						time.Sleep(rand.N(time.Second))
					}
					wp := suspend(b, ed, id)
					b.StartTimer()
					t0 := time.Now()
					deliver(b, ed, id, wp, "go")
					lat = append(lat, receive(b, started, "handler start").Sub(t0))
				}
				b.StopTimer()
				reportPercentiles(b, lat)
			})
		}
	}
}

// BenchmarkThroughput measures whole cycles with 16 handlers: 16 clients
// suspend fresh executions and resume them with a signal, and one worker
// (Concurrency 16, woken by the deliveries) claims, runs and completes
// them; reported as execs/s, the cycles finished per second.
func BenchmarkThroughput(b *testing.B) {
	const handlers = 16
	for _, s := range stores {
		b.Run(s.name+"/16-handlers", func(b *testing.B) {
			e := s.open(b)
			var ran atomic.Int64
			h := worker.HandlerFunc(func(context.Context, *worker.Job) (worker.Result, error) {
				ran.Add(1)
				return worker.Complete(), nil
			})
			r := start(b, e, h, worker.Options{Concurrency: handlers, PollInterval: time.Second})
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
						if err := cycle(e, fmt.Sprintf("throughput-%d", i)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			for ran.Load() < int64(b.N) || metric(b, r.w, "ff_worker_handlers_in_flight") > 0 {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "execs/s")
		})
	}
}

// cycle suspends id and resumes it with a signal.
func cycle(e *engine.Engine, id string) error {
	ctx := context.Background()
	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "go"}}})
	if err != nil {
		return err
	}
	wp := s.Waitpoints[0]
	_, err = e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "go"})
	return err
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
