package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

// Bench operations. rotate and cycle change state that other users of the
// store see (the current kid; claims take the oldest claimable execution),
// so bench runs them only on a keystore it seeded itself, unless --force.
const (
	benchSign    = "sign"
	benchVerify  = "verify"
	benchRotate  = "rotate"
	benchSuspend = "suspend"
	benchDeliver = "deliver"
	benchCycle   = "cycle"
)

var benchOps = []string{benchSign, benchVerify, benchRotate, benchSuspend, benchDeliver, benchCycle}

// benchMessageBytes is the size of the message sign and verify use, about
// a waitpoint message's.
const benchMessageBytes = 80

var benchCommand = command{
	name:    "bench",
	summary: "load-generate one operation against the backend and print throughput and latency percentiles",
	synopsis: "--op sign|verify|rotate|suspend|deliver|cycle [--concurrency 16] [--duration 10s] [--json]\n" +
		"       [--keystore-cache 1s] [--grace 0s] [--force] [--cpuprofile FILE]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		var cfg benchConfig
		fs.StringVar(&cfg.op, "op", "", "the operation `OP`: "+strings.Join(benchOps, ", ")+
			" (cycle = suspend, deliver over HTTP through a loopback ff serve, claim, complete)")
		fs.IntVar(&cfg.concurrency, "concurrency", 16, "concurrent clients `N`")
		fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to run")
		fs.BoolVar(&cfg.json, "json", false, "print the report as JSON instead of a table")
		fs.DurationVar(&cfg.cacheTTL, "keystore-cache", engine.DefaultKeystoreCacheTTL, "the engine's keystore cache TTL (0: off, every sign/verify reads the backend)")
		fs.DurationVar(&cfg.grace, "grace", 0, "rotate: the grace of each rotation")
		fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the measured run to `FILE` (read it with go tool pprof -top)")
		fs.BoolVar(&cfg.force, "force", false, "run rotate or cycle although the current kid is not one bench installed. This changes production state: "+
			"rotate leaves a bench kid current (its secret exists only in the backend; rotate back to your own kid afterwards), "+
			"and cycle's claims may take other users' resumed executions, which bench leaves to their lease (30s)")
		return func(inv *invocation) int {
			if err := cfg.check(fs); err != "" {
				return inv.usagef("%s", err)
			}
			return inv.bench(cfg)
		}
	},
}

// benchConfig holds the flags of one bench run.
type benchConfig struct {
	op          string
	concurrency int
	duration    time.Duration
	json        bool
	cacheTTL    time.Duration
	grace       time.Duration
	force       bool
	cpuProfile  string
}

// check returns a usage error, or "".
func (c benchConfig) check(fs *flag.FlagSet) string {
	switch {
	case missing(fs, "op") != "":
		return "missing --op"
	case !contains(benchOps, c.op):
		return fmt.Sprintf("--op %q: want one of %s", printable(c.op), strings.Join(benchOps, ", "))
	case c.concurrency < 1 || c.concurrency > 4096:
		return "--concurrency: must be 1-4096"
	case c.duration <= 0:
		return "--duration: must be positive"
	case c.cacheTTL < 0 || c.grace < 0:
		return "--keystore-cache and --grace: must not be negative"
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// bench opens the backend, prepares the keystore and the operation, runs it
// from concurrency workers for the duration and prints the report. It exits
// 1 when any operation failed.
func (inv *invocation) bench(cfg benchConfig) int {
	e, err := engine.Open(inv.ctx, inv.backendURL, engine.WithKeystoreCache(cfg.cacheTTL))
	if err != nil {
		return inv.print(nil, err)
	}
	defer e.Close()
	seeded, err := benchEnsureKeystore(inv.ctx, e)
	if err != nil {
		return inv.print(nil, err)
	}
	if (cfg.op == benchRotate || cfg.op == benchCycle) && !seeded && !cfg.force {
		return inv.usagef("--op %s changes state other users of this store see (rotate: the current kid; cycle: claims take the oldest claimable execution), and this keystore was not seeded by bench: pass --force to run it anyway", cfg.op)
	}
	r := &benchRun{cfg: cfg, e: e, id: benchRunID(), seeded: seeded}
	op, cleanup, err := r.prepare(inv.ctx)
	if err != nil {
		return inv.print(nil, err)
	}
	defer cleanup()
	stop, err := startCPUProfile(cfg.cpuProfile)
	if err != nil {
		return inv.usagef("--cpuprofile: %v", err)
	}
	rep := r.run(inv.ctx, op)
	stop()
	rep.Backend = benchBackendName(inv.backendURL)
	inv.printBench(rep, cfg.json)
	if rep.Errors > 0 {
		return ExitContract
	}
	return ExitOK
}

// benchBackendName is the URL for the report, without a password.
func benchBackendName(rawURL string) string {
	name := redacted(rawURL)
	if strings.HasSuffix(name, ":") && strings.HasPrefix(rawURL, name+"//") && !strings.Contains(rawURL, "@") {
		return rawURL // memory:// (Redacted drops the empty authority)
	}
	return name
}

// benchKidPrefix starts every kid bench installs.
const benchKidPrefix = "ff-bench-"

// startCPUProfile starts a CPU profile into path ("" none) and returns
// the function that stops it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// benchEnsureKeystore seeds a fresh kid when no partition has a current kid
// and reports whether the keystore is bench's own: seeded now, or every
// partition's current kid is one that bench installed in an earlier run.
func benchEnsureKeystore(ctx context.Context, e *engine.Engine) (bool, error) {
	kids, err := e.ListKids(ctx)
	if err != nil {
		return false, err
	}
	empty, ours := true, true
	for _, p := range kids.Partitions {
		if p.CurrentKid != nil {
			empty = false
			ours = ours && strings.HasPrefix(*p.CurrentKid, benchKidPrefix)
		}
	}
	if !empty {
		return ours, nil
	}
	out, err := e.Seed(ctx, contracts.SeedArgs{Kid: benchKidPrefix + benchRunID(), Secret: benchSecret()})
	if err != nil {
		return false, err
	}
	return strings.HasPrefix(out.CurrentKid, benchKidPrefix), nil
}

// benchRunID is 8 random hex digits naming a run's kids and executions.
func benchRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// benchSecret is 32 random bytes that nobody sees.
func benchSecret() contracts.Secret {
	b := make([]byte, GeneratedSecretBytes)
	_, _ = rand.Read(b)
	return b
}

// benchOp performs one operation of worker w; i counts the worker's
// operations from 0.
type benchOp func(ctx context.Context, w, i int) error

// benchRun is one bench run's state.
type benchRun struct {
	cfg    benchConfig
	e      *engine.Engine
	id     string // unique per run: kids and execution ids carry it
	seeded bool

	foreign atomic.Int64 // cycle: claims that returned another user's execution
	stepsMu sync.Mutex
	steps   []histogram // cycle: the latency of each of cycleSteps, all workers
}

// cycleSteps name the steps of a cycle, timed apart in the report.
var cycleSteps = []string{"suspend", "deliver_http", "claim", "complete"}

// step records the latency of cycle step k since t0 and returns the time
// now. One set of histograms for all workers: a histogram is 58 KB, too
// much to keep four per worker at 4096 workers, and the lock is cheap next
// to a step (a script call or an HTTP request).
func (r *benchRun) step(k int, t0 time.Time) time.Time {
	now := time.Now()
	r.stepsMu.Lock()
	r.steps[k].add(now.Sub(t0))
	r.stepsMu.Unlock()
	return now
}

// prepare returns the operation to measure and what to do afterwards.
func (r *benchRun) prepare(ctx context.Context) (benchOp, func(), error) {
	noop := func() {}
	switch r.cfg.op {
	case benchSign:
		return r.signOp(), noop, nil
	case benchVerify:
		op, err := r.verifyOp(ctx)
		return op, noop, err
	case benchRotate:
		return r.rotateOp(), noop, nil
	case benchSuspend:
		return r.suspendOp(), noop, nil
	case benchDeliver:
		op, err := r.deliverOp(ctx)
		return op, noop, err
	default:
		return r.cycleOp()
	}
}

var benchMessage = []byte(strings.Repeat("m", benchMessageBytes))

// scope is worker w's scope: workers spread over the partitions.
func (r *benchRun) scope(w int) string { return "bench-" + r.id + "-" + strconv.Itoa(w) }

func (r *benchRun) signOp() benchOp {
	return func(ctx context.Context, w, _ int) error {
		_, err := r.e.Sign(ctx, contracts.SignArgs{Scope: r.scope(w), Message: benchMessage})
		return err
	}
}

// verifyOp verifies a token signed once per worker.
func (r *benchRun) verifyOp(ctx context.Context) (benchOp, error) {
	tokens := make([]string, r.cfg.concurrency)
	for w := range tokens {
		s, err := r.e.Sign(ctx, contracts.SignArgs{Scope: r.scope(w), Message: benchMessage})
		if err != nil {
			return nil, err
		}
		tokens[w] = s.Token
	}
	return func(ctx context.Context, w, _ int) error {
		_, err := r.e.Verify(ctx, contracts.VerifyArgs{Scope: r.scope(w), Message: benchMessage, Token: tokens[w]})
		return err
	}, nil
}

// rotateOp rotates every partition to a new kid.
func (r *benchRun) rotateOp() benchOp {
	secret := benchSecret()
	return func(ctx context.Context, w, i int) error {
		kid := fmt.Sprintf("%s%s-%d-%d", benchKidPrefix, r.id, w, i)
		res, err := r.e.RotateAll(ctx, contracts.RotateArgs{NewKid: kid, NewSecret: secret, GraceMs: r.cfg.grace.Milliseconds()})
		if err == nil && res.Failed() {
			for _, entry := range res.Entries {
				if entry.Error != nil {
					return entry.Error
				}
			}
		}
		return err
	}
}

// execID is a unique execution id of this run.
func (r *benchRun) execID(w, i int) string {
	return "bench-" + r.id + "-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
}

// suspendOp suspends a new execution on one waitpoint, without timeout, so
// that it never becomes claimable: it stays suspended after the run.
func (r *benchRun) suspendOp() benchOp {
	return func(ctx context.Context, w, i int) error {
		_, err := r.suspend(ctx, r.execID(w, i), contracts.ConditionAny, "a")
		return err
	}
}

func (r *benchRun) suspend(ctx context.Context, execID, condition string, keys ...string) (contracts.SuspendOutcome, error) {
	wps := make([]contracts.WaitpointSpec, len(keys))
	for i, k := range keys {
		wps[i] = contracts.WaitpointSpec{Key: k}
	}
	return r.e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: execID, Waitpoints: wps, Condition: condition})
}

// deliverTarget is a waitpoint a worker delivers to: the first of an "all"
// suspension whose second waitpoint never receives a signal, so every
// delivery is accepted and the execution never resumes (nor is claimable).
type deliverTarget struct {
	execID string
	wp     contracts.WaitpointOutcome
	count  int
}

// deliverOp delivers accepted signals, each with its own idempotency key,
// moving a worker to a fresh suspension before the signal limit.
func (r *benchRun) deliverOp(ctx context.Context) (benchOp, error) {
	targets := make([]deliverTarget, r.cfg.concurrency)
	for w := range targets {
		if err := r.newTarget(ctx, &targets[w], w, 0); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, w, i int) error {
		t := &targets[w]
		if t.count == contracts.SignalLimit-1 {
			if err := r.newTarget(ctx, t, w, i); err != nil {
				return err
			}
		}
		t.count++
		_, err := r.e.DeliverSignal(ctx, contracts.DeliverSignalArgs{
			ExecutionID: t.execID, WaitpointID: t.wp.WaitpointID, Token: t.wp.Token,
			Name: "bench", IdempotencyKey: strconv.Itoa(i),
		})
		return err
	}, nil
}

func (r *benchRun) newTarget(ctx context.Context, t *deliverTarget, w, i int) error {
	execID := r.execID(w, i) + "-d"
	out, err := r.suspend(ctx, execID, contracts.ConditionAll, "a", "never")
	if err != nil {
		return err
	}
	*t = deliverTarget{execID: execID, wp: out.Waitpoints[0]}
	return nil
}

// cycleOp serves the engine over HTTP on a loopback port, as ff serve does,
// and measures suspend → deliver (HTTP, the public route) → claim →
// complete. A claim that returns an execution of another user (possible
// only with --force on a shared store) is not completed: its lease expires
// and it becomes claimable again; the report counts it.
func (r *benchRun) cycleOp() (benchOp, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, contracts.ErrBackendUnreachable.With("bench: listening on loopback: %v", err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httpapi.NewServer(ln.Addr().String(), httpapi.New(r.e, httpapi.Options{Logger: quiet}))
	go func() { _ = srv.Serve(ln) }()
	n := r.cfg.concurrency
	r.steps = make([]histogram, len(cycleSteps))
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n}}
	base := "http://" + ln.Addr().String()
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
		defer cancel()
		_ = srv.Shutdown(ctx)
		client.CloseIdleConnections()
	}
	op := func(ctx context.Context, w, i int) error {
		id := r.execID(w, i)
		t := time.Now()
		out, err := r.suspend(ctx, id, contracts.ConditionAny, "a")
		if err != nil {
			return err
		}
		t = r.step(0, t)
		if err := deliverHTTP(ctx, client, base, id, out.Waitpoints[0]); err != nil {
			return err
		}
		return r.claimAndComplete(ctx, w, r.step(1, t))
	}
	return op, cleanup, nil
}

// deliverHTTP posts one signal to the public route, the token as bearer.
func deliverHTTP(ctx context.Context, client *http.Client, base, execID string, wp contracts.WaitpointOutcome) error {
	url := base + "/v1/executions/" + execID + "/waitpoints/" + wp.WaitpointID + "/signals"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"name":"bench","idempotency_key":"1"}`))
	if err != nil {
		return contracts.ErrInternal.With("bench: building the request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+wp.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return contracts.ErrBackendUnreachable.With("bench: POST signals: %v", err).Wrapping(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var env contracts.ErrorEnvelope
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		return env.Error
	}
	return contracts.ErrInternal.With("bench: POST signals answered HTTP %d", resp.StatusCode)
}

// claimAndComplete claims until it holds an execution of this run, then
// completes it. Another worker may have claimed the one this worker
// resumed; this worker then takes the next of the run's. t0 is when the
// claim step began.
func (r *benchRun) claimAndComplete(ctx context.Context, w int, t0 time.Time) error {
	worker := "ff-bench-" + r.id + "-" + strconv.Itoa(w)
	ours := "bench-" + r.id + "-"
	giveUp := time.Now().Add(10 * time.Second)
	for {
		out, err := r.e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: worker, LeaseMs: 30_000})
		switch {
		case err != nil:
			return err
		case out.Outcome == contracts.OutcomeClaimed && strings.HasPrefix(out.ExecutionID, ours):
			t := r.step(2, t0)
			_, err := r.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: out.ExecutionID, LeaseID: out.LeaseID})
			if err == nil {
				r.step(3, t)
			}
			return err
		case out.Outcome == contracts.OutcomeClaimed:
			r.foreign.Add(1)
		case time.Now().After(giveUp):
			return contracts.ErrInternal.With("bench: no execution of this run to claim for 10s")
		default:
			time.Sleep(200 * time.Microsecond)
		}
	}
}

// benchReport is the result of a run, printed as a table or, with --json,
// as this object.
type benchReport struct {
	Op              string           `json:"op"`
	Backend         string           `json:"backend"`
	Concurrency     int              `json:"concurrency"`
	DurationMs      int64            `json:"duration_ms"`
	KeystoreCacheMs int64            `json:"keystore_cache_ms"`
	SeededByBench   bool             `json:"seeded_by_bench"` // the current kids are bench's
	Ops             int64            `json:"ops"`
	Errors          int64            `json:"errors"`
	ErrorCodes      map[string]int64 `json:"error_codes"`
	ForeignClaims   int64            `json:"foreign_claims"`
	OpsPerSec       float64          `json:"ops_per_sec"`
	LatencyUs       benchLatency     `json:"latency_us"`
	// StepsUs (cycle only) times each step of a cycle apart: suspend,
	// deliver_http, claim (until one of this run's), complete.
	StepsUs map[string]benchLatency `json:"steps_us,omitempty"`
}

// benchLatency holds latency percentiles in microseconds.
type benchLatency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// benchWorker is one worker's tally.
type benchWorker struct {
	hist   histogram
	errors map[string]int64
}

// run calls op from concurrency workers until the duration has passed; an
// operation in flight at the deadline completes and counts.
func (r *benchRun) run(ctx context.Context, op benchOp) benchReport {
	workers := make([]benchWorker, r.cfg.concurrency)
	start := time.Now()
	deadline := start.Add(r.cfg.duration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, op, w, &workers[w], deadline)
		}()
	}
	wg.Wait()
	return r.report(workers, time.Since(start))
}

func (r *benchRun) work(ctx context.Context, op benchOp, w int, wk *benchWorker, deadline time.Time) {
	wk.errors = map[string]int64{}
	for i := 0; ctx.Err() == nil; i++ {
		t0 := time.Now()
		if !t0.Before(deadline) {
			return
		}
		err := op(ctx, w, i)
		wk.hist.add(time.Since(t0))
		if err != nil {
			ce := contracts.AsError(err)
			wk.errors[ce.Code]++
		}
	}
}

func (r *benchRun) report(workers []benchWorker, elapsed time.Duration) benchReport {
	var all histogram
	rep := benchReport{
		Op: r.cfg.op, Concurrency: r.cfg.concurrency, DurationMs: elapsed.Milliseconds(),
		KeystoreCacheMs: r.cfg.cacheTTL.Milliseconds(), SeededByBench: r.seeded,
		ErrorCodes: map[string]int64{}, ForeignClaims: r.foreign.Load(),
	}
	for i := range workers {
		all.merge(&workers[i].hist)
		for code, n := range workers[i].errors {
			rep.ErrorCodes[code] += n
			rep.Errors += n
		}
	}
	rep.Ops = int64(all.n)
	rep.OpsPerSec = float64(all.n) / elapsed.Seconds()
	rep.LatencyUs = all.latency()
	if r.steps != nil {
		rep.StepsUs = map[string]benchLatency{}
		for k, name := range cycleSteps {
			rep.StepsUs[name] = r.steps[k].latency()
		}
	}
	return rep
}

// latency returns the percentiles of h in microseconds.
func (h *histogram) latency() benchLatency {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return benchLatency{P50: us(h.quantile(0.5)), P90: us(h.quantile(0.9)), P99: us(h.quantile(0.99)), Max: us(h.max)}
}

// printBench prints the report as a table, or as JSON with --json.
func (inv *invocation) printBench(rep benchReport, asJSON bool) {
	if asJSON {
		inv.write(rep)
		return
	}
	w := tabwriter.NewWriter(inv.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "backend\t%s\nkeystore cache\t%s\nseeded by bench\t%v\n\n", rep.Backend, time.Duration(rep.KeystoreCacheMs)*time.Millisecond, rep.SeededByBench)
	fmt.Fprintf(w, "op\tclients\tduration\tops\terrors\tops/s\tp50\tp90\tp99\tmax\n")
	fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\n", rep.Op, rep.Concurrency,
		(time.Duration(rep.DurationMs) * time.Millisecond).String(), rep.Ops, rep.Errors, rep.OpsPerSec,
		fmtUs(rep.LatencyUs.P50), fmtUs(rep.LatencyUs.P90), fmtUs(rep.LatencyUs.P99), fmtUs(rep.LatencyUs.Max))
	for _, name := range cycleSteps {
		if l, ok := rep.StepsUs[name]; ok {
			fmt.Fprintf(w, "  %s\t\t\t\t\t\t%s\t%s\t%s\t%s\n", name, fmtUs(l.P50), fmtUs(l.P90), fmtUs(l.P99), fmtUs(l.Max))
		}
	}
	_ = w.Flush()
	if rep.Errors > 0 {
		codes := make([]string, 0, len(rep.ErrorCodes))
		for c, n := range rep.ErrorCodes {
			codes = append(codes, fmt.Sprintf("%s=%d", c, n))
		}
		sort.Strings(codes)
		fmt.Fprintf(inv.stdout, "errors: %s\n", strings.Join(codes, " "))
	}
	if rep.ForeignClaims > 0 {
		fmt.Fprintf(inv.stdout, "claims of other users' executions (left to their lease): %d\n", rep.ForeignClaims)
	}
}

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

// histogram is a log-linear latency histogram: values below 2^subBits ns
// are exact, larger ones fall into 2^subBits buckets per power of two (a
// relative error below 1/2^subBits). Not safe for concurrent use: each
// worker keeps its own and they are merged.
type histogram struct {
	counts [(64 - subBits) << subBits]uint64
	n      uint64
	max    time.Duration
}

const subBits = 7

func bucketOf(ns uint64) int {
	if ns < 1<<subBits {
		return int(ns)
	}
	shift := bits.Len64(ns) - subBits - 1
	return (shift+1)<<subBits + int(ns>>shift) - 1<<subBits
}

// bucketTop is the largest value of bucket i.
func bucketTop(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	mant := uint64(i&(1<<subBits-1)) + 1<<subBits
	return (mant+1)<<shift - 1
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q ≤ 1), at most the maximum.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketTop(i)), h.max)
		}
	}
	return h.max
}
