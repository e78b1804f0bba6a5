package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
)

// storeBytesSQL is the size on disk of every ff_* table of the
// connection's schema, indexes and TOAST included.
const storeBytesSQL = `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname LIKE 'ff\_%'`

// sizeExecutions is how many suspended executions the size benchmark
// stores: enough that page and B-tree overheads reach their steady state.
const sizeExecutions = 20_000

// BenchmarkBytesPerSuspendedExecution reports the store's growth per
// suspended execution (metric bytes/execution): the ff_* tables' total
// size after sizeExecutions suspends, each of its own execution on two
// waitpoints (condition all) with no signal, minus their size before,
// divided by sizeExecutions. The execution ids are the length of
// "order-00001". It measures once, whatever b.N.
func BenchmarkBytesPerSuspendedExecution(b *testing.B) {
	const clients = 16
	ctx := context.Background()
	u := benchSchemaURL(b, clients, true)
	e, err := engine.Open(ctx, u, engine.WithKeystoreCache(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "kid-a", Secret: benchSecret}); err != nil {
		b.Fatal(err)
	}
	pu, err := url.Parse(u)
	if err != nil {
		b.Fatal(err)
	}
	q := pu.Query()
	q.Del(postgres.ParamMigrate) // the schema's URL as pgx reads it
	pu.RawQuery = q.Encode()
	pool, err := pgxpool.New(ctx, pu.String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	size := func() int64 {
		var n int64
		if err := pool.QueryRow(ctx, storeBytesSQL).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	before := size()
	var (
		wg   sync.WaitGroup
		once sync.Once
		ferr error
	)
	for c := range clients {
		wg.Go(func() {
			for i := c; i < sizeExecutions; i += clients {
				_, err := e.Suspend(ctx, contracts.SuspendArgs{
					ExecutionID: fmt.Sprintf("order-%05d", i),
					Waitpoints:  []contracts.WaitpointSpec{{Key: "approve"}, {Key: "review"}},
					Condition:   contracts.ConditionAll,
				})
				if err != nil {
					once.Do(func() { ferr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if ferr != nil {
		b.Fatal(ferr)
	}
	b.ReportMetric(float64(size()-before)/sizeExecutions, "bytes/execution")
}
