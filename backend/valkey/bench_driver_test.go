package valkey_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/backend/valkey"
	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/benchutil"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// The Valkey targets, as benchmark pairs on the standalone test
// server at the same number of clients:
//
//	BenchmarkVerifyUncached/clients=N       vs  BenchmarkPing/clients=N   (target ≥ 0.7×)
//	BenchmarkDeliverSignal/clients=16       vs  BenchmarkSet/clients=16   (target ≥ 0.5×)
//	BenchmarkRotateAll/partitions=256       vs  BenchmarkRotateAll/partitions=1 (latency ≤ 3×)
//
// ns/op is wall time per operation over all clients, so throughput is
// 1e9 / ns/op.

var benchClients = []int{1, 16}

var benchSecret = contracts.Secret(strings.Repeat("a", 32))

// benchBackendURL is the standalone test server with P partitions under a
// fresh key prefix (deleted when b ends).
func benchBackendURL(b *testing.B, partitions int) string {
	b.Helper()
	u, err := url.Parse(testenv.ValkeyURL(b))
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set(valkey.OptionPartitions, strconv.Itoa(partitions))
	q.Set(valkey.OptionPrefix, testenv.KeyPrefix(b))
	u.RawQuery = q.Encode()
	return u.String()
}

// benchEngine opens an uncached Engine with P partitions seeded with kid-a.
func benchEngine(b *testing.B, partitions int) *engine.Engine {
	b.Helper()
	e, err := engine.Open(context.Background(), benchBackendURL(b, partitions), engine.WithKeystoreCache(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	if _, err := e.Seed(context.Background(), contracts.SeedArgs{Kid: "kid-a", Secret: benchSecret}); err != nil {
		b.Fatal(err)
	}
	return e
}

// benchClient is a plain go-redis client on the same server, with go-redis
// defaults like the driver's.
func benchClient(b *testing.B) *redis.Client {
	b.Helper()
	opts, err := redis.ParseURL(strings.Replace(testenv.ValkeyURL(b), "valkey://", "redis://", 1))
	if err != nil {
		b.Fatal(err)
	}
	c := redis.NewClient(opts)
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// BenchmarkVerifyUncached verifies a valid token with the keystore cache
// off: one script call per verify.
func BenchmarkVerifyUncached(b *testing.B) {
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			e := benchEngine(b, valkey.DefaultPartitions)
			msg := []byte("bench-verify-message")
			a := contracts.VerifyArgs{Scope: "s", Message: msg, Token: driver.SignToken("kid-a", benchSecret, driver.SignatureInput("kid-a", "s", msg))}
			benchutil.Run(b, n, func(ctx context.Context, _, _ int) error {
				_, err := e.Verify(ctx, a)
				return err
			})
		})
	}
}

// BenchmarkPing is go-redis's cheapest round trip.
func BenchmarkPing(b *testing.B) {
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			c := benchClient(b)
			benchutil.Run(b, n, func(ctx context.Context, _, _ int) error { return c.Ping(ctx).Err() })
		})
	}
}

// BenchmarkSet is go-redis SET of a small value under the test's prefix.
func BenchmarkSet(b *testing.B) {
	const n = 16
	b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
		c := benchClient(b)
		prefix := testenv.KeyPrefix(b)
		benchutil.Run(b, n, func(ctx context.Context, client, i int) error {
			return c.Set(ctx, prefix+strconv.Itoa(client), i, 0).Err()
		})
	})
}

// BenchmarkDeliverSignal delivers accepted signals from 16 clients
// (benchutil.DeliverSignals).
func BenchmarkDeliverSignal(b *testing.B) {
	const n = 16
	b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
		benchutil.DeliverSignals(b, benchEngine(b, valkey.DefaultPartitions), n)
	})
}

// BenchmarkCycle runs whole cycles from 1 and 16 clients: each client
// suspends an execution of its own on one waitpoint, delivers a signal with
// a small payload (which resumes it), claims the oldest resumed execution
// and completes it: five round trips on the standalone server (suspend
// takes two).
func BenchmarkCycle(b *testing.B) {
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			benchutil.Cycles(b, benchEngine(b, valkey.DefaultPartitions), n)
		})
	}
}

// BenchmarkRotateAll measures one rotate_all (a pipeline of one script
// call per partition) from one client, with P = 1 and P = 256; grace 0, so
// each rotation collects the previous one's kid and the keystore stays small.
func BenchmarkRotateAll(b *testing.B) {
	for _, p := range []int{1, valkey.DefaultPartitions} {
		b.Run(fmt.Sprintf("partitions=%d", p), func(b *testing.B) {
			e := benchEngine(b, p)
			benchutil.Run(b, 1, func(ctx context.Context, _, i int) error {
				r, err := e.RotateAll(ctx, contracts.RotateArgs{NewKid: "kid-" + strconv.Itoa(i), NewSecret: benchSecret})
				if err == nil && r.Failed() {
					return fmt.Errorf("rotation %d failed in a partition", i)
				}
				return err
			})
		})
	}
}
