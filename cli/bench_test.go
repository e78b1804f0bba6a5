package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// runBench runs `ff --backend url bench args...` in-process (through the
// command itself, so the test does not depend on the command table).
func runBench(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	inv := &invocation{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb, backendURL: url}
	code := benchCommand.execute(inv, args)
	return code, out.String(), errb.String()
}

func benchJSON(t *testing.T, url string, args ...string) benchReport {
	t.Helper()
	code, out, errs := runBench(t, url, append(args, "--json")...)
	if code != ExitOK {
		t.Fatalf("ff bench %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("ff bench %v: not JSON: %v\n%s", args, err, out)
	}
	return rep
}

// wantSane checks a report of a successful run.
func wantSane(t *testing.T, rep benchReport, op string) {
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
	for _, op := range benchOps {
		t.Run(op, func(t *testing.T) {
			rep := benchJSON(t, "memory://", "--op", op, "--concurrency", "3", "--duration", "150ms")
			wantSane(t, rep, op)
			if !rep.SeededByBench || rep.Backend != "memory://" || rep.Concurrency != 3 {
				t.Fatalf("report %+v", rep)
			}
			if op != benchCycle {
				if rep.StepsUs != nil {
					t.Fatalf("%s: steps %+v, want none", op, rep.StepsUs)
				}
				return
			}
			// A cycle is timed step by step too.
			for _, step := range cycleSteps {
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
	for _, op := range []string{benchVerify, benchDeliver, benchCycle} {
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

// Given a keystore seeded by someone else, then rotate and cycle refuse
// without --force and leave the current kid alone; with --force rotate runs.
func TestBenchRefusesToChangeAKeystoreItDidNotSeed(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "prod.db")
	e, err := engine.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "prod", Secret: benchSecret()}); err != nil {
		t.Fatal(err)
	}
	current := func() string {
		l, err := e.ListKids(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return *l.Partitions[0].CurrentKid
	}
	for _, op := range []string{benchRotate, benchCycle} {
		code, _, errs := runBench(t, url, "--op", op, "--duration", "50ms")
		if code != ExitUsage || !strings.Contains(errs, "--force") {
			t.Fatalf("%s without --force: exit %d, stderr %q", op, code, errs)
		}
	}
	if got := current(); got != "prod" {
		t.Fatalf("current kid %q after refused runs, want prod", got)
	}
	rep := benchJSON(t, url, "--op", "rotate", "--duration", "100ms", "--concurrency", "1", "--force", "--grace", "1h")
	wantSane(t, rep, benchRotate)
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
	if _, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "prod", Secret: benchSecret()}); err != nil {
		t.Fatal(err)
	}
	rep := benchJSON(t, url, "--op", "verify", "--duration", "100ms", "--concurrency", "2")
	wantSane(t, rep, benchVerify)
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
	} {
		if code, _, _ := runBench(t, "memory://", args...); code != ExitUsage {
			t.Errorf("ff bench %v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}

// The histogram's quantiles are within its relative error of the truth.
func TestBenchHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 100_000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.01 || d > 0.01 {
			t.Errorf("q%.2f = %v, want %v ±1%%", c.q, got, c.want)
		}
	}
	for _, ns := range []uint64{0, 1, 127, 128, 129, 1000, 1 << 40, 1<<63 - 1} {
		i := bucketOf(ns)
		if top := bucketTop(i); top < ns || (i > 0 && bucketTop(i-1) >= ns) {
			t.Errorf("value %d in bucket %d (top %d, previous top %d)", ns, i, top, bucketTop(i-1))
		}
	}
}
