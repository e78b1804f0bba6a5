package worker

import (
	"io"
	"net/http"

	"github.com/flowfabric/flowfabric-go/internal/expo"
)

// Values of the result label of ff_worker_handler_duration_seconds: what
// became of the execution a handler ran.
const (
	resultComplete  = "complete"   // completed
	resultSuspend   = "suspend"    // suspended again
	resultError     = "error"      // handler error, no result, or a complete/suspend the store refused: released
	resultPanic     = "panic"      // the handler panicked: released
	resultLeaseLost = "lease_lost" // the lease was lost while it ran: result dropped
	resultShutdown  = "shutdown"   // cancelled at the end of the shutdown grace: released, result dropped
)

// Values of the outcome label of ff_worker_claims_total besides error codes.
const (
	claimClaimed = "claimed" // one per execution claimed
	claimNone    = "none"    // one per claim call that found nothing
)

// durationBuckets are the upper bounds of ff_worker_handler_duration_seconds:
// 1 ms × 2.5^i for i in 0..15, up to about 15.5 minutes.
var durationBuckets = expo.ExponentialBuckets(0.001, 2.5, 16)

// metrics are a worker's metrics. Label values are bounded sets (outcomes,
// results, error codes): never execution ids.
type metrics struct {
	claims      *expo.CounterVec   // outcome
	duration    *expo.HistogramVec // result
	leaseLosses *expo.CounterVec
	inFlight    *expo.GaugeVec
	registry    *expo.Registry
}

func newMetrics() *metrics {
	m := &metrics{
		claims: expo.NewCounterVec("ff_worker_claims_total",
			"Claims by outcome: claimed (one per execution), none (one per call that found nothing), or the error code (one per failed call).", "outcome"),
		duration: expo.NewHistogramVec("ff_worker_handler_duration_seconds",
			"Handler run time by result (complete, suspend, error, panic, lease_lost, shutdown).", durationBuckets, "result"),
		leaseLosses: expo.NewCounterVec("ff_worker_lease_losses_total",
			"Leases lost while a handler ran or while its result was recorded."),
		inFlight: expo.NewGaugeVec("ff_worker_handlers_in_flight",
			"Executions claimed and not yet completed, suspended or released."),
	}
	// Shown from the start, as 0.
	m.leaseLosses.Add(0)
	m.inFlight.Add(0)
	m.registry = expo.NewRegistry(m.claims, m.duration, m.leaseLosses, m.inFlight)
	return m
}

// WriteMetrics writes the worker's metrics to w in the Prometheus text
// exposition format, version 0.0.4, for an application that serves
// metrics of its own:
//
//	ff_worker_claims_total{outcome}                 counter
//	ff_worker_handler_duration_seconds{result}      histogram, buckets 1ms × 2.5^i, i < 16
//	ff_worker_lease_losses_total                    counter
//	ff_worker_handlers_in_flight                    gauge
//
// outcome is claimed (one per execution claimed), none (one per claim call
// that found nothing) or the error code of a failed call; result is
// complete, suspend, error, panic, lease_lost or shutdown.
func (w *Worker) WriteMetrics(out io.Writer) error {
	_, err := out.Write(w.m.registry.Exposition())
	return err
}

// Metrics returns an http.Handler serving what WriteMetrics writes
// (Content-Type text/plain; version=0.0.4; charset=utf-8) to GET and HEAD,
// at any path; other methods answer 405 with Allow: GET.
func (w *Worker) Metrics() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rw.Header().Set("Allow", http.MethodGet)
			http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		expo.ServeExposition(rw, r, w.m.registry.Exposition())
	})
}
