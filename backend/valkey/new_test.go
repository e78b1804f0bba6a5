package valkey

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// appClient makes a go-redis client for server s as an application would,
// from the test server's URL (a *redis.ClusterClient for a cluster), closed
// when t ends.
func appClient(t *testing.T, s server) redis.UniversalClient {
	t.Helper()
	c, err := parseConfig(mustParse(t, s.url(t)))
	require.NoError(t, err)
	var client redis.UniversalClient
	if c.cluster {
		client = redis.NewClusterClient(c.clustered)
	} else {
		client = redis.NewClient(c.standalone)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// Given the application's own client, New makes a working Backend with the
// options given: a whole cycle works, the store is the one Open reaches
// with the same URL options (another partition count is refused), the
// description names the servers, a cluster client gets the topology hooks
// on every node client it already has. Close stops the Backend (calls and
// a running watch) and leaves the client open.
func TestNewOnTheApplicationsClient(t *testing.T) {
	forEachServer(t, func(t *testing.T, s server) {
		client := appClient(t, s)
		require.NoError(t, client.Ping(bg).Err()) // a client already in use
		prefix := testenv.KeyPrefix(t)
		b, err := New(bg, client, WithPartitions(16), WithPrefix(prefix))
		require.NoError(t, err)
		require.Equal(t, 16, b.Capabilities().Partitions)
		require.True(t, b.Capabilities().SharedAcrossProcesses)
		require.NotContains(t, b.String(), "@")
		require.Contains(t, b.String(), "valkey")
		if _, ok := client.(*redis.ClusterClient); ok {
			require.NotNil(t, b.topo, "a cluster backend")
			require.Empty(t, b.hint)
			nodes := 0
			b.topo.hooked.Range(func(any, any) bool { nodes++; return true })
			require.GreaterOrEqual(t, nodes, countMasters(t, b), "every node client hooked")
			// A MOVED met on a node client the application made before New
			// asks for a reload.
			node, err := client.(*redis.ClusterClient).MasterForKey(bg, prefix+"moved")
			require.NoError(t, err)
			var moved error
			for i := 0; i < 100 && moved == nil; i++ {
				if err := node.Get(bg, prefix+"moved-"+itoa(i)).Err(); err != nil && strings.HasPrefix(err.Error(), "MOVED") {
					moved = err
				}
			}
			require.Error(t, moved, "a node answered MOVED")
			require.Positive(t, b.topo.reloads.Load(), "the MOVED asked for a reload")
		} else {
			require.Nil(t, b.topo)
			require.Equal(t, prefix+"ff:claim-hint", b.hint)
		}

		e := engine.New(b)
		mustSeed(t, b, "kid-a", secret(1))
		sus := suspend(t, e, "new-1", "a")
		deliver(t, e, sus, 0, contracts.DeliverSignalArgs{})
		c, err := e.ClaimResumedExecution(bg, contracts.ClaimArgs{WorkerID: "w"})
		require.NoError(t, err)
		require.Equal(t, "new-1", c.ExecutionID)
		keys, err := client.Keys(bg, prefix+"ff:{p:*}:store").Result()
		if _, ok := client.(*redis.ClusterClient); !ok {
			require.NoError(t, err)
			require.Len(t, keys, 16, "a store marker per partition, under the prefix")
		}

		_, err = Open(bg, mustParse(t, backendURL(t, s.url(t), 256, prefix)))
		require.ErrorIs(t, err, contracts.ErrPartitionCountMismatch, "Open with another partition count")
		opened := openURL(t, backendURL(t, s.url(t), 16, prefix), nil)
		_, err = opened.CompleteExecution(bg, contracts.CompleteArgs{ExecutionID: "new-1", LeaseID: c.LeaseID})
		require.NoError(t, err, "the store Open reaches with the same options")

		watching := make(chan error, 1)
		go func() { watching <- b.WatchClaimable(context.Background(), func() {}) }()
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, b.Close())
		select {
		case err := <-watching:
			require.NoError(t, err, "the watch ends at Close")
		case <-time.After(5 * time.Second):
			t.Fatal("WatchClaimable still runs after Close")
		}
		require.NoError(t, client.Ping(bg).Err(), "the client stays open")
		_, err = b.Sign(bg, contracts.SignArgs{Scope: "s", Message: []byte("m")})
		require.ErrorIs(t, err, contracts.ErrBackendClosed)
		require.ErrorIs(t, b.Ping(bg), contracts.ErrBackendClosed)
		_, err = b.ClaimResumedExecutions(bg, contracts.ClaimBatchArgs{WorkerID: "w", LeaseMs: 1000, Max: 2})
		require.ErrorIs(t, err, contracts.ErrBackendClosed)
		require.ErrorIs(t, b.AdoptStore(bg), contracts.ErrBackendClosed)
		require.NoError(t, b.Close(), "closing twice")
		if b.topo != nil {
			require.True(t, b.topo.off.Load(), "the topology hooks do nothing after Close")
		}
	})
}

// New refuses, before any I/O, a client it cannot use and every option
// outside its range, as invalid_input naming it.
func TestNewRefusesBadArguments(t *testing.T) {
	standalone := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ReadTimeout: time.Second})
	t.Cleanup(func() { _ = standalone.Close() })
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	t.Cleanup(func() { _ = ring.Close() })
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		opts   []Option
		field  string
	}{
		{"nil client", nil, nil, "client"},
		{"typed nil client", (*redis.Client)(nil), nil, "client"},
		{"typed nil cluster client", (*redis.ClusterClient)(nil), nil, "client"},
		{"a ring", ring, nil, "client"},
		{"no partition", standalone, []Option{WithPartitions(0)}, OptionPartitions},
		{"too many partitions", standalone, []Option{WithPartitions(MaxPartitions + 1)}, OptionPartitions},
		{"a brace in the prefix", standalone, []Option{WithPrefix("a{b}")}, OptionPrefix},
		{"negative replicas", standalone, []Option{WithWaitReplicas(-1)}, OptionWaitReplicas},
		{"too many replicas", standalone, []Option{WithWaitReplicas(MaxWaitReplicas + 1)}, OptionWaitReplicas},
		{"no wait", standalone, []Option{WithWaitTimeout(0)}, OptionWaitTimeout},
		{"too long a wait", standalone, []Option{WithWaitTimeout(2 * time.Minute)}, OptionWaitTimeout},
		{"a wait the read timeout cuts", standalone, []Option{WithWaitReplicas(1), WithWaitTimeout(800 * time.Millisecond)}, OptionWaitTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			b, err := New(ctx, tc.client, tc.opts...)
			require.Nil(t, b)
			require.ErrorIs(t, err, contracts.ErrInvalidInput)
			var ce *contracts.Error
			require.True(t, errors.As(err, &ce))
			require.True(t, strings.HasPrefix(ce.Detail, tc.field+":"), "detail %q names %s", ce.Detail, tc.field)
		})
	}
}

// A wait_replicas Backend on the application's client waits as one opened
// with the URL's options does; a wait the client's read timeout allows is
// accepted.
func TestNewWaitsForReplicasOnTheClient(t *testing.T) {
	client := appClient(t, servers[0])
	b, err := New(bg, client, WithPrefix(testenv.KeyPrefix(t)), WithPartitions(4), WithWaitReplicas(1), WithWaitTimeout(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	_, err = b.Seed(bg, contracts.SeedArgs{Kid: "kid-a", Secret: secret(1)})
	require.ErrorIs(t, err, contracts.ErrReplicationUnconfirmed, "the test server has no replica")
}
