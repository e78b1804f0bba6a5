package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// scaleConfig is the settings of `bench scale`.
type scaleConfig struct {
	Counts        []int         // N: suspended executions to measure at, ascending
	Backends      []string      // backendSQLite, backendPostgres, backendValkey
	Samples       int           // timed operations per operation, N and pass
	Clients       int           // clients of the timed operations
	FillClients   int           // clients of the fill and the untimed steps
	SQLiteMaxN    int           // SQLite skips the counts above it
	TimedOutShare float64       // of N, added with a 1 ms timeout for claim (timed out)
	ReadBudget    time.Duration // claim (idle), list_suspended and observe stop after it
	Repo          string        // the repository root, for scripts/test-servers.sh
}

// fillRow is one line of the fill and size table.
type fillRow struct {
	Backend string
	N       int
	Added   int           // executions suspended to reach N
	Took    time.Duration // to suspend them
	Bytes   int64         // our data's size at N, less its size when empty
	Err     error         // the fill or the size failed, or N was skipped
}

// latencyRow is one line of the latency table: one pass at one N.
type latencyRow struct {
	Backend, Pass string
	N             int
	Result        suiteResult
	Err           error
}

// runScale fills each backend's store up to every N in turn and times
// every operation there, then prints the fill and size table and the
// latency table. It returns the exit code: 1 when anything failed.
func runScale(ctx context.Context, cfg scaleConfig, stdout, stderr io.Writer) int {
	m := newMachine()
	var cl cleanups
	srv, err := resolveServers(cfg.Repo, slices.Contains(cfg.Backends, backendPostgres), slices.Contains(cfg.Backends, backendValkey), &cl, stderr)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		cl.run(ctx, stderr)
		return 1
	}
	id := runID()
	var fills []fillRow
	var lats []latencyRow
	var notes []string
	for _, b := range cfg.Backends {
		f, l, note := scaleBackend(ctx, cfg, b, srv, id, &m, stderr)
		fills, lats = append(fills, f...), append(lats, l...)
		if note != "" {
			notes = append(notes, note)
		}
	}
	m.LoadAfter = loadAverage()
	failed := cl.run(ctx, stderr) > 0 || ctx.Err() != nil
	fmt.Fprintf(stdout, "## FlowFabric-Go at N suspended executions\n\n### Fill and size\n\n")
	writeFillTable(stdout, fills)
	fmt.Fprintf(stdout, "\n### Latency, p50 / p99 (%d operations each, %d clients)\n\n", cfg.Samples, cfg.Clients)
	writeLatencyTable(stdout, lats, cfg.Samples)
	fmt.Fprintf(stdout, "\nThe fill suspends executions without timeout from %d clients. Each pass suspends %d new executions, claims while none is claimable (idle), "+
		"lists the first page, delivers a signal to each new one, observes it, claims and completes them; then adds max(%g × N, %d) executions with a 1 ms timeout "+
		"and times claims of %d of them (timed out), and claims and completes the rest untimed, so that every pass starts at N. "+
		"claim (idle), list_suspended and observe start no operation after %s (n= says how many ran when fewer).\n",
		cfg.FillClients, cfg.Samples, cfg.TimedOutShare, cfg.Samples, cfg.Samples, cfg.ReadBudget)
	for _, n := range notes {
		fmt.Fprintf(stdout, "%s\n", n)
	}
	fmt.Fprintf(stdout, "\n%s\n", m)
	for _, f := range fills {
		failed = failed || f.Err != nil && !errors.Is(f.Err, errSkipped)
	}
	for _, l := range lats {
		failed = failed || l.Err != nil
	}
	if failed {
		return 1
	}
	return 0
}

// errSkipped marks an N a backend is not measured at.
var errSkipped = errors.New("skipped")

// scaleBackend opens a fresh store of backend and measures it at every N.
// The store is removed before it returns.
func scaleBackend(ctx context.Context, cfg scaleConfig, backend string, srv servers, id string, m *machine, stderr io.Writer) ([]fillRow, []latencyRow, string) {
	var sc cleanups
	defer sc.run(ctx, stderr)
	st, err := openScaleStore(ctx, cfg, backend, srv, id, m, &sc)
	if err == nil {
		err = seedKeystore(ctx, st.e)
	}
	var empty int64
	if err == nil {
		empty, err = st.size(ctx)
	}
	if err != nil {
		return []fillRow{{Backend: backend, Err: err}}, nil, ""
	}
	var fills []fillRow
	var lats []latencyRow
	filled := 0
	for i, n := range cfg.Counts {
		if backend == backendSQLite && n > cfg.SQLiteMaxN {
			fills = append(fills, fillRow{Backend: backend, N: n, Err: fmt.Errorf("%w: above -sqlite-max-n %d", errSkipped, cfg.SQLiteMaxN)})
			continue
		}
		f := fillTo(ctx, st, backend, filled, n, cfg.FillClients, empty, stderr)
		fills = append(fills, f)
		if f.Err != nil {
			break
		}
		filled = n
		for j, p := range st.passes {
			lats = append(lats, measurePass(ctx, cfg, st, backend, p, n, fmt.Sprintf("%s-%d-%d", id, i, j), stderr))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fills, lats, st.note
}

// openScaleStore opens the fresh store of backend for this run.
func openScaleStore(ctx context.Context, cfg scaleConfig, backend string, srv servers, id string, m *machine, cl *cleanups) (*scaleStore, error) {
	switch backend {
	case backendSQLite:
		return openScaleSQLite(ctx, cl)
	case backendPostgres:
		if v, err := postgresVersion(ctx, srv.Postgres); err == nil {
			m.Servers = append(m.Servers, v)
		}
		return openScalePostgres(ctx, srv.Postgres, "ffbench_"+id+"_scale", cfg.FillClients, cl)
	default:
		st, err := openScaleValkey(ctx, srv.Valkey, srv.ValkeyOwned, "ffbench-"+id+":", cl)
		if err == nil {
			if v, err := valkeyVersion(ctx, st.slowlog.c); err == nil {
				m.Servers = append(m.Servers, v)
			}
		}
		return st, err
	}
}

// fillTo suspends executions from filled up to n and measures the size of
// our data then.
func fillTo(ctx context.Context, st *scaleStore, backend string, filled, n, clients int, empty int64, stderr io.Writer) fillRow {
	f := fillRow{Backend: backend, N: n, Added: n - filled}
	progress(stderr, "%s: filling up to N=%d (%d to add, %d clients)", backend, n, f.Added, clients)
	t0 := time.Now()
	if f.Err = suspendMany(ctx, st.e, "fill-", filled, n, clients, 0); f.Err != nil {
		return f
	}
	f.Took = time.Since(t0)
	size, err := st.size(ctx)
	if err != nil {
		f.Err = fmt.Errorf("measuring the size: %w", err)
		return f
	}
	f.Bytes = size - empty
	return f
}

// measurePass runs one pass of the suite at n.
func measurePass(ctx context.Context, cfg scaleConfig, st *scaleStore, backend string, p scalePass, n int, tag string, stderr io.Writer) latencyRow {
	row := latencyRow{Backend: backend, Pass: p.name, N: n}
	progress(stderr, "%s: N=%d%s: timing every operation", backend, n, passLabel(p.name))
	if p.before != nil {
		if row.Err = p.before(ctx); row.Err != nil {
			return row
		}
	}
	s := &suite{e: st.e, clients: cfg.Clients, fillClients: cfg.FillClients, samples: cfg.Samples, readBudget: cfg.ReadBudget, tag: tag, slowlog: st.slowlog}
	row.Result, row.Err = s.run(ctx, max(int(cfg.TimedOutShare*float64(n)), cfg.Samples))
	return row
}

// passLabel is ", <pass>" for the progress line, "" for onePass.
func passLabel(name string) string {
	if name == onePass[0].name {
		return ""
	}
	return ", " + name
}

// writeFillTable writes the fill and size table.
func writeFillTable(w io.Writer, rows []fillRow) {
	var b strings.Builder
	b.WriteString("| backend | N | added | fill time | fill rate | bytes per suspended execution |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | %s | %s | | | |\n", r.Backend, formatCount(r.N), cell(r.Err.Error()))
			continue
		}
		rate, perExec := "—", "—"
		if r.Added > 0 && r.Took > 0 {
			rate = formatRate(float64(r.Added)/r.Took.Seconds()) + " /s"
		}
		if r.N > 0 {
			perExec = formatRate(float64(r.Bytes) / float64(r.N))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Backend, formatCount(r.N), formatCount(r.Added), r.Took.Round(100*time.Millisecond), rate, perExec)
	}
	_, _ = io.WriteString(w, b.String())
}

// writeLatencyTable writes one row per backend, N and pass, one column per
// operation, and the slowlog column (Valkey only). An operation that ran
// fewer than samples times says how many.
func writeLatencyTable(w io.Writer, rows []latencyRow, samples int) {
	var b strings.Builder
	b.WriteString("| backend | N | pass | " + strings.Join(scaleOps, " | ") + " | slowlog > 5 ms |\n")
	b.WriteString("|---|---|---|" + strings.Repeat("---|", len(scaleOps)+1) + "\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |", r.Backend, formatCount(r.N), r.Pass)
		for _, op := range scaleOps {
			res, ok := r.Result.Latency[op]
			b.WriteString(" " + cell(formatPercentiles(res, ok, samples)) + " |")
		}
		b.WriteString(" " + cell(formatSlow(r.Result.Slow)) + " |\n")
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | %s | %s | failed: %s |%s\n", r.Backend, formatCount(r.N), r.Pass, cell(r.Err.Error()), strings.Repeat(" |", len(scaleOps)))
		}
	}
	_, _ = io.WriteString(w, b.String())
}

// formatPercentiles renders "1.20 ms / 3.40 ms", with the failures, and
// with the number of operations when fewer than samples ran.
func formatPercentiles(r result, ok bool, samples int) string {
	if !ok {
		return "—"
	}
	if r.Ops == 0 && r.FirstErr != nil {
		return "failed: " + r.FirstErr.Error()
	}
	s := formatLatency(r.P50) + " / " + formatLatency(r.P99)
	if n := r.Ops + r.Errors; n < int64(samples) {
		s += fmt.Sprintf(" (n=%d)", n)
	}
	if r.Errors > 0 {
		s += fmt.Sprintf(" (errors: %d, first: %v)", r.Errors, r.FirstErr)
	}
	return s
}

// formatSlow renders the slowlog entries of a pass: "—" where it was not
// read, "0", or each operation's entries.
func formatSlow(slow map[string]slowEntries) string {
	if len(slow) == 0 {
		return "—"
	}
	var parts []string
	for _, op := range scaleOps {
		if s, ok := slow[op]; ok && (s.Count > 0 || s.Partial) {
			parts = append(parts, op+": "+s.String())
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "; ")
}

// formatCount renders an integer with thousands separators.
func formatCount(n int) string {
	if n < 100 {
		return fmt.Sprint(n)
	}
	return formatRate(float64(n))
}
