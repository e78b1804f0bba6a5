package httpapi

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/expo"
)

// metrics are the handler's metrics. Labels are bounded sets (route names,
// error codes, reasons, outcomes): never ids, tokens or other caller input.
// Label names are given sorted (see package expo), and values in that order.
type metrics struct {
	requests     *expo.CounterVec   // outcome, route
	latency      *expo.HistogramVec // outcome, route
	tokenFailure *expo.CounterVec   // reason
	rotations    *expo.CounterVec   // outcome
	// keystoreChanges counts the calls KeystoreAudit records: every seed,
	// rotate_all and revoke_kid, from any front end sharing the handler.
	keystoreChanges *expo.CounterVec // op, outcome
	registry        *expo.Registry
}

// latencyBuckets are the upper bounds of ff_http_request_duration_seconds:
// 100µs × 2.5^i for i in 0..11, up to about 2.4s.
var latencyBuckets = expo.ExponentialBuckets(0.0001, 2.5, 12)

func newMetrics() *metrics {
	m := &metrics{
		requests: expo.NewCounterVec("ff_http_requests_total",
			"HTTP requests by route and outcome (ok or the error code).", "outcome", "route"),
		latency: expo.NewHistogramVec("ff_http_request_duration_seconds",
			"HTTP request latency by route and outcome.", latencyBuckets, "outcome", "route"),
		tokenFailure: expo.NewCounterVec("ff_token_verification_failures_total",
			"Rejected tokens by reason (malformed, unknown_kid, signature_mismatch, token_expired).", "reason"),
		rotations: expo.NewCounterVec("ff_rotations_total",
			"Per-partition rotation outcomes (rotated, noop, or the error code).", "outcome"),
		keystoreChanges: expo.NewCounterVec("ff_keystore_changes_total",
			"Keystore changes by operation (seed, rotate_all, revoke_kid) and outcome, one per call, from the admin routes and the rotation schedule.", "op", "outcome"),
	}
	m.registry = expo.NewRegistry(m.requests, m.latency, m.tokenFailure, m.rotations, m.keystoreChanges)
	return m
}

func (m *metrics) observeRequest(route, outcome string, d time.Duration) {
	m.requests.Inc(outcome, route)
	m.latency.Observe(d.Seconds(), outcome, route)
}

func (m *metrics) observeError(e *contracts.Error) {
	switch {
	case errors.Is(e, contracts.ErrTokenExpired):
		m.tokenFailure.Inc(contracts.CodeTokenExpired)
	case errors.Is(e, contracts.ErrInvalidToken) && e.Reason != "":
		m.tokenFailure.Inc(e.Reason)
	}
}

func (m *metrics) observeRotation(r contracts.RotateAllResult) {
	for _, e := range r.Entries {
		switch {
		case e.Error != nil:
			m.rotations.Inc(e.Error.Code)
		case e.Outcome != nil:
			m.rotations.Inc(e.Outcome.Outcome)
		}
	}
}

// exposition returns the metrics in the Prometheus text format 0.0.4.
func (m *metrics) exposition() []byte { return m.registry.Exposition() }

// WriteMetrics writes the handler's metrics to w in the Prometheus text
// exposition format, version 0.0.4: the body /metrics serves. An
// application with a metrics endpoint of its own can append it there.
func (h *Handler) WriteMetrics(w io.Writer) error {
	_, err := w.Write(h.metrics.exposition())
	return err
}

// Metrics returns an http.Handler serving the handler's metrics in the
// Prometheus text exposition format, version 0.0.4 (Content-Type
// text/plain; version=0.0.4; charset=utf-8), to GET and HEAD; other methods
// answer 405 method_not_allowed. It serves what /metrics does, for an
// application that exposes metrics on another listener or path (see
// Options.DisableMetricsRoute).
func (h *Handler) Metrics() http.Handler {
	return http.HandlerFunc(h.serveMetrics)
}

func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.handle405(w, r, []string{http.MethodGet})
		return
	}
	expo.ServeExposition(w, r, h.metrics.exposition())
}
