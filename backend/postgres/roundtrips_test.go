package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
)

// roundTrips counts what a connection sends to the server, one round trip
// each: queries (Exec, Query, QueryRow), batches (a pipeline of
// statements and one Sync) and prepares.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}

func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (r *roundTrips) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	r.n.Add(1)
	return ctx
}

func (r *roundTrips) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// Given a backend over a pool of one connection whose statements pgx has
// already prepared (one cycle ran before), when an execution goes through
// a whole cycle, then a suspend of a new execution and a delivery that
// resumes it cost two round trips each (the locks with the load, the
// writes with COMMIT), and a claim and a complete one each.
func TestCycleRoundTrips(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(withParam(t, schemaURL(t), "pool_max_conns", "1"))
	require.NoError(t, err)
	rt := &roundTrips{}
	cfg.ConnConfig.Tracer = rt
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b, err := postgres.New(ctx, pool, postgres.WithMigrate())
	require.NoError(t, err)
	_, err = b.Seed(ctx, contracts.SeedArgs{Kid: "kid-a", Secret: secret(0x01)})
	require.NoError(t, err)

	cycle := func(id string) map[string]int64 {
		counts := map[string]int64{}
		step := func(name string, op func() error) {
			before := rt.n.Load()
			require.NoError(t, op(), name)
			counts[name] = rt.n.Load() - before
		}
		var s contracts.SuspendOutcome
		step("suspend", func() (err error) {
			s, err = b.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id, Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, Condition: contracts.ConditionAny})
			return err
		})
		step("deliver", func() error {
			w := s.Waitpoints[0]
			out, err := b.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: w.WaitpointID, Token: w.Token, Name: "go", IdempotencyKey: "k"})
			require.True(t, err != nil || out.Resumed, "deliver: resumes")
			return err
		})
		var c contracts.ClaimOutcome
		step("claim", func() (err error) {
			c, err = b.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 30_000})
			require.Equal(t, id, c.ExecutionID, "claim: the resumed execution")
			return err
		})
		step("complete", func() error {
			_, err := b.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: id, LeaseID: c.LeaseID})
			return err
		})
		return counts
	}
	cycle("warm-up")
	require.Equal(t, map[string]int64{"suspend": 2, "deliver": 2, "claim": 1, "complete": 1}, cycle("measured"))
}
