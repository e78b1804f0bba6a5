package httpapi

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// metrics are the handler's Prometheus collectors. Labels are bounded sets
// (route names, error codes, reasons, outcomes): never ids or tokens.
type metrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	tokenFailure *prometheus.CounterVec
	rotations    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ff_http_requests_total", Help: "HTTP requests by route and outcome (ok or the error code).",
		}, []string{"route", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ff_http_request_duration_seconds", Help: "HTTP request latency by route and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, []string{"route", "outcome"}),
		tokenFailure: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ff_token_verification_failures_total", Help: "Rejected tokens by reason (malformed, unknown_kid, signature_mismatch, token_expired).",
		}, []string{"reason"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ff_rotations_total", Help: "Per-partition rotation outcomes (rotated, noop, or the error code).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.latency, m.tokenFailure, m.rotations)
	return m
}

func (m *metrics) observeRequest(route, outcome string, d time.Duration) {
	m.requests.WithLabelValues(route, outcome).Inc()
	m.latency.WithLabelValues(route, outcome).Observe(d.Seconds())
}

func (m *metrics) observeError(e *contracts.Error) {
	switch {
	case errors.Is(e, contracts.ErrTokenExpired):
		m.tokenFailure.WithLabelValues(contracts.CodeTokenExpired).Inc()
	case errors.Is(e, contracts.ErrInvalidToken) && e.Reason != "":
		m.tokenFailure.WithLabelValues(e.Reason).Inc()
	}
}

func (m *metrics) observeRotation(r contracts.RotateAllResult) {
	for _, e := range r.Entries {
		switch {
		case e.Error != nil:
			m.rotations.WithLabelValues(e.Error.Code).Inc()
		case e.Outcome != nil:
			m.rotations.WithLabelValues(e.Outcome.Outcome).Inc()
		}
	}
}
