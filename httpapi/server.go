package httpapi

import (
	"net/http"
	"time"
)

// Timeouts of NewServer: a slow client cannot hold a connection forever.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 120 * time.Second
)

// NewServer returns an http.Server for h on addr with read, write and idle
// timeouts set. Shut it down with Shutdown to let in-flight requests finish.
// A long-poll claim moves its own connection's deadlines past its wait_ms;
// when h is a *Handler, Shutdown ends the long polls at once
// (Handler.Close), so that they do not hold the shutdown for their wait.
func NewServer(addr string, h http.Handler) *http.Server {
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    16 << 10,
	}
	if hh, ok := h.(*Handler); ok {
		srv.RegisterOnShutdown(func() { _ = hh.Close() })
	}
	return srv
}

// MetricsOnly returns an http.Handler for a listener of its own that serves
// h's metrics at GET /metrics, as Metrics does, and answers every other
// path 404 route_not_found with an error envelope. Pair it with
// Options.DisableMetricsRoute on h, so that the metrics are served only
// there (ff serve --metrics-listen):
//
//	h := httpapi.New(e, httpapi.Options{DisableMetricsRoute: true})
//	public := httpapi.NewServer(":8080", h)
//	private := httpapi.NewServer("127.0.0.1:9090", h.MetricsOnly())
func (h *Handler) MetricsOnly() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", h.serveMetrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, endpoint{name: "not_found", op: func(*http.Request) (any, error) {
			return nil, errRouteNotFound.With("path: this listener serves only GET /metrics")
		}})
	})
	return mux
}
