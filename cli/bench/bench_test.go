package bench

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/backend/memory"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

func newEngine(t *testing.T) *engine.Engine {
	t.Helper()
	e := engine.New(memory.New())
	t.Cleanup(func() { e.Close() })
	return e
}

func currentKid(t *testing.T, e *engine.Engine) string {
	t.Helper()
	l, err := e.ListKids(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Partitions) == 0 || l.Partitions[0].CurrentKid == nil {
		return ""
	}
	return *l.Partitions[0].CurrentKid
}

// wantSane checks the report of a run without failures.
func wantSane(t *testing.T, rep Report, cfg Config) {
	t.Helper()
	l := rep.LatencyUs
	switch {
	case rep.Op != cfg.Op || rep.Concurrency != cfg.Concurrency || rep.Ops < 1 || rep.Errors != 0 || rep.OpsPerSec <= 0:
		t.Fatalf("%s: report %+v", cfg.Op, rep)
	case rep.DurationMs < cfg.Duration.Milliseconds():
		t.Fatalf("%s: ran %dms, want at least %v", cfg.Op, rep.DurationMs, cfg.Duration)
	case !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max):
		t.Fatalf("%s: percentiles out of order: %+v", cfg.Op, l)
	case rep.StepsUs != nil:
		t.Fatalf("%s: steps %+v, want none", cfg.Op, rep.StepsUs)
	case rep.Backend != "" || rep.KeystoreCacheMs != 0:
		t.Fatalf("%s: Run filled the caller's fields: %+v", cfg.Op, rep)
	}
}

// Every operation but cycle (tested through ff bench, which has the HTTP
// API) runs on an empty store, which Run seeds with a kid of its own.
func TestRunEveryOp(t *testing.T) {
	for _, op := range Ops() {
		if op == OpCycle {
			continue
		}
		t.Run(op, func(t *testing.T) {
			e := newEngine(t)
			cfg := Config{Op: op, Concurrency: 3, Duration: 50 * time.Millisecond}
			rep, err := Run(context.Background(), e, cfg)
			if err != nil {
				t.Fatal(err)
			}
			wantSane(t, rep, cfg)
			if !rep.SeededByBench || !strings.HasPrefix(currentKid(t, e), kidPrefix) {
				t.Fatalf("seeded %v, current kid %q", rep.SeededByBench, currentKid(t, e))
			}
		})
	}
}

// An invalid Config is refused before Run touches the store.
func TestRunRejectsInvalidConfig(t *testing.T) {
	ok := Config{Op: OpSign, Concurrency: 1, Duration: time.Millisecond}
	for name, mutate := range map[string]func(*Config){
		"op":          func(c *Config) { c.Op = "nap" },
		"concurrency": func(c *Config) { c.Concurrency = 0 },
		"duration":    func(c *Config) { c.Duration = 0 },
		"grace":       func(c *Config) { c.Grace = -time.Second },
		"cycle":       func(c *Config) { c.Op = OpCycle },
	} {
		e := newEngine(t)
		cfg := ok
		mutate(&cfg)
		if _, err := Run(context.Background(), e, cfg); !errors.Is(err, contracts.ErrInvalidInput) {
			t.Errorf("%s: %+v: error %v, want invalid_input", name, cfg, err)
		}
		if kid := currentKid(t, e); kid != "" {
			t.Errorf("%s: seeded %q", name, kid)
		}
	}
}

// Given a keystore seeded by someone else, every operation that writes
// (rotate, suspend, deliver, cycle) is refused without Force and leaves
// the store alone; sign needs no Force; with Force rotate runs and leaves a
// bench kid current.
func TestRunRefusesAForeignKeystore(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "prod", Secret: newSecret()}); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{OpRotate, OpSuspend, OpDeliver, OpCycle} {
		if !Writes(op) {
			t.Fatalf("Writes(%s) = false", op)
		}
		cfg := Config{Op: op, Concurrency: 1, Duration: time.Millisecond, Handler: http.NotFoundHandler()}
		if _, err := Run(ctx, e, cfg); !errors.Is(err, ErrForeignKeystore) {
			t.Fatalf("%s without Force: error %v", op, err)
		}
	}
	if kid := currentKid(t, e); kid != "prod" {
		t.Fatalf("current kid %q after refused runs, want prod", kid)
	}
	wantNoExecutions(t, e, "after refused runs")
	cfg := Config{Op: OpSign, Concurrency: 1, Duration: 20 * time.Millisecond}
	rep, err := Run(ctx, e, cfg)
	if err != nil || rep.SeededByBench {
		t.Fatalf("sign: %+v, %v", rep, err)
	}
	wantSane(t, rep, cfg)
	cfg = Config{Op: OpRotate, Concurrency: 1, Duration: 20 * time.Millisecond, Grace: time.Hour, Force: true}
	rep, err = Run(ctx, e, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantSane(t, rep, cfg)
	if rep.SeededByBench || !strings.HasPrefix(currentKid(t, e), kidPrefix) || currentKid(t, e) == "prod" {
		t.Fatalf("with Force: report %+v, current %q", rep, currentKid(t, e))
	}
}

// CPUProfile writes a profile, and a file that cannot be created is a
// *ProfileError.
func TestRunCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	cfg := Config{Op: OpSign, Concurrency: 1, Duration: 20 * time.Millisecond, CPUProfile: path}
	if _, err := Run(context.Background(), newEngine(t), cfg); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("CPUProfile wrote nothing: %v", err)
	}
	cfg.CPUProfile = filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.prof")
	var pe *ProfileError
	if _, err := Run(context.Background(), newEngine(t), cfg); !errors.As(err, &pe) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want a *ProfileError for a missing directory", err)
	}
}

// A cycle whose HTTP delivery fails counts the error envelope's code and
// times the suspend step only.
func TestCycleCountsHTTPErrors(t *testing.T) {
	refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/signals") || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			http.Error(w, "unexpected request", http.StatusTeapot) // answered "internal": no envelope
			return
		}
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(contracts.ErrorEnvelope{Error: contracts.ErrInvalidInput.With("refused")})
	})
	cfg := Config{Op: OpCycle, Concurrency: 2, Duration: 30 * time.Millisecond, Handler: refuse}
	rep, err := Run(context.Background(), newEngine(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ops < 1 || rep.Errors != rep.Ops || rep.ErrorCodes[contracts.CodeInvalidInput] != rep.Ops {
		t.Fatalf("report %+v, want every op failed with %s", rep, contracts.CodeInvalidInput)
	}
	keys := make([]string, 0, len(rep.StepsUs))
	for k := range rep.StepsUs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"claim", "complete", "deliver_http", "suspend"}) {
		t.Fatalf("steps %v", keys)
	}
	if rep.StepsUs["suspend"].Max <= 0 || rep.StepsUs["deliver_http"] != (Latency{}) || rep.StepsUs["claim"] != (Latency{}) {
		t.Fatalf("steps %+v, want only suspend timed", rep.StepsUs)
	}
}

// wantNoExecutions checks that the store holds no suspended execution and
// none to claim.
func wantNoExecutions(t *testing.T, e *engine.Engine, when string) {
	t.Helper()
	ctx := context.Background()
	l, err := e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Executions) != 0 {
		t.Fatalf("%s: %d suspended executions left, e.g. %+v", when, len(l.Executions), l.Executions[0])
	}
	c, err := e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "test", LeaseMs: 1000})
	if err != nil || c.Outcome != contracts.OutcomeNone {
		t.Fatalf("%s: claim %+v, %v; want none left", when, c, err)
	}
}

// suspend, deliver and cycle remove the executions they suspended once the
// run is over, also when the run's context was cancelled; the report says
// how many.
func TestRunRemovesWhatItCreated(t *testing.T) {
	for _, op := range []string{OpSuspend, OpDeliver, OpCycle} {
		t.Run(op, func(t *testing.T) {
			e := newEngine(t)
			cfg := Config{Op: op, Concurrency: 3, Duration: 60 * time.Millisecond}
			if op == OpCycle {
				cfg.Handler = httpapi.New(e, httpapi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			}
			rep, err := Run(context.Background(), e, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Errors != 0 || rep.LeftBehind != 0 || op != OpCycle && rep.RemovedExecutions < 1 {
				t.Fatalf("report %+v: want executions removed, none left behind", rep)
			}
			wantNoExecutions(t, e, op)
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		e := newEngine(t)
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
		defer cancel()
		rep, err := Run(ctx, e, Config{Op: OpSuspend, Concurrency: 2, Duration: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if rep.RemovedExecutions < 1 || rep.LeftBehind != 0 {
			t.Fatalf("report %+v", rep)
		}
		wantNoExecutions(t, e, "after a cancelled run")
	})
}

// A deliver run moves to a fresh suspension before a waitpoint's signal
// budget (1000 by default), so every delivery is accepted.
func TestDeliverStaysWithinTheWaitpointBudget(t *testing.T) {
	e := newEngine(t)
	cfg := Config{Op: OpDeliver, Concurrency: 1, Duration: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var rep Report
	var err error
	go func() {
		defer close(done)
		rep, err = Run(ctx, e, cfg)
	}()
	// Stop once well past one waitpoint's budget.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		l, lerr := e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{Limit: 10})
		if lerr == nil && len(l.Executions) >= 3 {
			break
		}
	}
	cancel()
	<-done
	if err != nil || rep.Errors != 0 || rep.Ops < int64(contracts.WaitpointSignalLimit) {
		t.Fatalf("report %+v, %v: want more than %d deliveries, all accepted", rep, err, contracts.WaitpointSignalLimit)
	}
	wantNoExecutions(t, e, "after deliver")
}

// An operation cut short by the caller's cancellation is neither counted nor
// reported as an error; one that fails on its own still is.
func TestCancelledOperationIsNotAnError(t *testing.T) {
	r := &runner{cfg: Config{Concurrency: 2, Duration: time.Hour}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int64
	op := func(ctx context.Context, w, i int) error {
		switch n := calls.Add(1); {
		case n < 10:
			return contracts.Invalid("field", "rule")
		case n == 10:
			cancel()
		}
		<-ctx.Done()
		return contracts.ErrCanceled.Wrapping(ctx.Err())
	}
	rep := r.run(ctx, op)
	if rep.ErrorCodes[contracts.CodeCanceled] != 0 {
		t.Fatalf("report %+v: a cancelled operation counted as an error", rep)
	}
	if rep.Ops != 9 || rep.Errors != 9 || rep.ErrorCodes[contracts.CodeInvalidInput] != 9 {
		t.Fatalf("report %+v: want the 9 calls that failed on their own, each an invalid_input error", rep)
	}
}
