// Package worker tests package worker against real stores (PostgreSQL,
// Valkey) with workers in separate processes: the test binary re-executes
// itself as a worker process (see TestMain and runChild).
package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/flowfabric/flowfabric-go/backend/postgres"
	_ "github.com/flowfabric/flowfabric-go/backend/valkey"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
	"github.com/flowfabric/flowfabric-go/worker"
)

// Environment of a worker process (the test binary re-executed).
const (
	childURL   = "FF_WORKER_CHILD_URL"   // the store
	childMode  = "FF_WORKER_CHILD_MODE"  // modeOverlap or modeHang
	childDir   = "FF_WORKER_CHILD_DIR"   // modeOverlap: where handlers leave their marks
	childLease = "FF_WORKER_CHILD_LEASE" // Options.LeaseMs
)

const (
	// modeOverlap: handlers mark each run in childDir (see markRun) and
	// fail the first attempt of a third of the executions.
	modeOverlap = "overlap"
	// modeHang: handlers print "started <execution_id> <lease_expires_at_ms>"
	// and never return: the process is killed.
	modeHang = "hang"
)

// waitFor bounds the waits for what takes milliseconds to seconds when the
// code is right; no test asserts a time.
const waitFor = 60 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(childURL) != "" {
		os.Exit(runChild())
	}
	testenv.Main(m)
}

// runChild runs a worker process until its stdin closes or it gets
// SIGTERM, or forever in modeHang (until killed).
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() { // the parent closes stdin to stop us, or died
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	e, err := engine.Open(ctx, os.Getenv(childURL))
	if err != nil {
		fmt.Println("open-error", err)
		return 2
	}
	defer e.Close()
	lease, _ := strconv.ParseInt(os.Getenv(childLease), 10, 64)
	var h worker.Handler
	switch os.Getenv(childMode) {
	case modeOverlap:
		h = overlapHandler(os.Getenv(childDir))
	case modeHang:
		var mu sync.Mutex
		h = worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
			mu.Lock()
			fmt.Println("started", job.ExecutionID, job.LeaseExpiresAt().UnixMilli())
			mu.Unlock()
			select {} // until killed
		})
	default:
		fmt.Println("unknown mode")
		return 2
	}
	w, err := worker.New(e, h, worker.Options{Concurrency: 4, BatchSize: 3, LeaseMs: lease, PollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		fmt.Println("worker-error", err)
		return 2
	}
	fmt.Println("ready")
	if err := w.Run(ctx); err != nil {
		fmt.Println("run-error", err)
		return 1
	}
	return 0
}

// overlapHandler detects, across processes, two handlers running one
// execution at once: each run creates <id>.running exclusively (a
// "violation-" file when it exists already) and removes it when done. The
// first run of a third of the executions fails ("failed-<id>"); every
// other run leaves a "done-<id>-<random>" file and completes.
func overlapHandler(dir string) worker.Handler {
	return worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
		id := job.ExecutionID
		running := filepath.Join(dir, id+".running")
		f, err := os.OpenFile(running, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("violation-%s-%d", id, rand.Int64())), nil, 0o600)
		} else {
			_ = f.Close()
			defer os.Remove(running)
		}
		time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond)
		h := fnv.New32a()
		h.Write([]byte(id))
		if h.Sum32()%3 == 0 {
			if f, err := os.OpenFile(filepath.Join(dir, "failed-"+id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
				_ = f.Close()
				return worker.Result{}, errors.New("first attempt fails")
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("done-%s-%d", id, rand.Int64())), nil, 0o600); err != nil {
			return worker.Result{}, err
		}
		return worker.Complete(), nil
	})
}

// child is a worker process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its stdout, line by line; closed at EOF
}

// spawn starts a worker process on rawURL and waits until it is ready.
// It is stopped (stdin closed, then killed after waitFor) when t ends.
func spawn(t *testing.T, rawURL, mode, dir string, leaseMs int64) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childURL+"="+rawURL, childMode+"="+mode, childDir+"="+dir,
		childLease+"="+strconv.FormatInt(leaseMs, 10))
	cmd.Stderr = &testWriter{t: t}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 1024)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { c.stop(t) })
	require.Equal(t, "ready", c.next(t), "the worker process starts")
	return c
}

// next returns the next line the process printed.
func (c *child) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		require.True(t, ok, "the worker process exited")
		return l
	case <-time.After(waitFor):
		t.Fatalf("the worker process printed nothing for %v", waitFor)
		return ""
	}
}

// stop closes stdin (the process shuts down cleanly) and waits for it.
func (c *child) stop(t *testing.T) {
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(waitFor):
		_ = c.cmd.Process.Kill()
		<-done
		t.Errorf("the worker process did not stop within %v of its stdin closing", waitFor)
	}
}

// kill kills the process (SIGKILL) and waits for it.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// testWriter sends a process's stderr (its ERROR logs: failed attempts
// are expected here) to t.Log.
type testWriter struct {
	mu sync.Mutex
	t  *testing.T
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Logf("worker process: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// backend is one real store kind: a fresh, isolated store per call.
type backend struct {
	name string
	url  func(t testing.TB) string
}

var backends = []backend{
	{"postgres", func(t testing.TB) string {
		return withParams(t, testenv.NewPostgresSchema(t, testenv.PackageDatabase(t)), "ff_migrate", "auto")
	}},
	{"valkey", func(t testing.TB) string {
		return withParams(t, testenv.ValkeyURL(t), "prefix", testenv.KeyPrefix(t), "partitions", "4")
	}},
}

func withParams(t testing.TB, rawURL string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// open opens rawURL, seeded, closed when t ends.
func open(t testing.TB, rawURL string) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	e, err := engine.Open(ctx, rawURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	_, err = e.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(strings.Repeat("s", 32))})
	require.NoError(t, err)
	return e
}

// resume suspends id on one waitpoint and resumes it with a signal.
func resume(t *testing.T, e *engine.Engine, id string) {
	t.Helper()
	ctx := context.Background()
	s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "go"}}})
	require.NoError(t, err)
	wp := s.Waitpoints[0]
	d, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: wp.WaitpointID, Token: wp.Token, Name: "go"})
	require.NoError(t, err)
	require.True(t, d.Resumed)
}

// gone reports whether the store forgot id (it was completed).
func gone(t *testing.T, e *engine.Engine, id string) bool {
	t.Helper()
	_, err := e.ObserveSignals(context.Background(), contracts.ObserveSignalsArgs{ExecutionID: id})
	if errors.Is(err, contracts.ErrExecutionNotFound) {
		return true
	}
	require.NoError(t, err)
	return false
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", waitFor, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Given resumed executions and two worker processes on one real store,
// when they run everything (a third of the executions failing their first
// attempt, so released and claimed again), then no execution ever ran in
// two handlers at once across the processes, and each completed once.
func TestNeverTwiceConcurrently(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			raw := b.url(t)
			e := open(t, raw)
			const n = 40
			var ids []string
			for i := range n {
				id := fmt.Sprintf("overlap-%02d", i)
				ids = append(ids, id)
				resume(t, e, id)
			}
			dir := t.TempDir()
			spawn(t, raw, modeOverlap, dir, 5_000)
			spawn(t, raw, modeOverlap, dir, 5_000)
			eventually(t, func() bool {
				for _, id := range ids {
					if !gone(t, e, id) {
						return false
					}
				}
				return true
			}, "every execution completed")

			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			done, failed := map[string]int{}, 0
			for _, f := range entries {
				name := f.Name()
				switch {
				case strings.HasPrefix(name, "violation-"):
					t.Errorf("two handlers ran one execution at once: %s", name)
				case strings.HasPrefix(name, "failed-"):
					failed++
				case strings.HasPrefix(name, "done-"):
					done[name[len("done-"):strings.LastIndexByte(name, '-')]]++
				}
			}
			for _, id := range ids {
				require.Equal(t, 1, done[id], "completed runs of %s", id)
			}
			require.Positive(t, failed, "some first attempts failed and ran again")
		})
	}
}

// Given a worker process holding leases on running executions, when it is
// killed, then another worker claims them again once their leases expired
// (by the store's clock: the new claim is not earlier than the old
// lease's expiry), with their reason, and completes them.
func TestKilledWorkerClaimedAgain(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			raw := b.url(t)
			e := open(t, raw)
			ids := []string{"killed-0", "killed-1", "killed-2"}
			for _, id := range ids {
				resume(t, e, id)
			}
			const leaseMs = 1_500
			c := spawn(t, raw, modeHang, "", leaseMs)
			expiry := map[string]int64{} // the killed worker's leases, by the store's clock
			for range ids {
				f := strings.Fields(c.next(t))
				require.Len(t, f, 3, "a started line")
				ms, err := strconv.ParseInt(f[2], 10, 64)
				require.NoError(t, err)
				expiry[f[1]] = ms
			}
			c.kill()

			type run struct {
				job       *worker.Job
				claimedAt int64 // by the store's clock
			}
			runs := make(chan run, len(ids))
			const nextLeaseMs = 60_000
			w, err := worker.New(e, worker.HandlerFunc(func(ctx context.Context, job *worker.Job) (worker.Result, error) {
				runs <- run{job, job.LeaseExpiresAt().UnixMilli() - nextLeaseMs}
				return worker.Complete(), nil
			}), worker.Options{LeaseMs: nextLeaseMs, PollInterval: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			defer func() {
				cancel()
				require.NoError(t, <-done)
			}()

			seen := map[string]bool{}
			for range ids {
				select {
				case r := <-runs:
					require.Contains(t, expiry, r.job.ExecutionID)
					require.False(t, seen[r.job.ExecutionID], "%s ran twice", r.job.ExecutionID)
					seen[r.job.ExecutionID] = true
					require.Equal(t, contracts.ReasonSignal, r.job.Reason, "the reason is kept")
					require.GreaterOrEqual(t, r.claimedAt, expiry[r.job.ExecutionID], "claimed again only after the killed worker's lease expired")
				case <-time.After(waitFor):
					t.Fatalf("the killed worker's executions were not claimed again within %v", waitFor)
				}
			}
			eventually(t, func() bool {
				for _, id := range ids {
					if !gone(t, e, id) {
						return false
					}
				}
				return true
			}, "every execution completed")
		})
	}
}
