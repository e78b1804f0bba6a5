package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/cli/bench"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// benchCycleSteps are the keys of steps_us in the JSON report of a cycle.
var benchCycleSteps = []string{"suspend", "deliver_http", "claim", "complete"}

// benchForeignSecret is the secret of a keystore seeded by someone else.
var benchForeignSecret = contracts.Secret(bytes.Repeat([]byte{0x5a}, GeneratedSecretBytes))

// runBench runs `ff --backend url bench args...` in-process (through the
// command itself, so the test does not depend on the command table).
func runBench(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	inv := &invocation{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb, backendURL: url}
	code := benchCommand.execute(inv, args)
	return code, out.String(), errb.String()
}

func benchJSON(t *testing.T, url string, args ...string) bench.Report {
	t.Helper()
	code, out, errs := runBench(t, url, append(args, "--json")...)
	if code != ExitOK {
		t.Fatalf("ff bench %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("ff bench %v: not JSON: %v\n%s", args, err, out)
	}
	return rep
}

// wantSane checks a report of a successful run.
func wantSane(t *testing.T, rep bench.Report, op string) {
	t.Helper()
	l := rep.LatencyUs
	switch {
	case rep.Op != op || rep.Ops < 1 || rep.Errors != 0 || rep.OpsPerSec <= 0:
		t.Fatalf("%s: report %+v", op, rep)
	case !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max):
		t.Fatalf("%s: percentiles out of order: %+v", op, l)
	}
}

// Every operation runs against memory:// and reports throughput and
// ordered percentiles with no error; bench seeds the empty store.
func TestBenchMemoryEveryOp(t *testing.T) {
	for _, op := range bench.Ops() {
		t.Run(op, func(t *testing.T) {
			rep := benchJSON(t, "memory://", "--op", op, "--concurrency", "3", "--duration", "150ms")
			wantSane(t, rep, op)
			if !rep.SeededByBench || rep.Backend != "memory://" || rep.Concurrency != 3 {
				t.Fatalf("report %+v", rep)
			}
			if op != bench.OpCycle {
				if rep.StepsUs != nil {
					t.Fatalf("%s: steps %+v, want none", op, rep.StepsUs)
				}
				return
			}
			// A cycle is timed step by step too.
			for _, step := range benchCycleSteps {
				l, ok := rep.StepsUs[step]
				if !ok || !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
					t.Fatalf("cycle step %s: %+v (present %v)", step, l, ok)
				}
			}
		})
	}
}

// sign, verify, deliver and cycle run against a SQLite file, and the table
// names every column.
func TestBenchSQLite(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "bench.db")
	for _, op := range []string{bench.OpVerify, bench.OpDeliver, bench.OpCycle} {
		wantSane(t, benchJSON(t, url, "--op", op, "--concurrency", "4", "--duration", "200ms"), op)
	}
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	code, out, errs := runBench(t, url, "--op", "sign", "--concurrency", "2", "--duration", "100ms", "--keystore-cache", "0", "--cpuprofile", prof)
	if code != ExitOK {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Fatalf("--cpuprofile wrote nothing: %v", err)
	}
	for _, col := range []string{"op", "clients", "ops/s", "p50", "p90", "p99", "max", "keystore cache", "0s", "sign"} {
		if !strings.Contains(out, col) {
			t.Fatalf("table lacks %q:\n%s", col, out)
		}
	}
}

// Given a keystore seeded by someone else, then every op that writes
// (rotate, suspend, deliver, cycle) refuses without --force and leaves the
// store alone; with --force rotate runs.
func TestBenchRefusesToChangeAKeystoreItDidNotSeed(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "prod.db")
	e, err := engine.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "prod", Secret: benchForeignSecret}); err != nil {
		t.Fatal(err)
	}
	current := func() string {
		l, err := e.ListKids(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return *l.Partitions[0].CurrentKid
	}
	for _, op := range []string{bench.OpRotate, bench.OpSuspend, bench.OpDeliver, bench.OpCycle} {
		code, _, errs := runBench(t, url, "--op", op, "--duration", "50ms")
		if code != ExitUsage || !strings.Contains(errs, "--force") {
			t.Fatalf("%s without --force: exit %d, stderr %q", op, code, errs)
		}
	}
	if got := current(); got != "prod" {
		t.Fatalf("current kid %q after refused runs, want prod", got)
	}
	if l, err := e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{Limit: 10}); err != nil || len(l.Executions) != 0 {
		t.Fatalf("suspended executions after refused runs: %+v, %v", l.Executions, err)
	}
	rep := benchJSON(t, url, "--op", "rotate", "--duration", "100ms", "--concurrency", "1", "--force", "--grace", "1h")
	wantSane(t, rep, bench.OpRotate)
	if rep.SeededByBench || current() == "prod" {
		t.Fatalf("with --force: report %+v, current %q", rep, current())
	}
}

// sign and verify on a keystore seeded by someone else need no --force.
func TestBenchReadsAForeignKeystore(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "prod.db")
	e, err := engine.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "prod", Secret: benchForeignSecret}); err != nil {
		t.Fatal(err)
	}
	rep := benchJSON(t, url, "--op", "verify", "--duration", "100ms", "--concurrency", "2")
	wantSane(t, rep, bench.OpVerify)
	if rep.SeededByBench {
		t.Fatal("reports seeding a seeded keystore")
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--op", "nap"},
		{"--op", "sign", "--concurrency", "0"},
		{"--op", "sign", "--duration", "0s"},
		{"--op", "sign", "--keystore-cache", "-1s"},
		{"--op", "sign", "--grace", "-1s"},
		{"--op", "sign", "--concurrency", "4097"},
		{"--op", "sign", "--duration", "10ms", "--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.prof")},
	} {
		if code, _, _ := runBench(t, "memory://", args...); code != ExitUsage {
			t.Errorf("ff bench %v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}

// On a store it seeded, bench removes the executions it suspended once the
// run is over: none is left suspended or claimable, and the report counts
// them.
func TestBenchRemovesWhatItCreated(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "scratch.db")
	for _, op := range []string{bench.OpSuspend, bench.OpDeliver, bench.OpCycle} {
		rep := benchJSON(t, url, "--op", op, "--concurrency", "3", "--duration", "150ms")
		wantSane(t, rep, op)
		if rep.LeftBehind != 0 || op != bench.OpCycle && rep.RemovedExecutions < 1 {
			t.Fatalf("%s: report %+v; want executions removed and none left", op, rep)
		}
	}
	e, err := engine.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	l, err := e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{Limit: 10})
	if err != nil || len(l.Executions) != 0 {
		t.Fatalf("suspended executions left: %+v, %v", l.Executions, err)
	}
	c, err := e.ClaimResumedExecution(context.Background(), contracts.ClaimArgs{WorkerID: "test"})
	if err != nil || c.Outcome != contracts.OutcomeNone {
		t.Fatalf("claimable execution left: %+v, %v", c, err)
	}
	_, out, _ := runBench(t, url, "--op", "suspend", "--concurrency", "1", "--duration", "50ms")
	if !strings.Contains(out, "executions removed after the run:") {
		t.Fatalf("the table does not report the cleanup:\n%s", out)
	}
}
