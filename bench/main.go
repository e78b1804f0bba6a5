// Command bench measures FlowFabric-Go against references on the same
// servers, and how its operations behave as suspended executions pile up.
// It is a module of its own, so that the library never depends on River or
// on the references' clients.
//
//	go run . compare [flags]   one table of ratios: ours / reference
//	go run . scale [flags]     p50 / p99 of every operation at N suspended executions
//
// Servers come from FF_TEST_POSTGRES_URL and FF_TEST_VALKEY_URL; when they
// are unset, bench starts its own with scripts/test-servers.sh and stops
// them on exit. Each run works in a database and a key prefix of its own,
// and removes them afterwards, also after ctrl-C. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: go run . compare [flags]   compare with references (make bench-compare)
       go run . scale [flags]     operations at N suspended executions (make bench-scale)
       go run . <command> -h      the command's flags
`

// run dispatches to a command and returns the exit code: 0 done, 1 failed,
// 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "compare":
		cfg, err := parseCompareFlags(args[1:], stderr)
		if err != nil {
			return usageError(err, stderr)
		}
		return runCompare(ctx, cfg, stdout, stderr)
	case "scale":
		cfg, err := parseScaleFlags(args[1:], stderr)
		if err != nil {
			return usageError(err, stderr)
		}
		if cfg.CPUProfile != "" {
			stop, err := startCPUProfile(cfg.CPUProfile)
			if err != nil {
				fmt.Fprintf(stderr, "bench: %v\n", err)
				return 1
			}
			defer stop()
		}
		return runScale(ctx, cfg, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "bench: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

// usageError reports a flag error (flag has printed it, and the usage)
// and returns the exit code: 0 for -h.
func usageError(err error, stderr io.Writer) int {
	if err == flag.ErrHelp {
		return 0
	}
	if _, ok := err.(flagError); ok {
		fmt.Fprintf(stderr, "bench: %v\n", err)
	}
	return 2
}

// flagError is a flag value refused after parsing.
type flagError string

func (e flagError) Error() string { return string(e) }

// parseCompareFlags reads compare's flags; BENCH_DURATION gives -duration's
// default.
func parseCompareFlags(args []string, stderr io.Writer) (compareConfig, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := compareConfig{River: defaultRiverSettings}
	duration, err := envDuration("BENCH_DURATION", 5*time.Second)
	if err != nil {
		return cfg, err
	}
	fs.DurationVar(&cfg.Duration, "duration", duration, "each measurement's `duration` (env BENCH_DURATION)")
	fs.IntVar(&cfg.SQLiteClients, "sqlite-clients", 8, "clients of the SQLite rows")
	fs.IntVar(&cfg.PostgresClients, "postgres-clients", 16, "clients of the Postgres rows (and pool connections, ours and pgbench's)")
	fs.IntVar(&cfg.ValkeyClients, "valkey-clients", 16, "clients of the Valkey rows")
	fs.IntVar(&cfg.River.MaxWorkers, "river-workers", cfg.River.MaxWorkers, "River: MaxWorkers of the queue")
	fs.DurationVar(&cfg.River.FetchCooldown, "river-fetch-cooldown", cfg.River.FetchCooldown, "River: FetchCooldown (River's default: 100ms)")
	fs.DurationVar(&cfg.River.FetchPoll, "river-fetch-poll", cfg.River.FetchPoll, "River: FetchPollInterval (River's default: 1s)")
	fs.IntVar(&cfg.River.InFlight, "river-in-flight", cfg.River.InFlight, "River: jobs inserted and not yet completed, at most")
	fs.StringVar(&cfg.Repo, "repo", "..", "the repository root (for scripts/test-servers.sh)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, flagError("compare takes no arguments: " + strings.Join(fs.Args(), " "))
	case cfg.Duration <= 0:
		return cfg, flagError("-duration must be positive")
	case cfg.SQLiteClients < 1 || cfg.PostgresClients < 1 || cfg.ValkeyClients < 1:
		return cfg, flagError("-*-clients must be at least 1")
	case cfg.River.MaxWorkers < 1 || cfg.River.InFlight < 1 || cfg.River.FetchCooldown < time.Millisecond || cfg.River.FetchPoll < time.Millisecond:
		return cfg, flagError("-river-workers and -river-in-flight must be at least 1, -river-fetch-cooldown and -river-fetch-poll at least 1ms")
	}
	return cfg, nil
}

// parseScaleFlags reads scale's flags; BENCH_N, BENCH_BACKENDS,
// BENCH_SAMPLES and BENCH_WAITPOINTS give the defaults of -n, -backends,
// -samples and -waitpoints.
func parseScaleFlags(args []string, stderr io.Writer) (scaleConfig, error) {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg scaleConfig
	samples, err := envInt("BENCH_SAMPLES", 1000)
	if err != nil {
		return cfg, err
	}
	waitpoints, err := envInt("BENCH_WAITPOINTS", 2)
	if err != nil {
		return cfg, err
	}
	ns := fs.String("n", envString("BENCH_N", "0,100000"), "the `counts` of suspended executions to measure at, comma-separated (env BENCH_N)")
	backends := fs.String("backends", envString("BENCH_BACKENDS", "sqlite,postgres,valkey"), "the `backends`, comma-separated (env BENCH_BACKENDS)")
	fs.IntVar(&cfg.Samples, "samples", samples, "operations timed per operation and N (env BENCH_SAMPLES)")
	fs.IntVar(&cfg.Waitpoints, "waitpoints", waitpoints, "waitpoints of every execution suspended, `K` from 1 to 16 (env BENCH_WAITPOINTS)")
	fs.IntVar(&cfg.Clients, "clients", 8, "clients of the timed operations")
	fs.IntVar(&cfg.FillClients, "fill-clients", 0, "clients filling the store and of the untimed steps (0: SQLite 1, Postgres 8, Valkey 32)")
	fs.IntVar(&cfg.FillBatch, "fill-batch", 100, "SQLite and Postgres: executions the fill suspends per transaction, through Engine.SuspendTx (1: one Engine.Suspend each)")
	fs.DurationVar(&cfg.FillTimeout, "fill-timeout", 0, "timeout of the filled executions (0: none; e.g. 168h puts a far timeout on each, older than the timed-out ones)")
	fs.IntVar(&cfg.SQLiteMaxN, "sqlite-max-n", 100_000, "SQLite: skip counts above this one")
	fs.Float64Var(&cfg.TimedOutShare, "timed-out-share", 0.05, "share of N added with a 1 ms timeout for the claim of timed-out executions")
	fs.DurationVar(&cfg.ReadBudget, "read-budget", 30*time.Second, "claim (idle), list_suspended and observe stop after this long, with the samples they have")
	fs.StringVar(&cfg.Repo, "repo", "..", "the repository root (for scripts/test-servers.sh)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of bench's own process (the Engine's client side) to `file`")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.Counts, err = parseCounts(*ns); err != nil {
		return cfg, err
	}
	if cfg.Backends, err = parseBackends(*backends); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, flagError("scale takes no arguments: " + strings.Join(fs.Args(), " "))
	case cfg.Samples < 1 || cfg.Clients < 1 || cfg.FillBatch < 1:
		return cfg, flagError("-samples, -clients and -fill-batch must be at least 1")
	case cfg.FillClients < 0:
		return cfg, flagError("-fill-clients must be 0 (the backend's default) or more")
	case cfg.Waitpoints < 1 || cfg.Waitpoints > 16:
		return cfg, flagError("-waitpoints must be from 1 to 16")
	case cfg.FillTimeout < 0 || cfg.FillTimeout > 0 && cfg.FillTimeout < time.Hour:
		return cfg, flagError("-fill-timeout must be 0 (none) or at least 1h, so that no filled execution times out during a run")
	case cfg.TimedOutShare < 0 || cfg.TimedOutShare > 1:
		return cfg, flagError("-timed-out-share must be from 0 to 1")
	case cfg.ReadBudget <= 0:
		return cfg, flagError("-read-budget must be positive")
	}
	return cfg, nil
}

// parseCounts reads "0,100000,1000000" into ascending, distinct counts.
func parseCounts(s string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, flagError(fmt.Sprintf("-n: %q is not a count (want e.g. 0,100000)", f))
		}
		counts = append(counts, n)
	}
	return sortedUnique(counts), nil
}

// parseBackends reads "sqlite,postgres" into known backend names, in the
// order given.
func parseBackends(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		switch b := strings.TrimSpace(f); b {
		case backendSQLite, backendPostgres, backendValkey:
			out = append(out, b)
		default:
			return nil, flagError(fmt.Sprintf("-backends: %q: want sqlite, postgres or valkey", b))
		}
	}
	return out, nil
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envDuration returns the duration of variable name, def when it is unset,
// and an error naming it when it is not a duration.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, flagError(fmt.Sprintf("%s=%q: not a duration (want e.g. 5s)", name, v))
	}
	return d, nil
}

// envInt returns the integer of variable name, def when it is unset, and
// an error naming it when it is not an integer.
func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, flagError(fmt.Sprintf("%s=%q: not an integer", name, v))
	}
	return n, nil
}

// startCPUProfile starts a CPU profile into path; stop ends it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// sortedUnique returns counts ascending, without repeats.
func sortedUnique(counts []int) []int {
	slices.Sort(counts)
	return slices.Compact(counts)
}
