package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/flowfabric/flowfabric-go/cli/bench"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

// ff bench is the command over package bench, which holds the runner: the
// operations, the workers, the histogram and the report.
var benchCommand = command{
	name:    "bench",
	summary: "load-generate one operation against the backend and print throughput and latency percentiles (writes only to a store bench seeded, unless --force; removes the executions it suspended)",
	synopsis: "--op sign|verify|rotate|suspend|deliver|cycle [--concurrency 16] [--duration 10s] [--json]\n" +
		"       [--keystore-cache 1s] [--grace 0s] [--force] [--cpuprofile FILE]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		var f benchFlags
		fs.StringVar(&f.Op, "op", "", "the operation `OP`: "+strings.Join(bench.Ops(), ", ")+
			" (cycle = suspend, deliver over HTTP through a loopback ff serve, claim, complete)")
		fs.IntVar(&f.Concurrency, "concurrency", 16, "concurrent clients `N`")
		fs.DurationVar(&f.Duration, "duration", 10*time.Second, "how long to run")
		fs.BoolVar(&f.json, "json", false, "print the report as JSON instead of a table")
		fs.DurationVar(&f.cacheTTL, "keystore-cache", engine.DefaultKeystoreCacheTTL, "the engine's keystore cache TTL (0: off, every sign/verify reads the backend)")
		fs.DurationVar(&f.Grace, "grace", 0, "rotate: the grace of each rotation")
		fs.StringVar(&f.CPUProfile, "cpuprofile", "", "write a Go CPU profile of the measured run to `FILE` (read it with go tool pprof -top)")
		fs.BoolVar(&f.Force, "force", false, "run rotate, suspend, deliver or cycle although the current kid is not one bench installed. This changes production state: "+
			"rotate leaves a bench kid current (its secret exists only in the backend; rotate back to your own kid afterwards), "+
			"suspend, deliver and cycle suspend executions (bench completes them afterwards), "+
			"and the claims of cycle and of that cleanup may take other users' resumed executions, which bench leaves to their lease (30s)")
		return func(inv *invocation) int {
			if err := f.check(fs); err != "" {
				return inv.usagef("%s", err)
			}
			return inv.benchmark(f)
		}
	},
}

// benchFlags holds the flags of one bench run: the runner's Config and
// what the command itself does (open the engine, print).
type benchFlags struct {
	bench.Config
	json     bool
	cacheTTL time.Duration
}

// check returns a usage error, or "".
func (f benchFlags) check(fs *flag.FlagSet) string {
	switch {
	case missing(fs, "op") != "":
		return "missing --op"
	case !slices.Contains(bench.Ops(), f.Op):
		return fmt.Sprintf("--op %q: want one of %s", printable(f.Op), strings.Join(bench.Ops(), ", "))
	case f.Concurrency < 1 || f.Concurrency > 4096:
		return "--concurrency: must be 1-4096"
	case f.Duration <= 0:
		return "--duration: must be positive"
	case f.cacheTTL < 0 || f.Grace < 0:
		return "--keystore-cache and --grace: must not be negative"
	}
	return ""
}

// benchmark opens the backend, runs the benchmark and prints the report.
// It exits 1 when any operation failed.
func (inv *invocation) benchmark(f benchFlags) int {
	e, err := inv.open(engine.WithKeystoreCache(f.cacheTTL))
	if err != nil {
		return inv.print(nil, err)
	}
	defer e.Close()
	cfg := f.Config
	// A store that is neither persistent nor shared (memory://) ends with
	// this process: removing the run's executions from it is wasted time.
	caps := e.Capabilities()
	cfg.SkipCleanup = !caps.Persistent && !caps.SharedAcrossProcesses
	if cfg.Op == bench.OpCycle {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg.Handler = httpapi.New(e, httpapi.Options{Logger: quiet})
	}
	rep, err := bench.Run(inv.ctx, e, cfg)
	var profErr *bench.ProfileError
	switch {
	case errors.Is(err, bench.ErrForeignKeystore):
		return inv.usagef("--op %s changes state other users of this store see (rotate: the current kid; suspend, deliver, cycle: executions, "+
			"and claims take the oldest claimable execution), and this keystore was not seeded by bench: point bench at a scratch store, or pass --force to run it anyway", cfg.Op)
	case errors.As(err, &profErr):
		return inv.usagef("--cpuprofile: %v", profErr.Err)
	case err != nil:
		return inv.print(nil, err)
	}
	rep.Backend = benchBackendName(inv.backendURL)
	rep.KeystoreCacheMs = f.cacheTTL.Milliseconds()
	if f.json {
		inv.write(rep)
	} else if err := rep.WriteText(inv.stdout); err != nil {
		fmt.Fprintf(inv.stderr, "ff %s: writing the result: %v\n", inv.cmd, err)
	}
	if rep.Errors > 0 {
		return ExitContract
	}
	return ExitOK
}

// benchBackendName is the URL for the report, without its secrets.
func benchBackendName(rawURL string) string { return engine.RedactURL(rawURL) }
