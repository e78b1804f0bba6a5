package bench

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of a run. Its JSON form is what `ff bench --json`
// prints; WriteText renders it as a table.
type Report struct {
	Op              string           `json:"op"`
	Backend         string           `json:"backend"` // filled by the caller (see Run)
	Concurrency     int              `json:"concurrency"`
	DurationMs      int64            `json:"duration_ms"`
	KeystoreCacheMs int64            `json:"keystore_cache_ms"` // filled by the caller (see Run)
	SeededByBench   bool             `json:"seeded_by_bench"`   // the current kids are bench's
	Ops             int64            `json:"ops"`
	Errors          int64            `json:"errors"`
	ErrorCodes      map[string]int64 `json:"error_codes"` // failed operations by error code
	ForeignClaims   int64            `json:"foreign_claims"`
	OpsPerSec       float64          `json:"ops_per_sec"`
	LatencyUs       Latency          `json:"latency_us"`
	// StepsUs (cycle only) times each step of a cycle apart: suspend,
	// deliver_http, claim (until one of this run's), complete; for
	// cycle-worker suspend, deliver_http and to_handler (from the
	// delivery's answer to the worker's handler).
	StepsUs map[string]Latency `json:"steps_us,omitempty"`
	// RemovedExecutions counts the executions the run suspended and the
	// cleanup after it completed (suspend, deliver; cycle's unfinished ones).
	RemovedExecutions int64 `json:"removed_executions,omitempty"`
	// LeftBehind counts the executions the run suspended that the cleanup
	// could not complete (they did not resume, or it ran out of time).
	LeftBehind int64 `json:"left_behind,omitempty"`
}

// Latency holds latency percentiles in microseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// WriteText writes the report as a table: the setup, one row for the
// operation (and one per cycle step), then the error codes and the claims
// of other users' executions, when there are any.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "backend\t%s\nkeystore cache\t%s\nseeded by bench\t%v\n\n", r.Backend, time.Duration(r.KeystoreCacheMs)*time.Millisecond, r.SeededByBench)
	fmt.Fprintf(tw, "op\tclients\tduration\tops\terrors\tops/s\tp50\tp90\tp99\tmax\n")
	fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\n", r.Op, r.Concurrency,
		(time.Duration(r.DurationMs) * time.Millisecond).String(), r.Ops, r.Errors, r.OpsPerSec,
		fmtUs(r.LatencyUs.P50), fmtUs(r.LatencyUs.P90), fmtUs(r.LatencyUs.P99), fmtUs(r.LatencyUs.Max))
	for _, name := range stepOrder {
		if l, ok := r.StepsUs[name]; ok {
			fmt.Fprintf(tw, "  %s\t\t\t\t\t\t%s\t%s\t%s\t%s\n", name, fmtUs(l.P50), fmtUs(l.P90), fmtUs(l.P99), fmtUs(l.Max))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Errors > 0 {
		codes := make([]string, 0, len(r.ErrorCodes))
		for c, n := range r.ErrorCodes {
			codes = append(codes, fmt.Sprintf("%s=%d", c, n))
		}
		sort.Strings(codes)
		if _, err := fmt.Fprintf(w, "errors: %s\n", strings.Join(codes, " ")); err != nil {
			return err
		}
	}
	if r.ForeignClaims > 0 {
		if _, err := fmt.Fprintf(w, "claims of other users' executions (left to their lease): %d\n", r.ForeignClaims); err != nil {
			return err
		}
	}
	if r.RemovedExecutions > 0 {
		if _, err := fmt.Fprintf(w, "executions removed after the run: %d\n", r.RemovedExecutions); err != nil {
			return err
		}
	}
	if r.LeftBehind > 0 {
		if _, err := fmt.Fprintf(w, "executions left behind (the cleanup could not complete them): %d\n", r.LeftBehind); err != nil {
			return err
		}
	}
	return nil
}

// stepOrder lists every step a report may time, in the order of a cycle.
var stepOrder = []string{"suspend", "deliver_http", "claim", "complete", "to_handler"}

// fmtUs formats a latency in microseconds with a unit.
func fmtUs(us float64) string {
	switch {
	case us < 1000:
		return strconv.FormatFloat(us, 'f', 1, 64) + "µs"
	case us < 1e6:
		return strconv.FormatFloat(us/1e3, 'f', 2, 64) + "ms"
	default:
		return strconv.FormatFloat(us/1e6, 'f', 2, 64) + "s"
	}
}
