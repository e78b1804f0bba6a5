package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// pooledStore returns a fresh database reached through the test PgBouncer
// in transaction mode (URL with ff_pooler=transaction and ff_migrate=auto),
// and its direct URL.
func pooledStore(t testing.TB) (string, string) {
	t.Helper()
	db := testenv.NewPooledPostgresDatabase(t)
	return withParam(t, db.URL, postgres.ParamMigrate, postgres.MigrateAuto), db.Direct
}

// The whole conformance suite through PgBouncer in transaction mode, one
// database per scenario: with ff_pooler=transaction the driver keeps no
// session state, so every rule holds there too.
func TestPgBouncerConformance(t *testing.T) {
	h, opened := harnessOn(pooledStore)
	start := time.Now()
	conformance.Run(t, h)
	s := opened.stats()
	t.Logf("suite through the pooler: %v; %d transactions committed, %d retries, %d exhausted the retry budget",
		time.Since(start).Round(time.Millisecond), s.Transactions, s.Retries, s.Exhausted)
}

// Given an Engine through the pooler with a pool of 8 connections, when 16
// goroutines suspend and deliver to 8 executions, two goroutines per
// execution (contending for its lock, each with its own signal), and the
// executions are then claimed and completed, then every call succeeds with
// one of its contract outcomes, each execution resumes once, and afterwards
// no server connection holds an advisory lock: the execution locks are
// transaction-scoped and end with their transaction instead of staying on a
// pooled server connection.
func TestPgBouncerLeavesNoAdvisoryLockBehind(t *testing.T) {
	u, direct := pooledStore(t)
	e := engine.New(openURL(t, withParam(t, u, "pool_max_conns", "8")))
	seed(t, e, "kid-a", 0x01)
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		resumed = map[string]int{}
	)
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 10 {
				id := fmt.Sprintf("exec-%d-%d", g%8, i)
				s, err := e.Suspend(ctx, contracts.SuspendArgs{ExecutionID: id,
					Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}, IdempotencyKey: "k"})
				if err != nil {
					errs <- fmt.Errorf("suspend %s: %w", id, err)
					return
				}
				w := s.Waitpoints[0]
				out, err := e.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: id, WaitpointID: w.WaitpointID,
					Token: w.Token, Name: "go", IdempotencyKey: fmt.Sprintf("g%d", g)})
				switch {
				case errors.Is(err, contracts.ErrWaitpointClosed):
				case err != nil:
					errs <- fmt.Errorf("deliver to %s: %w", id, err)
					return
				case out.Resumed:
					mu.Lock()
					resumed[id]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, resumed, 80, "executions resumed")
	for id, n := range resumed {
		require.Equal(t, 1, n, "resumptions of %s", id)
	}
	claimed := 0
	for {
		id, err := claimAndComplete(ctx, e, "w")
		require.NoError(t, err)
		if id == "" {
			break
		}
		claimed++
	}
	require.Equal(t, 80, claimed)
	var locks int
	require.NoError(t, connect(t, direct).QueryRow(ctx,
		`SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		WHERE l.locktype = 'advisory' AND d.datname = current_database()`).Scan(&locks))
	require.Zero(t, locks, "advisory locks still held on server connections of the pooler")
}

// Behind a transaction pooler the driver opens no LISTEN connection
// (WatchKeystore answers unsupported at once, so an Engine keeps its TTL as
// the bound), and a rotation through one Engine is seen by another within
// the keystore cache's TTL.
func TestPgBouncerHasNoPushAndTheTTLBoundsStaleness(t *testing.T) {
	u, _ := pooledStore(t)
	b := openURL(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.WatchKeystore(ctx, func() { t.Error("changed called without a listener") })
	require.ErrorIs(t, err, contracts.ErrUnsupported)
	require.NoError(t, ctx.Err(), "WatchKeystore waited instead of answering at once")

	a, other := engine.New(b), engine.New(openURL(t, u))
	seed(t, a, "kid-a", 0x01)
	_, err = other.Sign(context.Background(), contracts.SignArgs{Scope: "s", Message: []byte("m")}) // fills other's cache
	require.NoError(t, err)
	_, err = a.RotateAll(context.Background(), contracts.RotateArgs{NewKid: "kid-b", NewSecret: secret(0x02), GraceMs: 60_000})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := other.Sign(context.Background(), contracts.SignArgs{Scope: "s", Message: []byte("m")})
		return err == nil && s.Kid == "kid-b"
	}, engine.DefaultKeystoreCacheTTL+4*time.Second, 20*time.Millisecond, "the other Engine never signed with the new kid")
}

// ff_pooler takes "transaction" or nothing.
func TestOpenRejectsUnknownPoolerValue(t *testing.T) {
	_, err := engine.OpenBackend(context.Background(), withParam(t, schemaURL(t), postgres.ParamPooler, "session"))
	require.ErrorIs(t, err, contracts.ErrInvalidInput)
	require.ErrorContains(t, err, "ff_pooler")
}
