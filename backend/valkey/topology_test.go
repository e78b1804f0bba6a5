package valkey

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Which errors mean the cluster's slot map may be stale.
func TestStaleTopology(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		err   error
		stale bool
	}{
		{nil, false},
		{refused, true},
		{fmt.Errorf("wrapped: %w", refused), true},
		{io.EOF, true},
		{syscall.ECONNRESET, true},
		{context.DeadlineExceeded, true},
		{fakeRedisError("MOVED 3999 127.0.0.1:7001"), true},
		{fakeRedisError("CLUSTERDOWN The cluster is down"), true},
		{fakeRedisError("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{fakeRedisError("READONLY You can't write against a read only replica."), true},
		{fakeRedisError("ASK 3999 127.0.0.1:7001"), false}, // a slot being migrated: go-redis follows it
		{fakeRedisError("LOADING Redis is loading the dataset in memory"), false},
		{fakeRedisError("FF lease_mismatch complete e"), false},
		{fakeRedisError("NOSCRIPT No matching script"), false},
		{redis.Nil, false},
		{context.Canceled, false},
		{redis.ErrClosed, false},
		{redis.ErrPoolTimeout, false},
		{errors.New("something else"), false},
	} {
		require.Equal(t, tc.stale, staleTopology(tc.err), "%v", tc.err)
	}
}

// A burst of errors asks for one reload per topologyRefreshInterval, and
// errors that say nothing of the topology ask for none.
func TestTopologyReloadIsRateLimited(t *testing.T) {
	// given a cluster client (no server: only what it is asked counts)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, DialTimeout: 100 * time.Millisecond})
	defer cc.Close()
	tp := watchTopology(cc)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

	// when calls fail with other errors, then no reload
	tp.noteError(fakeRedisError("FF not_suspended e"))
	tp.noteError(redis.Nil)
	require.EqualValues(t, 0, tp.reloads.Load())

	// when 50 calls meet a refused connection at once, then one reload
	for range 50 {
		tp.noteError(refused)
	}
	require.EqualValues(t, 1, tp.reloads.Load())

	// when the interval has passed, then the next error reloads again
	time.Sleep(topologyRefreshInterval + 20*time.Millisecond)
	tp.noteError(fakeRedisError("CLUSTERDOWN The cluster is down"))
	tp.noteError(fakeRedisError("CLUSTERDOWN The cluster is down"))
	require.EqualValues(t, 2, tp.reloads.Load())
}

// A standalone backend has no topology to refresh; a cluster backend
// watches its own.
func TestTopologyOnlyOnClusters(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			b, _ := openFresh(t, s, 2)
			_, cluster := b.client.(*redis.ClusterClient)
			require.Equal(t, cluster, b.topo != nil)
		})
	}
}
