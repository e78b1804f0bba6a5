package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flowfabric/flowfabric-go/backend/postgres"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/benchutil"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// The Postgres targets, as benchmark pairs at the same number of
// clients over pools of the same size (pool_max_conns = clients):
//
//	BenchmarkVerifyUncached/clients=N  vs  BenchmarkSelect1/clients=N   (target ≥ 0.7×)
//	BenchmarkDeliverSignal/clients=16  vs  pgbench -b simple-update -c 16 (docs/benchmarks.md; ≥ 0.5×)
//
// ns/op is wall time per operation over all clients, so throughput is
// 1e9 / ns/op.

var benchClients = []int{1, 16}

// benchSchemaURL is a fresh schema with a pool of n connections, migrated
// at Open by the driver when migrate is set.
func benchSchemaURL(b *testing.B, n int, migrate bool) string {
	b.Helper()
	u, err := url.Parse(testenv.NewPostgresSchema(b, testenv.PackageDatabase(b)))
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	if migrate {
		q.Set(postgres.ParamMigrate, postgres.MigrateAuto)
	}
	q.Set("pool_max_conns", strconv.Itoa(n))
	q.Set("pool_min_conns", strconv.Itoa(n))
	u.RawQuery = q.Encode()
	return u.String()
}

// benchEngine opens an uncached Engine on a fresh schema seeded with kid-a.
func benchEngine(b *testing.B, n int, opts ...engine.Option) *engine.Engine {
	b.Helper()
	e, err := engine.Open(context.Background(), benchSchemaURL(b, n, true), append([]engine.Option{engine.WithKeystoreCache(0)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	if _, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "kid-a", Secret: benchSecret}); err != nil {
		b.Fatal(err)
	}
	return e
}

var benchSecret = contracts.Secret(strings.Repeat("a", 32))

// BenchmarkVerifyUncached verifies a valid token with the keystore cache
// off: one driver round trip per call.
func BenchmarkVerifyUncached(b *testing.B) {
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			e := benchEngine(b, n)
			msg := []byte("bench-verify-message")
			a := contracts.VerifyArgs{Scope: "s", Message: msg, Token: driver.SignToken("kid-a", benchSecret, driver.SignatureInput("kid-a", "s", msg))}
			benchutil.Run(b, n, func(ctx context.Context, _, _ int) error {
				_, err := e.Verify(ctx, a)
				return err
			})
		})
	}
}

// BenchmarkSelect1 is pgx's cheapest round trip, SELECT 1, over a pool of
// the same size.
func BenchmarkSelect1(b *testing.B) {
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			pool, err := pgxpool.New(context.Background(), benchSchemaURL(b, n, false))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			benchutil.Run(b, n, func(ctx context.Context, _, _ int) error {
				var one int
				return pool.QueryRow(ctx, "SELECT 1").Scan(&one)
			})
		})
	}
}

// BenchmarkDeliverSignal delivers accepted signals from 16 clients
// (benchutil.DeliverSignals). benchutil delivers up to the suspension's
// signal limit to one waitpoint, so the Engine allows that many signals
// per waitpoint (ten times the default, the most it may): every delivery
// is checked against the budgets all the same.
func BenchmarkDeliverSignal(b *testing.B) {
	const n = 16
	b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
		limits := contracts.SignalLimits{PerWaitpoint: 10 * contracts.WaitpointSignalLimit}
		benchutil.DeliverSignals(b, benchEngine(b, n, engine.WithSignalLimits(limits)), n)
	})
}

// BenchmarkCycle runs whole cycles from 1 and 16 clients: each client
// suspends an execution of its own on one waitpoint, delivers a signal with
// a small payload (which resumes it), claims the oldest resumed execution
// and completes it.
func BenchmarkCycle(b *testing.B) {
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			benchutil.Cycles(b, benchEngine(b, n), n)
		})
	}
}
