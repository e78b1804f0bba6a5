package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// riverSchema is the schema River's tables are migrated into, in bench's
// own database.
const riverSchema = "river"

// riverSettings are the River client's settings for the reference. River's
// defaults favour a light load on the database over throughput (a fetch at
// most every 100 ms); these favour throughput, as a fair opponent should.
type riverSettings struct {
	MaxWorkers    int           // workers of the default queue
	FetchCooldown time.Duration // minimum time between two fetches
	FetchPoll     time.Duration // fetch at least this often without notifications
	InFlight      int           // jobs inserted and not completed yet, at most
}

// defaultRiverSettings are the settings compare uses unless flags change them.
var defaultRiverSettings = riverSettings{MaxWorkers: 100, FetchCooldown: 2 * time.Millisecond, FetchPoll: 50 * time.Millisecond, InFlight: 1000}

// riverArgs is the reference's job: it carries nothing.
type riverArgs struct{}

// Kind names the job kind.
func (riverArgs) Kind() string { return "ff_bench_noop" }

// riverWorker works a job by doing nothing, so that what is measured is
// River's insert, fetch and completion.
type riverWorker struct {
	river.WorkerDefaults[riverArgs]
}

// Work returns at once.
func (riverWorker) Work(context.Context, *river.Job[riverArgs]) error { return nil }

// measureRiver is the reference of the Postgres cycle row: producers
// goroutines insert no-op jobs in closed loops (Client.Insert, one job a
// call) while one River client works them, and the rate is the jobs
// completed during d. At most s.InFlight jobs are outstanding, so that the
// queue stays short and the rate is River's steady state. The latency is
// River's own per-job statistics: queue wait + run + completion. River's
// tables are migrated (rivermigrate) into schema "river" of the database of
// u, bench's own.
func measureRiver(ctx context.Context, u *url.URL, producers int, d time.Duration, s riverSettings) (measure, error) {
	pu := withQuery(u, url.Values{"pool_max_conns": {fmt.Sprint(producers + 8)}})
	pool, err := pgxpool.New(ctx, pu.String())
	if err != nil {
		return measure{}, fmt.Errorf("connecting to %s: %w", u.Redacted(), err)
	}
	defer pool.Close()
	client, err := newRiverClient(ctx, pool, s)
	if err != nil {
		return measure{}, err
	}
	completed, stop := client.SubscribeConfig(&river.SubscribeConfig{Kinds: []river.EventKind{river.EventKindJobCompleted}, ChanSize: s.InFlight + 1000})
	defer stop()
	if err := client.Start(ctx); err != nil {
		return measure{}, fmt.Errorf("starting the River client: %w", err)
	}
	defer stopRiver(ctx, client)
	if err := warmRiver(ctx, client, completed); err != nil {
		return measure{}, err
	}
	return runRiver(ctx, client, completed, producers, d, s.InFlight), nil
}

// riverWarmUp bounds the wait for the first job, while River's client
// starts its producer, listener and completer.
const riverWarmUp = 30 * time.Second

// warmRiver inserts one job and waits until it completes, so that the
// measurement starts with the client fully running, as ours starts with
// the engine open.
func warmRiver(ctx context.Context, client *river.Client[pgx.Tx], completed <-chan *river.Event) error {
	if _, err := client.Insert(ctx, riverArgs{}, nil); err != nil {
		return fmt.Errorf("inserting River's first job: %w", err)
	}
	select {
	case <-completed:
		return nil
	case <-time.After(riverWarmUp):
		return fmt.Errorf("River completed no job within %s", riverWarmUp)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newRiverClient migrates River's schema in the database of pool and
// returns a client working riverArgs jobs with s.
func newRiverClient(ctx context.Context, pool *pgxpool.Pool, s riverSettings) (*river.Client[pgx.Tx], error) {
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+riverSchema); err != nil {
		return nil, fmt.Errorf("creating schema %s: %w", riverSchema, err)
	}
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: riverSchema, Logger: quietLogger()})
	if err != nil {
		return nil, fmt.Errorf("River migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("River migrations: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &riverWorker{})
	client, err := river.NewClient(driver, &river.Config{
		Schema:            riverSchema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: s.MaxWorkers}},
		Workers:           workers,
		FetchCooldown:     s.FetchCooldown,
		FetchPollInterval: s.FetchPoll,
		Logger:            quietLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("River client: %w", err)
	}
	return client, nil
}

// runRiver inserts jobs from producers goroutines until d has passed and
// counts the completions that arrive meanwhile.
func runRiver(ctx context.Context, client *river.Client[pgx.Tx], completed <-chan *river.Event, producers int, d time.Duration, inFlight int) measure {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	slots := make(chan struct{}, inFlight)
	var mu sync.Mutex
	var insertErrs int64
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range producers {
		wg.Go(func() {
			for {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				if _, err := client.Insert(ctx, riverArgs{}, nil); err != nil && ctx.Err() == nil {
					mu.Lock()
					insertErrs++
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					<-slots
				}
			}
		})
	}
	var latencies []time.Duration
	for done := false; !done; {
		select {
		case ev := <-completed:
			if ev.JobStats != nil {
				latencies = append(latencies, ev.JobStats.QueueWaitDuration+ev.JobStats.RunDuration+ev.JobStats.CompleteDuration)
			}
			select {
			case <-slots:
			default:
			}
		case <-ctx.Done():
			done = true
		}
	}
	elapsed := time.Since(start)
	wg.Wait()
	slices.Sort(latencies)
	m := measure{OpsPerSec: float64(len(latencies)) / elapsed.Seconds(), P50: percentile(latencies, 0.5), P99: percentile(latencies, 0.99), Errors: insertErrs}
	if len(latencies) == 0 {
		m.Err = fmt.Errorf("no River job completed in %s", d)
	}
	if firstErr != nil {
		m.Note = "first insert error: " + firstErr.Error()
	}
	return m
}

// cmpErr keeps the first error.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// stopRiver stops the client, waiting for jobs in flight up to 10 s, then
// cancelling them.
func stopRiver(ctx context.Context, client *river.Client[pgx.Tx]) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := client.Stop(sctx); err == nil {
		return
	}
	cctx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel2()
	_ = client.StopAndCancel(cctx)
}

// quietLogger discards River's logs, which would interleave with the
// report.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
