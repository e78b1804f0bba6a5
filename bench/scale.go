package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// scaleConfig is the settings of `bench scale`.
type scaleConfig struct {
	Counts        []int         // N: suspended executions to measure at, ascending
	Backends      []string      // backendSQLite, backendPostgres, backendValkey
	Waitpoints    int           // K: waitpoints of every execution suspended
	Samples       int           // timed operations per operation, N and pass
	Clients       int           // clients of the timed operations
	FillClients   int           // clients of the fill and the untimed steps; 0: the backend's default
	FillBatch     int           // executions per transaction of the fill (Postgres, SQLite); 1: one Engine.Suspend each
	FillTimeout   time.Duration // timeout of the filled executions; 0: none
	SQLiteMaxN    int           // SQLite skips the counts above it
	TimedOutShare float64       // of N, added with a 1 ms timeout for claim (timed out)
	ReadBudget    time.Duration // claim (idle), list_suspended and observe stop after it
	Repo          string        // the repository root, for scripts/test-servers.sh
	CPUProfile    string        // file of bench's CPU profile; "": none
}

// Default fill clients per backend: SQLite has one writer, so one client
// filling in batches keeps it busy; Postgres' batches are CPU-bound on the
// server; a Valkey script call is short, so more clients keep the server
// fed through the round trips.
var defaultFillClients = map[string]int{backendSQLite: 1, backendPostgres: 8, backendValkey: 32}

// fillRow is one line of the fill and size table.
type fillRow struct {
	Backend, Pass string
	N             int
	Added         int           // executions suspended to reach N
	Took          time.Duration // to suspend them
	Bytes         int64         // our data's growth over the fill
	Slow          *slowEntries  // Valkey: the slowlog entries of the fill
	Load          string        // the 1-minute load average before and after the fill
	Err           error         // the fill or the size failed, or N was skipped
}

// latencyRow is one line of the latency table: one pass at one N.
type latencyRow struct {
	Backend, Pass string
	N             int
	Result        suiteResult
	Load          string // the 1-minute load average before and after the pass
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
	fmt.Fprintf(stdout, "## FlowFabric-Go at N suspended executions, %s each\n\n### Fill and size\n\n", waitpointsLabel(cfg.Waitpoints))
	writeFillTable(stdout, fills)
	fmt.Fprintf(stdout, "\n### Latency, p50 / p99 (%d operations each, %d clients, %s per execution)\n\n", cfg.Samples, cfg.Clients, waitpointsLabel(cfg.Waitpoints))
	writeLatencyTable(stdout, lats, cfg.Samples)
	fmt.Fprintf(stdout, "\n%s\n", scaleMethod(cfg))
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

// scaleMethod is the paragraph under the tables: how the fill and each
// pass were made.
func scaleMethod(cfg scaleConfig) string {
	timeout := "no timeout"
	if cfg.FillTimeout > 0 {
		timeout = "a timeout of " + cfg.FillTimeout.String()
	}
	clients := "SQLite 1, Postgres 8, Valkey 32 clients"
	if cfg.FillClients > 0 {
		clients = fmt.Sprintf("%d clients", cfg.FillClients)
	}
	fill := fmt.Sprintf("%d executions a transaction through Engine.SuspendTx on SQLite and Postgres, one Engine.Suspend each on Valkey", cfg.FillBatch)
	if cfg.FillBatch <= 1 {
		fill = "one Engine.Suspend each"
	}
	return fmt.Sprintf("The fill suspends executions on %s (condition any) with %s, %s, from %s; bytes per suspended execution are the store's growth over the fill "+
		"(measured right after it, before any pass: the timed-out executions, and what completed executions of earlier passes leave, are not in it) over the executions added. "+
		"Each pass suspends %d new executions of the same shape, claims while none is claimable (idle), lists the first page, delivers a signal to one waitpoint of each new one "+
		"(which resumes it), observes it, claims and completes them; then adds max(%g × N, %d) executions of the same shape with a 1 ms timeout, "+
		"times claims of %d of them (timed out), and claims and completes the rest untimed, so that the next N starts from N (not after the last N: the store is removed). "+
		"claim (idle), list_suspended and observe start no operation after %s (n= says how many ran when fewer). "+
		"Valkey's slowlog is read around every timed operation, the fill, and the untimed steps of each pass. "+
		"load is the 1-minute load average before → after the fill or the pass: compare cells measured at similar loads.",
		waitpointsLabel(cfg.Waitpoints), timeout, fill, clients, cfg.Samples, cfg.TimedOutShare, cfg.Samples, cfg.Samples, cfg.ReadBudget)
}

// waitpointsLabel is "1 waitpoint" or "2 waitpoints".
func waitpointsLabel(k int) string {
	if k == 1 {
		return "1 waitpoint"
	}
	return fmt.Sprintf("%d waitpoints", k)
}

// scaleBackend opens the fresh stores of backend (one per pass) and
// measures them at every N. The stores are removed before it returns.
func scaleBackend(ctx context.Context, cfg scaleConfig, backend string, srv servers, id string, m *machine, stderr io.Writer) ([]fillRow, []latencyRow, string) {
	var sc cleanups
	defer sc.run(ctx, stderr)
	stores, err := openScaleStores(ctx, cfg, backend, srv, id, m, &sc)
	for _, st := range stores {
		if err == nil {
			err = seedKeystore(ctx, st.e)
		}
	}
	if err != nil {
		return []fillRow{{Backend: backend, Pass: "", Err: err}}, nil, ""
	}
	var fills []fillRow
	var lats []latencyRow
	shape := suspendShape{waitpoints: cfg.Waitpoints, timeoutMs: cfg.FillTimeout.Milliseconds()}
	for i, n := range cfg.Counts {
		if backend == backendSQLite && n > cfg.SQLiteMaxN {
			fills = append(fills, fillRow{Backend: backend, Pass: passOnly, N: n, Err: fmt.Errorf("%w: above -sqlite-max-n %d", errSkipped, cfg.SQLiteMaxN)})
			continue
		}
		for j, st := range stores {
			f := fillTo(ctx, cfg, st, backend, n, shape, stderr)
			fills = append(fills, f)
			if f.Err != nil {
				return fills, lats, stores[0].note
			}
			lats = append(lats, measurePass(ctx, cfg, st, backend, n, laterN(cfg, backend, i), fmt.Sprintf("%s-%d-%d", id, i, j), stderr))
			if ctx.Err() != nil {
				return fills, lats, stores[0].note
			}
		}
	}
	return fills, lats, stores[0].note
}

// laterN tells whether backend is measured at a count after cfg.Counts[i],
// so that the pass at it must leave the store at its N.
func laterN(cfg scaleConfig, backend string, i int) bool {
	for _, n := range cfg.Counts[i+1:] {
		if backend != backendSQLite || n <= cfg.SQLiteMaxN {
			return true
		}
	}
	return false
}

// fillClients is the number of clients of st's fill and untimed steps.
func fillClients(cfg scaleConfig, st *scaleStore) int {
	if cfg.FillClients > 0 {
		return cfg.FillClients
	}
	return st.fillClients
}

// openScaleStores opens the fresh stores of backend for this run, one per
// pass.
func openScaleStores(ctx context.Context, cfg scaleConfig, backend string, srv servers, id string, m *machine, cl *cleanups) ([]*scaleStore, error) {
	clients := cfg.FillClients
	if clients == 0 {
		clients = defaultFillClients[backend]
	}
	switch backend {
	case backendSQLite:
		st, err := openScaleSQLite(ctx, cl)
		return []*scaleStore{st}, err
	case backendPostgres:
		if v, err := postgresVersion(ctx, srv.Postgres); err == nil {
			m.Servers = append(m.Servers, v)
		}
		return openScalePostgres(ctx, srv.Postgres, "ffbench_"+id+"_scale", max(clients, cfg.Clients), cl)
	default:
		st, err := openScaleValkey(ctx, srv.Valkey, srv.ValkeyOwned, "ffbench-"+id+":", clients, cl)
		if err == nil {
			if v, err := valkeyVersion(ctx, st.slowlog.c); err == nil {
				m.Servers = append(m.Servers, v)
			}
		}
		return []*scaleStore{st}, err
	}
}

// fillTo suspends executions into st up to n (from what earlier N left)
// and measures our data's growth over the fill, and on Valkey the slowlog
// entries it left.
func fillTo(ctx context.Context, cfg scaleConfig, st *scaleStore, backend string, n int, shape suspendShape, stderr io.Writer) fillRow {
	f := fillRow{Backend: backend, Pass: st.pass, N: n, Added: n - st.filled}
	if f.Added <= 0 {
		return f
	}
	fl := filler{st: st, clients: fillClients(cfg, st), batch: cfg.FillBatch, stderr: stderr, label: st.label(backend)}
	how := "one Engine.Suspend each"
	if st.beginTx != nil && cfg.FillBatch > 1 {
		how = fmt.Sprintf("%d a transaction", cfg.FillBatch)
	}
	progress(stderr, "%s: filling up to N=%d (%d to add, %d clients, %s)", fl.label, n, f.Added, fl.clients, how)
	before, err := st.size(ctx)
	if err != nil {
		f.Err = fmt.Errorf("measuring the size: %w", err)
		return f
	}
	if st.slowlog != nil {
		if f.Err = st.slowlog.mark(ctx); f.Err != nil {
			return f
		}
	}
	if st.slowlog != nil {
		fl.slow = &slowEntries{}
		f.Slow = fl.slow
	}
	load0 := loadAverage1()
	t0 := time.Now()
	f.Err = fl.fill(ctx, "fill-", st.filled, n, shape)
	f.Took = time.Since(t0)
	f.Load = load0 + " → " + loadAverage1()
	if f.Err != nil {
		return f
	}
	st.filled = n
	after, err := st.size(ctx)
	if err != nil {
		f.Err = fmt.Errorf("measuring the size: %w", err)
		return f
	}
	f.Bytes = after - before
	return f
}

// measurePass runs st's pass of the suite at n; restore says another N
// follows, so that the pass must leave the store at n.
func measurePass(ctx context.Context, cfg scaleConfig, st *scaleStore, backend string, n int, restore bool, tag string, stderr io.Writer) latencyRow {
	row := latencyRow{Backend: backend, Pass: st.pass, N: n}
	label := st.label(backend)
	progress(stderr, "%s: N=%d: timing every operation", label, n)
	if st.before != nil {
		if row.Err = st.before(ctx); row.Err != nil {
			return row
		}
	}
	if st.settle != nil {
		if row.Err = st.settle(ctx); row.Err != nil {
			return row
		}
	}
	clients := max(fillClients(cfg, st), cfg.Clients)
	s := &suite{e: st.e, clients: cfg.Clients, fillClients: clients, samples: cfg.Samples, readBudget: cfg.ReadBudget, tag: tag, slowlog: st.slowlog,
		shape: suspendShape{waitpoints: cfg.Waitpoints}, stderr: stderr, label: label,
		fill: filler{st: st, clients: fillClients(cfg, st), batch: cfg.FillBatch, stderr: stderr, label: label + ": timed-out executions"}}
	load0 := loadAverage1()
	row.Result, row.Err = s.run(ctx, timedOutCount(cfg, n), restore)
	row.Load = load0 + " → " + loadAverage1()
	return row
}

// timedOutCount is the number of executions a pass at n adds with a 1 ms
// timeout: the share of n, at least the samples its claims time.
func timedOutCount(cfg scaleConfig, n int) int {
	return max(int(math.Round(cfg.TimedOutShare*float64(n))), cfg.Samples)
}

// writeFillTable writes the fill and size table.
func writeFillTable(w io.Writer, rows []fillRow) {
	var b strings.Builder
	b.WriteString("| backend | pass | N | added | fill time | fill rate | bytes per suspended execution | slowlog > 5 ms (fill) | load |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | | | | | |\n", r.Backend, r.Pass, formatCount(r.N), cell(r.Err.Error()))
			continue
		}
		load := r.Load
		if load == "" {
			load = "—"
		}
		rate, perExec, slow := "—", "—", "—"
		if r.Added > 0 && r.Took > 0 {
			rate = formatRate(float64(r.Added)/r.Took.Seconds()) + " /s"
		}
		if r.Added > 0 {
			perExec = formatRate(float64(r.Bytes) / float64(r.Added))
		}
		if r.Slow != nil {
			slow = r.Slow.String()
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Backend, r.Pass, formatCount(r.N), formatCount(r.Added), r.Took.Round(100*time.Millisecond), rate, perExec, cell(slow), load)
	}
	_, _ = io.WriteString(w, b.String())
}

// writeLatencyTable writes one row per backend, N and pass, one column per
// operation, and the slowlog column (Valkey only). An operation that ran
// fewer than samples times says how many.
func writeLatencyTable(w io.Writer, rows []latencyRow, samples int) {
	var b strings.Builder
	b.WriteString("| backend | N | pass | " + strings.Join(scaleOps, " | ") + " | slowlog > 5 ms | load |\n")
	b.WriteString("|---|---|---|" + strings.Repeat("---|", len(scaleOps)+2) + "\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |", r.Backend, formatCount(r.N), r.Pass)
		for _, op := range scaleOps {
			res, ok := r.Result.Latency[op]
			b.WriteString(" " + cell(formatPercentiles(res, ok, samples)) + " |")
		}
		load := r.Load
		if load == "" {
			load = "—"
		}
		b.WriteString(" " + cell(formatSlow(r.Result.Slow)) + " | " + load + " |\n")
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | %s | %s | failed: %s |%s\n", r.Backend, formatCount(r.N), r.Pass, cell(r.Err.Error()), strings.Repeat(" |", len(scaleOps)+1))
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
	for _, op := range append(scaleOps[:len(scaleOps):len(scaleOps)], opUntimed) {
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
