package valkey

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// replicatedPair is a private primary with one replica, both child
// processes of the test without persistence; the replica can be stopped
// (SIGSTOP) and continued.
type replicatedPair struct {
	primary, replica string // addresses
	replicaServer    *testenv.KVServer
}

// startReplicatedPair starts a primary and a replica of it (bin) and
// waits until the replica is in sync.
func startReplicatedPair(t testing.TB, bin string) *replicatedPair {
	t.Helper()
	primary := startServerProcess(t, bin)
	replica := startServerProcess(t, bin, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	p := &replicatedPair{primary: primary.Addr(), replica: replica.Addr(), replicaServer: replica}
	if !replicaConfirms(p.primary, 30*time.Second) {
		t.Fatalf("the replica on %s never confirmed a write", p.replica)
	}
	return p
}

// replicaConfirms writes on the primary at addr until one replica confirms
// the write (WAIT 1): the replica is then in sync and counted (a replica
// reporting its link up may not be yet: Redis 7.0 starts counting it at
// its first acknowledgement, up to a second later).
func replicaConfirms(addr string, within time.Duration) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})
	defer c.Close()
	ctx := context.Background()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		c.Set(ctx, "replica-check", "1", 0)
		if n, err := c.Do(ctx, "WAIT", 1, 100).Int64(); err == nil && n == 1 {
			return true
		}
	}
	return false
}

// startServerProcess starts bin without persistence, its replicas syncing
// at once, on a free port with args (killed when t ends).
func startServerProcess(t testing.TB, bin string, args ...string) *testenv.KVServer {
	t.Helper()
	return testenv.StartKVServer(t, bin, testenv.KVServerOptions{
		Args: append([]string{"--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"}, args...)})
}

// waitURL is a backend URL for addr with P partitions, a fresh prefix and
// the given extra query ("wait_replicas=1&...").
func waitURL(t testing.TB, addr string, partitions int, query string) string {
	t.Helper()
	return fmt.Sprintf("redis://%s/0?partitions=%d&prefix=%s&%s", addr, partitions, url.QueryEscape(testenv.KeyPrefix(t)), query)
}

// requireUnconfirmed checks err is replication_unconfirmed, retryable,
// with a detail naming the option, the counts and the timeout.
func requireUnconfirmed(t testing.TB, err error, timeout string) {
	t.Helper()
	require.ErrorIs(t, err, contracts.ErrReplicationUnconfirmed)
	var ce *contracts.Error
	require.True(t, errors.As(err, &ce))
	require.True(t, ce.Retryable)
	require.Contains(t, ce.Detail, "wait_replicas: 0 of the 1 replicas asked for confirmed the write within "+timeout)
}

// With wait_replicas=1 (on valkey-server and on redis-server) every write
// is confirmed by the replica before it is acknowledged; while the replica is stopped writes answer
// replication_unconfirmed (applied on the primary), reads still answer, and
// once the replica is back repeating the calls acknowledges the writes
// they stand for (the suspend's idempotent replay and the duplicate
// delivery wait for the replica too).
func TestWaitReplicas(t *testing.T) {
	for _, name := range []string{"valkey-server", "redis-server"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testWaitReplicas(t, startReplicatedPair(t, testenv.KVBinary(t, name)))
		})
	}
}

func testWaitReplicas(t *testing.T, pair *replicatedPair) {
	raw := waitURL(t, pair.primary, 4, "wait_replicas=1&wait_timeout=300ms")
	b := openURL(t, raw, nil)
	ctx := context.Background()
	replica := redis.NewClient(&redis.Options{Addr: pair.replica})
	defer replica.Close()
	onReplica := func(exec string) bool {
		key := b.key(driver.PartitionOf(exec, b.parts), "x:"+exec)
		return replica.Exists(ctx, key).Val() == 1
	}

	t.Run("acknowledged writes are on the replica", func(t *testing.T) {
		_, err := b.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(strings.Repeat("s", 32))})
		require.NoError(t, err)
		s, err := b.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e1", Condition: "any", IdempotencyKey: "ik",
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
		require.NoError(t, err)
		require.True(t, onReplica("e1"), "the acknowledged suspension is on the replica")
		_, err = b.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: "e1", WaitpointID: s.Waitpoints[0].WaitpointID,
			Token: s.Waitpoints[0].Token, Name: "n"})
		require.NoError(t, err)
		c, err := b.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
		require.NoError(t, err)
		require.Equal(t, "e1", c.ExecutionID)
		_, err = b.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: "e1", LeaseID: c.LeaseID})
		require.NoError(t, err)
		res, err := b.RotateAll(ctx, contracts.RotateArgs{NewKid: "k2", NewSecret: contracts.Secret(strings.Repeat("t", 32)), GraceMs: 60_000})
		require.NoError(t, err)
		require.False(t, res.Failed())
	})

	t.Run("a stopped replica: unconfirmed, then confirmed on repeat", func(t *testing.T) {
		// given the replica stopped
		require.NoError(t, pair.replicaServer.Signal(syscall.SIGSTOP))
		stopped := true
		defer func() {
			if stopped {
				_ = pair.replicaServer.Signal(syscall.SIGCONT)
			}
		}()
		args := contracts.SuspendArgs{ExecutionID: "e2", Condition: "any", IdempotencyKey: "ik",
			Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}}

		// when suspending, then replication_unconfirmed after wait_timeout
		start := time.Now()
		_, err := b.Suspend(ctx, args)
		requireUnconfirmed(t, err, "300ms")
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

		// when repeating it (a replay of the applied suspend), then still unconfirmed
		_, err = b.Suspend(ctx, args)
		requireUnconfirmed(t, err, "300ms")

		// when reading, then no wait
		start = time.Now()
		obs, err := b.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "e2"})
		require.NoError(t, err)
		require.Less(t, time.Since(start), 300*time.Millisecond)

		// when the fan-out rotate runs, then every partition reports it
		res, err := b.RotateAll(ctx, contracts.RotateArgs{NewKid: "k3", NewSecret: contracts.Secret(strings.Repeat("u", 32)), GraceMs: 60_000})
		require.NoError(t, err)
		for _, e := range res.Entries {
			require.ErrorIs(t, e.Error, contracts.ErrReplicationUnconfirmed, "partition %d", e.Partition)
		}

		// when the replica is back, then repeating acknowledges the writes
		require.NoError(t, pair.replicaServer.Signal(syscall.SIGCONT))
		stopped = false
		s, err := b.Suspend(ctx, args)
		require.NoError(t, err)
		require.Equal(t, obs.SuspensionID, s.SuspensionID, "the replay answers the suspension applied while unconfirmed")
		require.True(t, onReplica("e2"))
		res, err = b.RotateAll(ctx, contracts.RotateArgs{NewKid: "k3", NewSecret: contracts.Secret(strings.Repeat("u", 32)), GraceMs: 60_000})
		require.NoError(t, err)
		for _, e := range res.Entries {
			require.Nil(t, e.Error)
			require.Equal(t, contracts.RotateNoop, e.Outcome.Outcome)
		}
	})
}

// Against servers without replicas (the shared test servers), a write
// waiting for one answers replication_unconfirmed, on one partition and
// on every partition, standalone and on a cluster (where the WAIT goes
// to each partition's master); reads answer.
func TestWaitReplicasWithoutReplicas(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			raw := backendURL(t, s.url(t), 4, testenv.KeyPrefix(t)) + "&wait_replicas=1&wait_timeout=20ms"
			b := openURL(t, raw, nil)
			ctx := context.Background()
			seed := contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(strings.Repeat("s", 32))}
			_, err := b.Seed(ctx, seed) // stops after partition 0, the arbiter
			requireUnconfirmed(t, err, "20ms")
			_, err = b.Seed(ctx, seed) // repairs the other partitions, in one pipeline
			requireUnconfirmed(t, err, "20ms")
			_, err = b.Suspend(ctx, contracts.SuspendArgs{ExecutionID: "e1", Condition: "any", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
			requireUnconfirmed(t, err, "20ms")
			_, err = b.ListKids(ctx, contracts.ListKidsArgs{})
			require.NoError(t, err)
			_, err = b.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: "e1"})
			require.NoError(t, err)
		})
	}
}

// BenchmarkWaitReplicasCycle measures one cycle (suspend, deliver, claim,
// complete) on a private primary with one replica, without and with
// wait_replicas=1: the cost of waiting for the replica.
func BenchmarkWaitReplicasCycle(b *testing.B) {
	name := "valkey-server"
	if _, err := exec.LookPath(name); err != nil {
		name = "redis-server"
	}
	pair := startReplicatedPair(b, testenv.KVBinary(b, name))
	for _, n := range []int{0, 1} {
		b.Run("wait_replicas="+strconv.Itoa(n), func(b *testing.B) {
			be := openURL(b, waitURL(b, pair.primary, 1, "wait_replicas="+strconv.Itoa(n)), nil)
			ctx := context.Background()
			if _, err := be.Seed(ctx, contracts.SeedArgs{Kid: "k1", Secret: contracts.Secret(strings.Repeat("s", 32))}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				exec := "bench-" + strconv.Itoa(i)
				s, err := be.Suspend(ctx, contracts.SuspendArgs{ExecutionID: exec, Condition: "any", Waitpoints: []contracts.WaitpointSpec{{Key: "a"}}})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := be.DeliverSignal(ctx, contracts.DeliverSignalArgs{ExecutionID: exec, WaitpointID: s.Waitpoints[0].WaitpointID,
					Token: s.Waitpoints[0].Token, Name: "n"}); err != nil {
					b.Fatal(err)
				}
				c, err := be.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "w", LeaseMs: 60_000})
				if err != nil || c.ExecutionID != exec {
					b.Fatalf("claim: %v %v", c, err)
				}
				if _, err := be.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: exec, LeaseID: c.LeaseID}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
