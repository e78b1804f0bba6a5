package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/backend/sqlite"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/expo/expotest"
	"github.com/flowfabric/flowfabric-go/worker"
)

// waitFor bounds how long a test waits for something that happens within
// milliseconds when the code is right: a missing wake-up or a lost release
// shows as this timeout, never as a flaky bound.
const waitFor = 30 * time.Second

// store opens a fresh, seeded store of one backend kind.
type store struct {
	name string
	// open returns an Engine over a fresh store.
	open func(t testing.TB) *engine.Engine
	// openTwo returns two Engines over one fresh store: for memory, two
	// Engines sharing one backend; for SQLite, two opens of one file.
	openTwo func(t testing.TB) (*engine.Engine, *engine.Engine)
}

var stores = []store{
	{
		name: "memory",
		open: func(t testing.TB) *engine.Engine { return seeded(t, engine.New(memory.New())) },
		openTwo: func(t testing.TB) (*engine.Engine, *engine.Engine) {
			b := memory.New()
			first := seeded(t, engine.New(b))
			return first, engine.New(b) // closed with the first
		},
	},
	{
		name: "sqlite",
		open: func(t testing.TB) *engine.Engine { return openSQLite(t, filepath.Join(t.TempDir(), "ff.db")) },
		openTwo: func(t testing.TB) (*engine.Engine, *engine.Engine) {
			path := filepath.Join(t.TempDir(), "ff.db")
			return openSQLite(t, path), openSQLite(t, path)
		},
	},
}

func openSQLite(t testing.TB, path string) *engine.Engine {
	t.Helper()
	b, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err)
	return seeded(t, engine.New(b))
}

// seeded seeds e (idempotently) and closes it when t ends.
func seeded(t testing.TB, e *engine.Engine) *engine.Engine {
	t.Helper()
	t.Cleanup(func() { _ = e.Close() })
	secret, err := contracts.ParseSecretHex("secret", strings.Repeat("5e", 32))
	require.NoError(t, err)
	_, err = e.Seed(context.Background(), contracts.SeedArgs{Kid: "k1", Secret: secret})
	require.NoError(t, err)
	return e
}

// suspend suspends id on one waitpoint "go" and returns it.
func suspend(t testing.TB, e *engine.Engine, id string) contracts.WaitpointOutcome {
	t.Helper()
	s, err := e.Suspend(context.Background(), contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "go"}}})
	require.NoError(t, err)
	return s.Waitpoints[0]
}

// deliver delivers a signal named name to wp of id.
func deliver(t testing.TB, e *engine.Engine, id string, wp contracts.WaitpointOutcome, name string) contracts.DeliverSignalOutcome {
	t.Helper()
	out, err := e.DeliverSignal(context.Background(), contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: name})
	require.NoError(t, err)
	return out
}

// resume suspends id and resumes it with a signal "go": it is claimable.
func resume(t testing.TB, e *engine.Engine, id string) {
	t.Helper()
	require.True(t, deliver(t, e, id, suspend(t, e, id), "go").Resumed, "the signal resumes %s", id)
}

// gone reports whether the store forgot id (it was completed).
func gone(t testing.TB, e *engine.Engine, id string) bool {
	t.Helper()
	_, err := e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: id})
	if errors.Is(err, contracts.ErrExecutionNotFound) {
		return true
	}
	require.NoError(t, err)
	return false
}

// suspended reports whether id is in state suspended, and its suspension.
func suspended(t testing.TB, e *engine.Engine, id string) (string, bool) {
	t.Helper()
	res, err := e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{Limit: contracts.MaxListLimit})
	require.NoError(t, err)
	for _, x := range res.Executions {
		if x.ExecutionID == id {
			return x.SuspensionID, true
		}
	}
	return "", false
}

// quiet returns options whose logs go nowhere.
func quiet(o worker.Options) worker.Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// running is a worker started by start.
type running struct {
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
}

// start runs a new worker until stop (or the end of the test).
func start(t testing.TB, e *engine.Engine, h worker.Handler, o worker.Options) *running {
	t.Helper()
	w, err := worker.New(e, h, quiet(o))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run's context and waits until Run returned. Idempotent.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			require.NoError(t, err, "Run")
			close(r.done)
		}
	case <-time.After(waitFor):
		t.Fatalf("Run did not return within %v of its context's end", waitFor)
	}
}

// eventually waits until cond holds, failing the test after waitFor.
func eventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+format, append([]any{waitFor}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receive waits for a value on ch, failing the test after waitFor.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("no %s within %v", what, waitFor)
		panic("unreachable")
	}
}

// scrape reads the worker's metrics through its http.Handler, strictly.
func scrape(t testing.TB, w *worker.Worker) *expotest.Exposition {
	t.Helper()
	rec := httptest.NewRecorder()
	w.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, 200, rec.Code)
	x, err := expotest.Parse(rec.Body.Bytes())
	require.NoError(t, err, "exposition:\n%s", rec.Body)
	return x
}

// metric returns one sample of the worker's metrics, 0 when absent.
func metric(t testing.TB, w *worker.Worker, name string, labels ...string) float64 {
	t.Helper()
	v, _ := scrape(t, w).Lookup(name, labels...)
	return v
}

// logBuffer collects JSON log lines; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// ids returns n execution ids with a prefix.
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}
